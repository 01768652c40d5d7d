package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

// e2eCheckInterval is the check interval of the end-to-end test: a
// revocation must fail the covered scope closed within it plus 5 s.
const e2eCheckInterval = time.Second

// api is a minimal client of the HTTP API for the end-to-end test.
type api struct {
	t      *testing.T
	base   string
	tenant string // whose key status reads
}

// call sends a JSON request with a bearer token and decodes the answer
// into out (if not nil); it returns the status and the error code.
func (a api) call(tok, method, path string, body, out any) (int, string) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(data, &e)
		return resp.StatusCode, e.Error.Code
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, ""
}

// must is call that fails the test unless the status is 2xx.
func (a api) must(tok, method, path string, body, out any) {
	a.t.Helper()
	if status, code := a.call(tok, method, path, body, out); status >= 300 {
		a.t.Fatalf("%s %s: %d %s", method, path, status, code)
	}
}

type keyStatus struct {
	State        string `json:"state"`
	CurrentKeyID string `json:"current_key_id"`
	Scopes       []struct {
		Scope, Kind string
	} `json:"scopes"`
}

func (a api) status(tok string) keyStatus {
	var s keyStatus
	a.must(tok, "GET", "/v1/tenants/"+a.tenant+"/key", nil, &s)
	return s
}

// rotateTo asks for a rotation to the versioned keyID and returns the
// job's state. The health monitor follows a versionless key's new version
// by itself, so it may have started that very rotation first: the request
// is then refused (409, a rotation is running) and rotateTo waits for the
// monitor's to finish.
func (a api) rotateTo(tok, keyID string) struct{ State string } {
	a.t.Helper()
	var job struct{ State string }
	status, code := a.call(tok, "POST", "/v1/tenants/"+a.tenant+"/key/rotate", map[string]any{"key_id": keyID}, &job)
	switch {
	case status == 409:
		waitFor(a.t, "the monitor's rotation", 30*time.Second, func() bool {
			s := a.status(tok)
			return s.State == "active" && s.CurrentKeyID == keyID
		})
		job.State = "done"
	case status >= 300:
		a.t.Fatalf("POST rotate: %d %s", status, code)
	}
	return job
}

