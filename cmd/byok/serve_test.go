package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestServe(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "byok.yaml")
	cfg := "version: v1\nlisten: 127.0.0.1:0\nstore: {sqlite: " + filepath.Join(dir, "byok.db") +
		"}\nplatform_key: {file: " + filepath.Join(dir, "platform.key") + "}\nlog: {format: text}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	stdout.b, stderr.b = &bytes.Buffer{}, &bytes.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgPath}, strings.NewReader(""), &stdout, &stderr)
	}()

	url := regexp.MustCompile(`url=(http://\S+)`)
	var base string
	waitFor(t, "byok serve to listen", 30*time.Second, func() bool {
		if m := url.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
			return true
		}
		return false
	})
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	tokFile := filepath.Join(dir, "operator.token")
	info, err := os.Stat(tokFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap token file: %v (mode %v), want mode 0600", err, info.Mode())
	}
	tok, _ := os.ReadFile(tokFile)
	var tenants struct{ Tenants []any }
	api{t: t, base: base}.must(strings.TrimSpace(string(tok)), "GET", "/v1/tenants", nil, &tenants)
	if strings.Contains(stderr.String(), strings.TrimSpace(string(tok))) || strings.Contains(stdout.String(), strings.TrimSpace(string(tok))) {
		t.Fatal("the bootstrap token was printed")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("byok serve exited %d: %s", code, stderr.String())
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: v1\nstore: {sqlite: x.db}\nplatform_key: {file: k}\nkeyring: {check_interval: 1ms}\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "--config"},
		{[]string{"serve", "--config", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"serve", "--config", bad}, "keyring.check_interval"},
	} {
		var stdout, stderr bytes.Buffer
		t.Setenv("BYOK_CONFIG", "")
		if code := run(context.Background(), c.args, strings.NewReader(""), &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error saying %q", c.args, code, stderr.String(), c.want)
		}
	}
}
