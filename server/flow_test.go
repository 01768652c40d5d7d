package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server/token"
)

// encrypt encrypts pt in scope through the API and returns the
// ciphertext.
func (e *env) encrypt(t *testing.T, svc, tenant, scope string, pt []byte) []byte {
	t.Helper()
	var r dataResult
	e.must(t, 200, "POST", "/v1/tenants/"+tenant+"/encrypt", svc, map[string]any{"scope": scope, "plaintext": pt}).decode(t, &r)
	return r.Ciphertext
}

// decrypt returns the answer of a decrypt of ct.
func (e *env) decrypt(t *testing.T, svc, tenant, scope string, ct []byte) resp {
	t.Helper()
	return e.do(t, "POST", "/v1/tenants/"+tenant+"/decrypt", svc, map[string]any{"scope": scope, "ciphertext": ct})
}

func (e *env) mustDecrypt(t *testing.T, svc, tenant, scope string, ct, want []byte) {
	t.Helper()
	r := e.decrypt(t, svc, tenant, scope, ct)
	var d dataResult
	if r.status != 200 {
		t.Fatalf("decrypt in scope %s = %d %s, want 200", scope, r.status, r.body)
	}
	r.decode(t, &d)
	if !bytes.Equal(d.Plaintext, want) {
		t.Fatalf("decrypt in scope %s = %q, want %q", scope, d.Plaintext, want)
	}
}