// waitFor polls cond until it holds or the deadline passes, and returns
// how long it took.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > deadline {
			t.Fatalf("%s: not within %v", what, deadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestEndToEnd runs the customer's journey through the HTTP API of the
// real service (SQLite, platform key file, lifecycle, audit) against the
// Key Vault emulator, reached through the official Azure SDK.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()

	// The customer's side: a directory, an app with a secret, a vault with
	// purge protection and an RSA key — but no role for the app yet.
	dirID := "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
	if _, err := emu.CreateTenant(kvemu.Tenant{ID: dirID, Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	app, err := emu.CreateApp(kvemu.App{TenantID: dirID})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := emu.AddSecret(app.ClientID, kvemu.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.CreateVault(kvemu.VaultConfig{Name: "acme-keys", TenantID: dirID, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.CreateKey("acme-keys", "cmk", kvemu.KeySpec{}); err != nil {
		t.Fatal(err)
	}

	// The platform's side: byok serve's wiring on a loopback port.
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Store.SQLite = filepath.Join(dir, "byok.db")
	cfg.PlatformKey.File = filepath.Join(dir, "platform.key")
	cfg.Keyring.CheckInterval = e2eCheckInterval
	cfg.Keyring.MaxStaleness = time.Minute
	logs := &lockedBuffer{b: &bytes.Buffer{}}
	a, err := openApp(ctx, cfg, appOptions{azureTransport: emu.HTTPClient(), getenv: func(string) string { return "" }},
		slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, ln, "", "") }()
	defer func() { cancel(); <-done }()
	c := api{t: t, base: "http://" + ln.Addr().String(), tenant: "acme"}

	operator, _, err := server.IssueToken(ctx, a.db, token.Operator, nil, "e2e", 0)
	if err != nil {
		t.Fatal(err)
	}
	c.must(operator, "POST", "/v1/tenants", map[string]any{"id": "acme", "policy": "grace", "scopes": []string{"chat", "analytics"}}, nil)
	var adminTok, serviceTok struct{ Token string }
	c.must(operator, "POST", "/v1/tokens", map[string]any{"kind": "tenant-admin", "tenants": []string{"acme"}, "name": "alice"}, &adminTok)
	c.must(operator, "POST", "/v1/tokens", map[string]any{"kind": "service", "tenants": []string{"acme"}, "name": "app"}, &serviceTok)
	admin, service := adminTok.Token, serviceTok.Token

	// Configure, then Test: it fails while the role is missing.
	c.must(admin, "PUT", "/v1/tenants/acme/key", map[string]any{
		"key_id": "https://acme-keys.vault.azure.net/keys/cmk", "directory_id": dirID, "client_id": app.ClientID,
		"credential": "client-secret", "secret": secret.Value,
	}, nil)
	type report struct {
		Passed bool
		Checks []struct{ Name, Outcome, Remedy string }
	}
	var rep report
	c.must(admin, "POST", "/v1/tenants/acme/key/test", nil, &rep)
	if rep.Passed {
		t.Fatal("Test configuration passed without a role on the vault")
	}
	failed := ""
	for _, ch := range rep.Checks {
		if ch.Outcome == "fail" && failed == "" {
			failed = ch.Name + ": " + ch.Remedy
		}
	}
	if !strings.Contains(failed, "Key Vault Crypto") {
		t.Fatalf("the first failed check does not tell which role to grant: %q", failed)
	}
	if status, code := c.call(admin, "POST", "/v1/tenants/acme/key/proceed", map[string]any{"enforce_at": time.Now().Add(time.Hour)}, nil); status != 409 {
		t.Fatalf("Proceed after a failed test: %d %s, want 409", status, code)
	}
	roleID, err := emu.AssignRole("acme-keys", kvemu.RoleAssignment{PrincipalID: app.ObjectID, Role: "Key Vault Crypto User"})
	if err != nil {
		t.Fatal(err)
	}
	c.must(admin, "POST", "/v1/tenants/acme/key/test", nil, &rep)
	if !rep.Passed {
		t.Fatalf("Test configuration fails with the role granted: %+v", rep.Checks)
	}

	// Proceed: the customer's key covers chat, not analytics.
	c.must(admin, "POST", "/v1/tenants/acme/key/proceed", map[string]any{
		"enforce_at": time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano),
		"coverage":   map[string]any{"all": true, "exclude": []string{"analytics"}},
	}, nil)
	waitFor(t, "activation", 30*time.Second, func() bool { return c.status(admin).State == "active" })
	kinds := map[string]string{}
	for _, s := range c.status(admin).Scopes {
		kinds[s.Scope] = s.Kind
	}
	if kinds["chat"] != "customer-managed" || kinds["analytics"] != "platform-managed" {
		t.Fatalf("scopes after activation: %v", kinds)
	}

	encrypt := func(scope, msg string) string {
		var out struct{ Ciphertext string }
		c.must(service, "POST", "/v1/tenants/acme/encrypt", map[string]any{"scope": scope, "plaintext": base64.StdEncoding.EncodeToString([]byte(msg))}, &out)
		return out.Ciphertext
	}
	decrypt := func(scope, ct string) (string, int, string) {
		var out struct{ Plaintext string }
		status, code := c.call(service, "POST", "/v1/tenants/acme/decrypt", map[string]any{"scope": scope, "ciphertext": ct}, &out)
		pt, _ := base64.StdEncoding.DecodeString(out.Plaintext)
		return string(pt), status, code
	}
	mustDecrypt := func(scope, ct, want string) {
		t.Helper()
		got, status, code := decrypt(scope, ct)
		if status != 200 || got != want {
			t.Fatalf("decrypt %s: %d %s %q, want %q", scope, status, code, got, want)
		}
	}
	chat := encrypt("chat", "covered by the customer's key")
	analytics := encrypt("analytics", "platform-managed")

	// Rotate to a new version: old data still decrypts, the old version is
	// safe to retire.
	oldVersion := c.status(admin).CurrentKeyID
	newKey, err := emu.RotateKey("acme-keys", "cmk")
	if err != nil {
		t.Fatal(err)
	}
	rotateStart := time.Now().UTC()
	job := c.rotateTo(admin, newKey.ID)
	// The audit log records every vault call with its purpose; the
	// monitor's background checks run meanwhile and are not the rotation's.
	var events struct {
		Events []struct {
			Vault *struct{ Operation, Purpose string } `json:"vault"`
		}
	}
	c.must(admin, "GET", "/v1/tenants/acme/audit?action=vault.&limit=1000&since="+rotateStart.Format(time.RFC3339Nano), nil, &events)
	vaultCalls := 0
	for _, e := range events.Events {
		if e.Vault != nil && e.Vault.Purpose == "rotation-job" {
			vaultCalls++
		}
	}
	if job.State != "done" || c.status(admin).CurrentKeyID != newKey.ID {
		t.Fatalf("rotation: job %s, current %s, want done and %s", job.State, c.status(admin).CurrentKeyID, newKey.ID)
	}
	if vaultCalls == 0 || vaultCalls > 2 {
		t.Fatalf("the audit log shows %d vault calls for the rotation, want 1 or 2", vaultCalls)
	}
	mustDecrypt("chat", chat, "covered by the customer's key")
	var inv struct {
		Versions []struct {
			KeyID        string `json:"key_id"`
			Shares       int
			SafeToRetire bool `json:"safe_to_retire"`
		}
	}
	c.must(admin, "GET", "/v1/tenants/acme/key/inventory", nil, &inv)
	retired := false
	for _, v := range inv.Versions {
		if v.KeyID == oldVersion {
			retired = v.SafeToRetire && v.Shares == 0
		}
	}
	if !retired {
		t.Fatalf("inventory after rotation does not show %s safe to retire: %+v", oldVersion, inv.Versions)
	}

	// Revoke the role: the covered scope fails closed within the check
	// interval + 5 s; the deselected scope keeps working.
	if err := emu.RevokeRole("acme-keys", roleID); err != nil {
		t.Fatal(err)
	}
	revoked := waitFor(t, "fail closed after the role was revoked", e2eCheckInterval+5*time.Second, func() bool {
		_, status, code := decrypt("chat", chat)
		return status == 403 && code == "key_revoked"
	})
	mustDecrypt("analytics", analytics, "platform-managed")
	if status, code := c.call(service, "POST", "/v1/tenants/acme/encrypt", map[string]any{"scope": "chat", "plaintext": "eA=="}, nil); status != 403 || code != "key_revoked" {
		t.Fatalf("encrypt in the covered scope after revocation: %d %s", status, code)
	}
	if status, _ := c.call(admin, "POST", "/v1/tenants/acme/key/disable", nil, nil); status != 409 {
		t.Fatalf("disable after revocation: %d, want 409 (disable must come before revoke)", status)
	}

	// Restore it: service comes back by itself.
	if err := emu.RestoreRole("acme-keys", roleID); err != nil {
		t.Fatal(err)
	}
	restored := waitFor(t, "service back after the role was restored", e2eCheckInterval+5*time.Second, func() bool {
		_, status, _ := decrypt("chat", chat)
		return status == 200
	})
	mustDecrypt("chat", chat, "covered by the customer's key")
	waitFor(t, "the monitor marks the key active again", 3*e2eCheckInterval+5*time.Second, func() bool { return c.status(admin).State == "active" })

	// Disable BYOK, then revoke again: everything still decrypts.
	c.must(admin, "POST", "/v1/tenants/acme/key/disable", nil, nil)
	waitFor(t, "disable", 30*time.Second, func() bool {
		s := c.status(admin)
		for _, sc := range s.Scopes {
			if sc.Kind != "platform-managed" {
				return false
			}
		}
		return s.State == "disabled"
	})
	if err := emu.RevokeRole("acme-keys", roleID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * e2eCheckInterval) // several checks pass
	for time.Now().Before(deadline) {
		mustDecrypt("chat", chat, "covered by the customer's key")
		mustDecrypt("analytics", analytics, "platform-managed")
		time.Sleep(100 * time.Millisecond)
	}
	newChat := encrypt("chat", "after disable")
	mustDecrypt("chat", newChat, "after disable")

	t.Logf("revocation enforced %v after the role was removed; service restored %v after it came back (check interval %v)",
		revoked.Round(time.Millisecond), restored.Round(time.Millisecond), e2eCheckInterval)
	for _, secretText := range []string{secret.Value, admin, service, operator} {
		if strings.Contains(logs.String(), secretText) {
			t.Fatal("a secret or token appears in the server's logs")
		}
	}
}

// lockedBuffer is a buffer that concurrent loggers may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
