package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
