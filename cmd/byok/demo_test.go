package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openbyok/byok/server/token"
)

// The demo seeds a tenant whose Test configuration passes against the
// emulator, serves the API with the printed tokens, and keeps its state
// across restarts in the same directory.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := startDemo(ctx, dir, "127.0.0.1:0", slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !d.fresh || !d.testedOK {
		t.Fatalf("fresh %v, Test configuration passed %v; want both", d.fresh, d.testedOK)
	}
	var banner bytes.Buffer
	if err := d.printBanner(&banner); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{d.url, d.tokens[token.TenantAdmin], d.tokens[token.Service], "demo.env", "/roles/" + d.roleID + "/revoke"} {
		if !strings.Contains(banner.String(), want) {
			t.Fatalf("the banner does not show %q:\n%s", want, banner.String())
		}
	}
	info, err := os.Stat(filepath.Join(dir, "demo.env"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("demo.env: %v, mode %v; want mode 0600", err, info.Mode())
	}
	done := make(chan error, 1)
	go func() { done <- d.app.run(ctx, d.ln, "", "") }()

	// The banner's revoke and restore commands print what changed.
	for _, action := range []string{"revoke", "restore"} {
		resp, err := d.emu.HTTPClient().Post("https://"+d.emu.Addr()+"/control/vaults/"+demoVault+"/roles/"+d.roleID+"/"+action, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "role assignment "+d.roleID) || !strings.Contains(string(body), strings.TrimSuffix(action, "e")+"ed:") {
			t.Fatalf("the banner's %s command: %d %s; want a line saying what changed", action, resp.StatusCode, body)
		}
	}

	c := api{t: t, base: d.url, tenant: demoTenant}
	if s := c.status(d.tokens[token.TenantAdmin]); s.State != "draft" {
		t.Fatalf("the demo tenant's key is %q, want draft (configured and tested, not yet enforced)", s.State)
	}
	resp, err := http.Get(d.url + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<form") {
		t.Fatalf("GET /console/: %d, want the sign-in page", resp.StatusCode)
	}
	var enc struct{ Ciphertext string }
	c.must(d.tokens[token.Service], "POST", "/v1/tenants/contoso/encrypt", map[string]any{"scope": "chat", "plaintext": base64.StdEncoding.EncodeToString([]byte("hi"))}, &enc)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	d.close()

	// A second start on the same directory reuses everything.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	d2, err := startDemo(ctx, dir, "127.0.0.1:0", slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.close()
	if d2.fresh {
		t.Fatal("the second start seeded again")
	}
	go d2.app.run(ctx, d2.ln, "", "")
	var dec struct{ Plaintext string }
	api{t: t, base: d2.url, tenant: demoTenant}.must(d.tokens[token.Service], "POST", "/v1/tenants/contoso/decrypt", map[string]any{"scope": "chat", "ciphertext": enc.Ciphertext}, &dec)
	if dec.Plaintext != base64.StdEncoding.EncodeToString([]byte("hi")) {
		t.Fatalf("after a restart, decrypt = %q", dec.Plaintext)
	}
}

// byok demo prints a line as soon as it starts and as each part comes up,
// in order, before the banner: a user waiting on a cold start sees it
// move.
func TestDemoOutputOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lineWatcher{want: "Stop with Ctrl-C", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, t.TempDir(), "127.0.0.1:0", out, io.Discard) }()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("byok demo ended before its banner: %v\n%s", err, out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if !strings.HasPrefix(text, "byok demo starting in ") {
		t.Errorf("the first line is not the start line:\n%s", text)
	}
	at := 0
	for _, want := range []string{"byok demo starting in ", "Key Vault emulator   up on https://", "store                open: ",
		"byok server          listening on http://", `demo tenant          seeding "contoso"`, `demo tenant          "contoso" ready (Test configuration passed)`,
		"byok demo is running."} {
		i := strings.Index(text[at:], want)
		if i < 0 {
			t.Fatalf("after byte %d the output lacks %q (or has it out of order):\n%s", at, want, text)
		}
		at += i + len(want)
	}
}

// lineWatcher collects what is written to it and closes seen once the
// text holds want.
type lineWatcher struct {
	mu   sync.Mutex
	b    strings.Builder
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
