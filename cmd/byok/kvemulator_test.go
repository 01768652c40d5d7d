package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const kvemuTestSeed = `
tenants:
  - id: 11111111-2222-3333-4444-555555555555
vaults:
  - name: contoso
    tenantId: 11111111-2222-3333-4444-555555555555
`

// startKVEmulatorCmd runs byok kv-emulator with args and returns what it
// printed up to "Press Ctrl-C", a stop function and its result channel.
func startKVEmulatorCmd(t *testing.T, args ...string) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runKVEmulator(ctx, args, pw, io.Discard)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, pr) // drain "kvemu stopping"
	return out.String(), cancel, done
}

func TestKVEmulatorCommand(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seed, []byte(kvemuTestSeed), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	out, stop, done := startKVEmulatorCmd(t, "--addr", "127.0.0.1:0", "--state", state, "--seed", seed)
	for _, want := range []string{"kvemu listening on https://127.0.0.1:", "CA certificate: " + filepath.Join(state, "ca.pem"),
		"SSL_CERT_FILE=", "127.0.0.1 login.microsoftonline.com", "127.0.0.1 contoso.vault.azure.net",
		"IDENTITY_ENDPOINT=http://", "IDENTITY_HEADER=", "11111111-2222-3333-4444-555555555555"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("kv-emulator: %v", err)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "entra.json", "vaults.json"} {
		if _, err := os.Stat(filepath.Join(state, f)); err != nil {
			t.Errorf("state file %s: %v", f, err)
		}
	}

	out, stop, done = startKVEmulatorCmd(t, "--addr", "127.0.0.1:0", "--state", state, "--seed", seed)
	if !strings.Contains(out, "not applied: the state") || !strings.Contains(out, "contoso.vault.azure.net") {
		t.Errorf("restart with state and seed:\n%s", out)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("kv-emulator restart: %v", err)
	}
}

func TestKVEmulatorCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("tenants:\n  - idd: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--seed", filepath.Join(dir, "missing.yaml")}, "read seed"},
		{[]string{"--seed", bad}, "idd"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--addr", "256.0.0.1:99999"}, "listen"},
	} {
		err := runKVEmulator(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// --seed is applied before the emulator serves and writes ca.pem: a client
// that waits for the CA file meets the seeded emulator, and a seed that
// fails leaves no CA file behind for such a client to find.
func TestKVEmulatorSeedsBeforeCA(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seed, []byte(kvemuTestSeed), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	caFile := filepath.Join(state, "ca.pem")
	stop := make(chan struct{})
	seen := make(chan []byte, 1)
	go func() { // the client: polls for ca.pem, then lists the vaults
		for {
			select {
			case <-stop:
				seen <- nil
				return
			default:
			}
			pem, err := os.ReadFile(caFile)
			if err != nil || len(pem) == 0 {
				runtime.Gosched()
				continue
			}
			seen <- pem
			return
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runKVEmulator(ctx, []string{"--addr", "127.0.0.1:0", "--state", state, "--seed", seed}, pw, io.Discard)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	pem := <-seen
	// The emulator wrote ca.pem; at this very moment it must serve the
	// seeded vault. Find its address in the output only afterwards.
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "kvemu listening on https://"); ok {
				addr <- strings.Fields(rest)[0]
			}
		}
	}()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("ca.pem is not a certificate:\n%s", pem)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + <-addr + "/control/vaults")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"contoso"`) {
		t.Errorf("GET /control/vaults once ca.pem exists: %d %s; want the seeded vault contoso", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A seed that fails to apply stops the start before anything is
	// served or written.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(kvemuTestSeed+"    roleAssignments:\n      - identity: nobody\n        role: Key Vault Crypto User\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state2 := filepath.Join(dir, "state2")
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = runKVEmulator(ctx, []string{"--addr", "127.0.0.1:0", "--state", state2, "--seed", bad}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "seed") {
		t.Fatalf("kv-emulator with a failing seed: %v, want an error naming the seed", err)
	}
	if _, err := os.Stat(filepath.Join(state2, "ca.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a failing seed, ca.pem: %v; want none", err)
	}
	close(stop)
}