// TestKeyLifecycleThroughAPI drives a tenant's customer key through its
// whole life over HTTP, against the real lifecycle with fake vaults:
// configure, test (failing, then passing), proceed, activation, data in a
// covered and a deselected scope, rotation, inventory, revocation,
// restoration and disable.
func TestKeyLifecycleThroughAPI(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme", "chat", "files")
	admin := e.token(t, token.TenantAdmin, "acme")
	svc := e.token(t, token.Service, "acme")

	if k := e.keyState(t, "acme", admin); k.State != lifecycle.StateNone {
		t.Fatalf("new tenant's key state = %s, want none", k.State)
	}
	// Configure with the role missing: the test fails and Proceed is refused.
	e.customer.FailKey(e.cmk, kms.Authoritative, kms.ReasonDenied)
	k := keyView{}
	e.must(t, 200, "PUT", "/v1/tenants/acme/key", admin, map[string]any{
		"key_id": e.cmk, "directory_id": "dir", "client_id": "app", "credential": "client-secret", "secret": "s3cret-value",
	}).decode(t, &k)
	if k.State != lifecycle.StateDraft || !k.Settings.SecretSet || strings.Contains(string(e.keyStateRaw(t, admin)), "s3cret-value") {
		t.Fatalf("after configure: state %s, secret_set %v; want draft, true and the secret never shown", k.State, k.Settings.SecretSet)
	}
	var rep reportView
	e.must(t, 200, "POST", "/v1/tenants/acme/key/test", admin, nil).decode(t, &rep)
	if rep.Passed {
		t.Fatal("Test passed while the customer key denies access")
	}
	enforce := epoch.Add(24 * time.Hour).Format(time.RFC3339)
	proceed := map[string]any{"enforce_at": enforce, "coverage": map[string]any{"all": true, "exclude": []string{"files"}}}
	if r := e.do(t, "POST", "/v1/tenants/acme/key/proceed", admin, proceed); r.status != 409 || r.errCode() != CodeInvalidState {
		t.Fatalf("proceed without a passing test = %d %s, want 409 invalid_state", r.status, r.body)
	}
	// Grant the role: the test passes and Proceed schedules activation.
	e.customer.HealKey(e.cmk)
	e.must(t, 200, "POST", "/v1/tenants/acme/key/test", admin, nil).decode(t, &rep)
	if !rep.Passed {
		t.Fatalf("Test failed with access granted: %+v", rep)
	}
	e.must(t, 200, "POST", "/v1/tenants/acme/key/proceed", admin, proceed).decode(t, &k)
	if k.State != lifecycle.StateScheduled {
		t.Fatalf("after proceed: state %s, want scheduled", k.State)
	}
	// Data written before activation stays readable after it.
	before := e.encrypt(t, svc, "acme", "chat", []byte("before"))

	// The enforcement date comes: activation.
	e.clock.Advance(25 * time.Hour)
	e.tick(t)
	e.tick(t)
	if k = e.keyState(t, "acme", admin); k.State != lifecycle.StateActive {
		t.Fatalf("after the enforcement date: state %s, want active (job %+v)", k.State, k.Job)
	}
	covered := e.encrypt(t, svc, "acme", "chat", []byte("covered"))
	deselected := e.encrypt(t, svc, "acme", "files", []byte("deselected"))
	e.mustDecrypt(t, svc, "acme", "chat", before, []byte("before"))

	// Rotate to a new version of the same key: old data still decrypts,
	// and the old version is safe to retire.
	old := k.CurrentKeyID
	v2 := e.customer.Rotate(e.cmk)
	var j jobView
	e.must(t, 200, "POST", "/v1/tenants/acme/key/rotate", admin, map[string]any{"key_id": v2}).decode(t, &j)
	if j.State != lifecycle.JobDone {
		t.Fatalf("rotation job = %+v, want done", j)
	}
	e.mustDecrypt(t, svc, "acme", "chat", covered, []byte("covered"))
	var inv inventoryView
	e.must(t, 200, "GET", "/v1/tenants/acme/key/inventory", admin, nil).decode(t, &inv)
	if !hasVersion(inv, old, true) || !hasVersion(inv, v2, false) {
		t.Fatalf("inventory after rotation = %+v; want %s safe to retire and %s in use", inv, old, v2)
	}

	// Revoke the role: the covered scope fails closed at the next check,
	// the deselected one keeps working.
	e.customer.FailKey(e.cmk, kms.Authoritative, kms.ReasonDenied)
	e.clock.Advance(11 * time.Second)
	e.tick(t)
	if r := e.decrypt(t, svc, "acme", "chat", covered); r.status != 403 || r.errCode() != CodeKeyRevoked {
		t.Fatalf("decrypt in a covered scope after revocation = %d %s, want 403 key_revoked", r.status, r.body)
	}
	e.mustDecrypt(t, svc, "acme", "files", deselected, []byte("deselected"))
	var tl struct{ Events []timelineEntry }
	e.must(t, 200, "GET", "/v1/tenants/acme/key/timeline", admin, nil).decode(t, &tl)
	if len(tl.Events) == 0 || tl.Events[0].Kind != lifecycle.HealthRevoked || tl.Events[0].DetectedAt == nil {
		t.Fatalf("timeline after revocation = %+v, want a revoked entry first", tl.Events)
	}
	// Disable is refused while the key is unreachable.
	if r := e.do(t, "POST", "/v1/tenants/acme/key/disable", admin, nil); r.status != 409 {
		t.Fatalf("disable while revoked = %d %s, want 409", r.status, r.body)
	}

	// Restore the role: service resumes by itself.
	e.customer.HealKey(e.cmk)
	e.clock.Advance(11 * time.Second)
	e.tick(t)
	e.mustDecrypt(t, svc, "acme", "chat", covered, []byte("covered"))

	// Disable BYOK, then revoke again: everything still decrypts.
	e.must(t, 202, "POST", "/v1/tenants/acme/key/disable", admin, nil)
	e.tick(t)
	e.customer.FailKey(e.cmk, kms.Authoritative, kms.ReasonDenied)
	e.clock.Advance(11 * time.Second)
	e.tick(t)
	e.mustDecrypt(t, svc, "acme", "chat", covered, []byte("covered"))
	e.mustDecrypt(t, svc, "acme", "chat", before, []byte("before"))
	e.mustDecrypt(t, svc, "acme", "files", deselected, []byte("deselected"))
	if k = e.keyState(t, "acme", admin); k.State != lifecycle.StateDisabled {
		t.Fatalf("after disable: state %s, want disabled", k.State)
	}

	// The tenant's audit log holds the story, and only its own chain.
	var page auditPage
	e.must(t, 200, "GET", "/v1/tenants/acme/audit?limit=1000", admin, nil).decode(t, &page)
	actions := map[string]bool{}
	for _, ev := range page.Events {
		if ev.Tenant != "acme" {
			t.Fatalf("tenant audit shows an event of chain %q", ev.Tenant)
		}
		actions[ev.Action] = true
	}
	for _, a := range []string{"tenant.create", "key.test", "key.rotate", "key.disable"} {
		if !actions[a] {
			t.Errorf("tenant audit lacks %s; has %v", a, actions)
		}
	}
	exp := e.must(t, 200, "GET", "/v1/tenants/acme/audit/export", admin, nil)
	if got := bytes.Count(exp.body, []byte("\n")); got < len(page.Events) || exp.header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("export has %d lines of type %q, want at least %d of application/x-ndjson", got, exp.header.Get("Content-Type"), len(page.Events))
	}
	for _, line := range bytes.Split(bytes.TrimSpace(exp.body), []byte("\n")) {
		if !json.Valid(line) {
			t.Fatalf("export line is not JSON: %s", line)
		}
	}
}

func (e *env) keyStateRaw(t *testing.T, admin string) []byte {
	return e.must(t, 200, "GET", "/v1/tenants/acme/key", admin, nil).body
}

func hasVersion(inv inventoryView, keyID string, safe bool) bool {
	for _, v := range inv.Versions {
		if v.KeyID == keyID {
			return v.SafeToRetire == safe
		}
	}
	return false
}
