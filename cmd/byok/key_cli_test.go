package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/client"
	"github.com/openbyok/byok/client/clienttest"
	"github.com/openbyok/byok/kms"
)

// TestKeyCommands walks a tenant admin through the key's life with the
// CLI, and a service through encrypt and decrypt, against the real server.
func TestKeyCommands(t *testing.T) {
	srv := clienttest.New(t, 2)
	op := as(t, srv, srv.Operator)
	mustRun(t, "", args("tenant create acme --scopes chat,files", op))
	admin := append(as(t, srv, srv.Token(t, "tenant-admin", 0, "acme")), "--tenant", "acme")
	svc := append(as(t, srv, srv.Token(t, "service", 0, "acme")), "--tenant", "acme")

	// Configure with the secret on stdin; the secret is never printed.
	srv.Customer.FailKey(srv.CMK, kms.Authoritative, kms.ReasonDenied)
	code, out, errOut := cli(t, "s3cret-value\n", args("key configure --key-id "+srv.CMK+" --directory-id dir --client-id app --credential client-secret --secret-file -", admin)...)
	if code != 0 || !strings.Contains(out, "draft") || !strings.Contains(out, "client-secret (secret set)") || strings.Contains(out+errOut, "s3cret") {
		t.Fatalf("key configure: exit %d\n%s%s\nwant draft, the secret set and never shown", code, out, errOut)
	}
	mustFail(t, 2, "--key-id is required", "", args("key configure", admin))
	mustFail(t, 2, "secret file", "", args("key configure --key-id x --secret-file -", admin))
	// A server without the platform's identities says so, and refuses
	// their modes.
	if out := mustRun(t, "", args("key identities", admin)); !strings.Contains(out, "managed-identity: managed-identity is not offered by this platform") ||
		!strings.Contains(out, "workload-identity: workload-identity is not offered by this platform") {
		t.Fatalf("key identities printed %q", out)
	}
	mustFail(t, 1, "managed-identity is not offered by this platform", "", args("key configure --key-id "+srv.CMK+" --credential managed-identity", admin))
	mustFail(t, 1, "client_id", "", args("key configure --key-id "+srv.CMK+" --directory-id dir --credential workload-identity", admin))

	// Test fails while the role is missing: ✗ with the remedy, exit 1.
	code, out, errOut = cli(t, "", args("key test", admin)...)
	if code != 1 || !strings.Contains(out, "✓ key-id") || !strings.Contains(out, "✗ round-trip") ||
		!strings.Contains(out, "remedy: grant the platform Key Vault Crypto User") || !strings.Contains(errOut, "did not pass") {
		t.Fatalf("key test with the role missing: exit %d\n%s%s", code, out, errOut)
	}
	enforce := srv.Now().Add(24 * time.Hour).Format(time.RFC3339)
	mustFail(t, 1, "invalid_state", "", args("key proceed --enforce-at "+enforce+" --exclude files", admin))
	srv.Customer.HealKey(srv.CMK)
	if out = mustRun(t, "", args("key test", admin)); !strings.Contains(out, "✓ round-trip") || !strings.Contains(out, "Test configuration passed") {
		t.Fatalf("key test with the role granted printed %q", out)
	}
	var rep client.Report
	if err := json.Unmarshal([]byte(mustRun(t, "", args("key test --json", admin))), &rep); err != nil || !rep.Passed {
		t.Fatalf("key test --json = %+v, %v", rep, err)
	}
	mustFail(t, 2, "exclude each other", "", args("key proceed --enforce-at "+enforce+" --include chat --exclude files", admin))
	mustFail(t, 2, "exclude each other", "", args("key proceed --enforce-at "+enforce+" --in 1h", admin))
	mustFail(t, 2, "not an RFC 3339 time", "", args("key proceed --enforce-at tomorrow", admin))
	mustFail(t, 2, "give the enforcement date", "", args("key proceed", admin))
	mustFail(t, 1, "enforce_at", "", args("key proceed --enforce-at 2020-01-01T00:00:00Z", admin))
	mustFail(t, 1, "invalid_input", "", args("key proceed --enforce-at "+enforce+" --include no-such-scope", admin))
	out = mustRun(t, "", args("key proceed --enforce-at "+enforce+" --exclude files", admin))
	if !strings.Contains(out, "scheduled") || !strings.Contains(out, "all scopes but files") || !strings.Contains(out, enforce) {
		t.Fatalf("key proceed printed %q; want scheduled, covering all scopes but files", out)
	}

	// Activation, then data through encrypt and decrypt.
	srv.Advance(25 * time.Hour)
	srv.Tick(t)
	srv.Tick(t)
	out = mustRun(t, "", args("key status", admin))
	for _, want := range []string{"active", "customer-managed", "SCOPE", "files", "HEALTH"} {
		if !strings.Contains(out, want) {
			t.Fatalf("key status printed %q; want %q", out, want)
		}
	}
	ct := mustRun(t, "hello, world", args("encrypt --scope chat --aad msg-1", svc))
	if _, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ct)); err != nil || !strings.HasSuffix(ct, "\n") {
		t.Fatalf("encrypt printed %q; want base64 and a newline", ct)
	}
	if pt := mustRun(t, ct, args("decrypt --scope chat --aad msg-1", svc)); pt != "hello, world" {
		t.Fatalf("decrypt printed %q, want the plaintext as it was", pt)
	}
	bin := mustRun(t, "raw", args("encrypt --scope files --binary", svc))
	if pt := mustRun(t, bin, args("decrypt --scope files --binary", svc)); pt != "raw" {
		t.Fatalf("decrypt --binary printed %q, want raw", pt)
	}
	var js map[string][]byte
	if err := json.Unmarshal([]byte(mustRun(t, "j", args("encrypt --scope chat --json", svc))), &js); err != nil || len(js["ciphertext"]) == 0 {
		t.Fatalf("encrypt --json = %v, %v", js, err)
	}
	mustFail(t, 1, "decrypt_failed", ct, args("decrypt --scope chat --aad msg-2", svc))
	mustFail(t, 1, "not base64", "!!!", args("decrypt --scope chat", svc))
	mustFail(t, 2, "--scope is required", "x", args("encrypt", svc))
	mustFail(t, 1, "forbidden", "x", args("encrypt --scope chat", admin))

	// After the enforcement date only rotation and scopes are allowed.
	errOut = mustFail(t, 1, "invalid_state", "", args("key configure --key-id "+srv.CMK, admin))
	if !strings.Contains(errOut, "hint: byok key status") {
		t.Fatalf("a state error: stderr %q, want the status hint", errOut)
	}

	// Rotate to a new version: old data decrypts, the old version is safe
	// to retire.
	old := strings.Fields(lineWith(t, mustRun(t, "", args("key status", admin)), "current version"))[2]
	v2 := srv.Customer.Rotate(srv.CMK)
	if out = mustRun(t, "", args("key rotate --key-id "+v2, admin)); !strings.Contains(out, "rotate job") || !strings.Contains(out, "done") {
		t.Fatalf("key rotate printed %q; want the finished job", out)
	}
	mustFail(t, 2, "exclude each other", "", args("key rotate --key-id "+v2+" --new-key fake:other", admin))
	mustFail(t, 2, "go with --new-key", "", args("key rotate --client-id app", admin))
	if pt := mustRun(t, ct, args("decrypt --scope chat --aad msg-1", svc)); pt != "hello, world" {
		t.Fatalf("decrypt after rotation printed %q", pt)
	}
	inv := mustRun(t, "", args("key inventory", admin))
	if f := strings.Fields(lineWith(t, inv, old+" ")); f[len(f)-1] != "yes" {
		t.Fatalf("key inventory printed %q; want %s safe to retire", inv, old)
	}
	if f := strings.Fields(lineWith(t, inv, v2)); f[2] != "yes" || f[3] != "no" {
		t.Fatalf("key inventory printed %q; want %s current, not safe to retire", inv, v2)
	}

	// Re-key with --wait: plain percentage lines, as stdout is no terminal.
	out = mustRun(t, "", args("key rekey --wait --poll 1ms", admin))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "rekey ") || !strings.Contains(lines[0], "% (") ||
		!strings.Contains(lines[len(lines)-1], ": 100% (") || !strings.HasSuffix(lines[len(lines)-1], " done") || strings.Contains(out, "\r") {
		t.Fatalf("key rekey --wait printed %q; want percentage lines ending at 100%% done", out)
	}
	mustFail(t, 2, "--poll is 0s", "", args("key rekey --wait --poll 0", admin))
	var j client.Job
	if err := json.Unmarshal([]byte(mustRun(t, "", args("key rekey --json --wait --poll 1ms", admin))), &j); err != nil || j.State != "done" || j.Done != j.Total {
		t.Fatalf("key rekey --json --wait = %+v, %v; want the finished job only", j, err)
	}
	if out = mustRun(t, "", args("key rekey", admin)); !strings.Contains(out, "pending") || !strings.Contains(out, "--wait") {
		t.Fatalf("key rekey without --wait printed %q; want the pending job and how to follow it", out)
	}
	srv.Tick(t)
	if out = mustRun(t, "", args("key scopes --include chat --wait --poll 1ms", admin)); !strings.Contains(out, "only chat") || !strings.Contains(out, "scopes ") {
		t.Fatalf("key scopes printed %q; want only chat and the scopes job", out)
	}

	// Revocation: the covered scope fails closed; the timeline has it;
	// disable is refused until access is back.
	srv.Customer.FailKey(srv.CMK, kms.Authoritative, kms.ReasonDenied)
	srv.Advance(clienttest.CheckInterval + time.Second)
	srv.Tick(t)
	mustFail(t, 1, "key_revoked", "x", args("encrypt --scope chat", svc))
	mustRun(t, "x", args("encrypt --scope files", svc))
	mustFail(t, 1, "invalid_state", "", args("key disable", admin))
	if out = mustRun(t, "", args("key timeline", admin)); !strings.Contains(out, "revoked") || !strings.Contains(out, string(kms.ReasonDenied)) {
		t.Fatalf("key timeline printed %q; want the revocation and its reason", out)
	}
	srv.Customer.HealKey(srv.CMK)
	srv.Advance(clienttest.CheckInterval + time.Second)
	srv.Tick(t)
	if out = mustRun(t, "", args("key disable --wait --poll 1ms", admin)); !strings.Contains(out, "disable ") || !strings.Contains(out, "100%") {
		t.Fatalf("key disable --wait printed %q; want the job at 100%%", out)
	}
	if out = mustRun(t, "", args("key status", admin)); !strings.Contains(lineWith(t, out, "state"), "disabled") {
		t.Fatalf("key status after disable printed %q", out)
	}
	if pt := mustRun(t, ct, args("decrypt --scope chat --aad msg-1", svc)); pt != "hello, world" {
		t.Fatalf("decrypt after disable printed %q", pt)
	}

	// The tenant's own audit chain: a table with a cursor, and JSON lines.
	out = mustRun(t, "", args("key audit --action key.configure --limit 1", admin))
	if !strings.Contains(out, "key.configure") || !strings.Contains(out, "more: byok key audit --cursor ") {
		t.Fatalf("key audit --limit 1 printed %q; want a key.configure row and the next cursor", out)
	}
	cursor := strings.Fields(lineWith(t, out, "more:"))[5]
	if out = mustRun(t, "", args("key audit --action key.configure --cursor "+cursor, admin)); !strings.Contains(out, "key.configure") {
		t.Fatalf("key audit --cursor printed %q; want the next key.configure", out)
	}
	out = mustRun(t, "", args("key audit --export --action key. --since 2026-01-01T00:00:00Z", admin))
	for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e client.AuditEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Tenant != "acme" || !strings.HasPrefix(e.Action, "key.") {
			t.Fatalf("key audit --export line %d = %q, %v; want an event of acme's key", i, l, err)
		}
	}
	mustFail(t, 2, "apply to listings only", "", args("key audit --export --limit 5", admin))
	mustFail(t, 2, "not an RFC 3339 time", "", args("key audit --since yesterday", admin))
}

// lineWith returns the first line of out that contains s.
func lineWith(t *testing.T, out, s string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	t.Fatalf("no line with %q in %q", s, out)
	return ""
}
