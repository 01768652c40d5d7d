package client_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/client"
	"github.com/openbyok/byok/client/clienttest"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/awskms"
)

var ctx = context.Background()

// connect returns a client of srv with tok; it fails t on error.
func connect(t *testing.T, srv *clienttest.Server, tok string) *client.Client {
	t.Helper()
	c, err := client.New(srv.URL, tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantCode fails t unless err is an *client.Error with status and code.
func wantCode(t *testing.T, what string, err error, status int, code string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T), want a *client.Error %d %s", what, err, err, status, code)
	}
	if e.Status != status || e.Code != code || e.Message == "" {
		t.Fatalf("%s: error %d %s %q, want %d %s with a message", what, e.Status, e.Code, e.Message, status, code)
	}
	return e
}

func TestOperatorRoutes(t *testing.T) {
	srv := clienttest.New(t, 0)
	op := connect(t, srv, srv.Operator)

	tn, err := op.CreateTenant(ctx, "acme", "", []string{"chat", "files"})
	if err != nil || tn.ID != "acme" || tn.Policy != "grace" || tn.State != "none" || !tn.Created.Equal(clienttest.Epoch) {
		t.Fatalf("CreateTenant = %+v, %v; want acme, grace, none, created at the epoch", tn, err)
	}
	if _, err := op.CreateTenant(ctx, "globex", "strict", nil); err != nil {
		t.Fatal(err)
	}
	_, err = op.CreateTenant(ctx, "acme", "", nil)
	if !errors.Is(err, client.ErrExists) {
		t.Fatalf("CreateTenant of a taken id = %v, want ErrExists", err)
	}
	e := wantCode(t, "CreateTenant with a bad policy", func() error { _, err := op.CreateTenant(ctx, "x", "lenient", nil); return err }(),
		400, client.CodeInvalidInput)
	if e.Field != "policy" || e.RequestID == "" {
		t.Fatalf("bad policy: field %q request id %q, want policy and an id", e.Field, e.RequestID)
	}

	ts, err := op.ListTenants(ctx, client.Page{})
	if err != nil || len(ts) != 2 || ts[0].ID != "acme" || ts[1].ID != "globex" {
		t.Fatalf("ListTenants = %+v, %v; want acme, globex", ts, err)
	}
	ts, err = op.ListTenants(ctx, client.Page{After: "acme", Limit: 1})
	if err != nil || len(ts) != 1 || ts[0].ID != "globex" {
		t.Fatalf("ListTenants after acme = %+v, %v; want globex", ts, err)
	}
	wantCode(t, "ListTenants limit 0..1000", func() error { _, err := op.ListTenants(ctx, client.Page{Limit: 5000}); return err }(),
		400, client.CodeInvalidInput)

	if tn, err = op.Tenant(ctx, "globex"); err != nil || tn.Policy != "strict" {
		t.Fatalf("Tenant(globex) = %+v, %v; want strict", tn, err)
	}
	if _, err = op.Tenant(ctx, "nobody"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Tenant(nobody) = %v, want ErrNotFound", err)
	}
	if tn, err = op.SetPolicy(ctx, "acme", "strict"); err != nil || tn.Policy != "strict" {
		t.Fatalf("SetPolicy = %+v, %v; want strict", tn, err)
	}
	wantCode(t, "SetPolicy bad", func() error { _, err := op.SetPolicy(ctx, "acme", "sometimes"); return err }(), 400, client.CodeInvalidInput)

	// Tokens: created with a text once, listed and read without it, revoked.
	tok, err := op.CreateToken(ctx, client.TokenRequest{Kind: "service", Tenants: []string{"acme", "globex"}, Name: "billing", TTL: 48 * time.Hour})
	if err != nil || tok.Token == "" || tok.Kind != "service" || len(tok.Tenants) != 2 || !tok.Expires.Equal(clienttest.Epoch.Add(48*time.Hour)) {
		t.Fatalf("CreateToken = %+v, %v; want a service token for 2 tenants expiring in 48h", tok, err)
	}
	wantCode(t, "CreateToken of an unknown kind", func() error {
		_, err := op.CreateToken(ctx, client.TokenRequest{Kind: "root"})
		return err
	}(), 400, client.CodeInvalidInput)
	list, err := op.ListTokens(ctx, client.Page{})
	if err != nil || len(list) != 2 {
		t.Fatalf("ListTokens = %+v, %v; want the bootstrap and billing tokens", list, err)
	}
	for _, l := range list {
		if l.Token != "" {
			t.Fatalf("ListTokens shows a token's text: %+v", l)
		}
	}
	got, err := op.Token(ctx, tok.ID)
	if err != nil || got.Name != "billing" || got.Token != "" {
		t.Fatalf("Token = %+v, %v; want billing without its text", got, err)
	}
	wantCode(t, "Token of a malformed id", func() error { _, err := op.Token(ctx, "xyz"); return err }(), 400, client.CodeInvalidInput)
	svc := connect(t, srv, tok.Token)
	if _, err := svc.Encrypt(ctx, "acme", "chat", []byte("x"), nil); err != nil {
		t.Fatalf("a new service token cannot encrypt: %v", err)
	}
	if got, err = op.RevokeToken(ctx, tok.ID); err != nil || got.Revoked.IsZero() {
		t.Fatalf("RevokeToken = %+v, %v; want a revocation time", got, err)
	}
	_, err = svc.Encrypt(ctx, "acme", "chat", []byte("x"), nil)
	if !errors.Is(err, client.ErrTokenRevoked) {
		t.Fatalf("Encrypt with a revoked token = %v, want ErrTokenRevoked", err)
	}

	// The platform key and its inventory.
	pk, err := op.PlatformKey(ctx)
	if err != nil || pk.KeyID != "fake:prk" || !pk.Enabled || pk.Shares == 0 {
		t.Fatalf("PlatformKey = %+v, %v; want fake:prk, enabled, holding shares", pk, err)
	}
	inv, err := op.PlatformInventory(ctx)
	if err != nil || len(inv.Versions) == 0 || !inv.Versions[len(inv.Versions)-1].Current {
		t.Fatalf("PlatformInventory = %+v, %v; want the current version", inv, err)
	}

	// The audit log: pages, filters, and an export in JSON lines.
	pg, err := op.Audit(ctx, client.AuditQuery{Action: "token.", Limit: 1})
	if err != nil || len(pg.Events) != 1 || pg.Events[0].Action != "token.create" || pg.NextCursor == "" || pg.Events[0].Hash == "" {
		t.Fatalf("Audit(token., 1) = %+v, %v; want one token.create event and a cursor", pg, err)
	}
	pg, err = op.Audit(ctx, client.AuditQuery{Action: "token.", Cursor: pg.NextCursor})
	if err != nil || len(pg.Events) != 1 || pg.Events[0].Action != "token.revoke" {
		t.Fatalf("Audit's next page = %+v, %v; want token.revoke", pg, err)
	}
	pg, err = op.Audit(ctx, client.AuditQuery{Tenant: "acme"})
	if err != nil || len(pg.Events) == 0 || pg.Events[0].Tenant != "acme" {
		t.Fatalf("Audit(tenant acme) = %+v, %v; want acme's chain", pg, err)
	}
	pg, err = op.Audit(ctx, client.AuditQuery{All: true, Since: clienttest.Epoch.Add(-time.Hour), Until: clienttest.Epoch.Add(time.Hour)})
	if err != nil || len(pg.Events) == 0 {
		t.Fatalf("Audit(all, since, until) = %+v, %v; want events", pg, err)
	}
	wantCode(t, "Audit tenant and all", func() error { _, err := op.Audit(ctx, client.AuditQuery{Tenant: "acme", All: true}); return err }(),
		400, client.CodeInvalidInput)
	var buf bytes.Buffer
	n, err := op.AuditExport(ctx, client.AuditQuery{All: true}, &buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("AuditExport = %d, %v (%d bytes); want the bytes written", n, err, buf.Len())
	}
	lines := 0
	for sc := bufio.NewScanner(&buf); sc.Scan(); lines++ {
		var ev client.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Hash == "" || ev.Seq == 0 {
			t.Fatalf("export line %d %q: %v; want an event", lines, sc.Text(), err)
		}
	}
	if lines < 4 {
		t.Fatalf("export has %d lines, want every event", lines)
	}
	if _, err := op.AuditExport(ctx, client.AuditQuery{Tenant: "a b"}, &buf); !errors.Is(err, client.ErrInvalidInput) {
		t.Fatalf("AuditExport of a malformed tenant = %v, want ErrInvalidInput", err)
	}
}

// TestKeyAndDataRoutes drives a tenant's key through configure, test,
// proceed, activation, data calls, rotation, re-key, scopes, revocation
// and disable with the client's methods.
func TestKeyAndDataRoutes(t *testing.T) {
	srv := clienttest.New(t, 2)
	op := connect(t, srv, srv.Operator)
	if _, err := op.CreateTenant(ctx, "acme", "", []string{"chat", "files"}); err != nil {
		t.Fatal(err)
	}
	if _, err := op.CreateTenant(ctx, "globex", "", []string{"chat"}); err != nil {
		t.Fatal(err)
	}
	admin := connect(t, srv, srv.Token(t, "tenant-admin", 0, "acme"))
	svc := connect(t, srv, srv.Token(t, "service", 0, "acme"))

	k, err := admin.Key(ctx, "acme")
	if err != nil || k.State != "none" || len(k.Scopes) != 2 {
		t.Fatalf("Key = %+v, %v; want state none with 2 scopes", k, err)
	}
	if _, err := admin.Key(ctx, "globex"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Key of another tenant = %v, want ErrNotFound", err)
	}
	if _, err := op.Key(ctx, "acme"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("Key with an operator token = %v, want ErrForbidden", err)
	}

	// Configure while the role is missing: the test fails, proceed is refused.
	srv.Customer.FailKey(srv.CMK, kms.Authoritative, kms.ReasonDenied)
	k, err = admin.Configure(ctx, "acme", client.Settings{KeyID: srv.CMK, DirectoryID: "dir", ClientID: "app", Credential: "client-secret", Secret: "s3cret"})
	if err != nil || k.State != "draft" || !k.Settings.SecretSet || k.Settings.Provider != "azure-key-vault" {
		t.Fatalf("Configure = %+v, %v; want draft, secret set, azure-key-vault", k, err)
	}
	wantCode(t, "Configure without key_id", func() error { _, err := admin.Configure(ctx, "acme", client.Settings{}); return err }(),
		400, client.CodeInvalidInput)
	rep, err := admin.Test(ctx, "acme")
	if err != nil || rep.Passed || len(rep.Checks) != 2 || rep.Checks[1].Outcome != "fail" || rep.Checks[1].Remedy == "" {
		t.Fatalf("Test with the role missing = %+v, %v; want a failed round trip with a remedy", rep, err)
	}
	enforce := srv.Now().Add(24 * time.Hour)
	cov := &client.Coverage{All: true, Exclude: []string{"files"}}
	if _, err := admin.Proceed(ctx, "acme", enforce, cov); !errors.Is(err, client.ErrInvalidState) {
		t.Fatalf("Proceed without a passing test = %v, want ErrInvalidState", err)
	}
	srv.Customer.HealKey(srv.CMK)
	if rep, err = admin.Test(ctx, "acme"); err != nil || !rep.Passed || rep.KeyID == "" {
		t.Fatalf("Test with the role granted = %+v, %v; want passed", rep, err)
	}
	e := wantCode(t, "Proceed in the past", func() error { _, err := admin.Proceed(ctx, "acme", srv.Now().Add(-time.Hour), cov); return err }(),
		400, client.CodeInvalidInput)
	if e.Field != "enforce_at" {
		t.Fatalf("Proceed in the past: field %q, want enforce_at", e.Field)
	}
	if k, err = admin.Proceed(ctx, "acme", enforce, cov); err != nil || k.State != "scheduled" || !k.EnforceAt.Equal(enforce) {
		t.Fatalf("Proceed = %+v, %v; want scheduled at %s", k, err, enforce)
	}
	if k, err = admin.SetScopes(ctx, "acme", client.Coverage{All: true, Exclude: []string{"files"}}); err != nil || k.Coverage.Exclude[0] != "files" {
		t.Fatalf("SetScopes while scheduled = %+v, %v", k, err)
	}

	// Activation on the enforcement date.
	srv.Advance(25 * time.Hour)
	srv.Tick(t)
	srv.Tick(t)
	if k, err = admin.Key(ctx, "acme"); err != nil || k.State != "active" || k.CurrentKeyID == "" || k.ActivatedAt.IsZero() {
		t.Fatalf("Key after the enforcement date = %+v, %v; want active", k, err)
	}

	// Data calls, in a covered and a deselected scope.
	ct, err := svc.Encrypt(ctx, "acme", "chat", []byte("hello"), []byte("msg-1"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := svc.Decrypt(ctx, "acme", "chat", ct, []byte("msg-1"))
	if err != nil || string(pt) != "hello" {
		t.Fatalf("Decrypt = %q, %v; want hello", pt, err)
	}
	if _, err := svc.Decrypt(ctx, "acme", "chat", ct, []byte("msg-2")); !errors.Is(err, client.ErrDecryptFailed) {
		t.Fatalf("Decrypt with another aad = %v, want ErrDecryptFailed", err)
	}
	wantCode(t, "Decrypt of bytes that are no ciphertext", func() error { _, err := svc.Decrypt(ctx, "acme", "chat", []byte("junk"), nil); return err }(),
		400, client.CodeInvalidCiphertext)
	if _, err := svc.Encrypt(ctx, "globex", "chat", []byte("x"), nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Encrypt for a tenant the token does not hold = %v, want ErrNotFound", err)
	}
	empty, err := svc.Encrypt(ctx, "acme", "files", nil, nil)
	if err != nil {
		t.Fatalf("Encrypt of an empty plaintext: %v", err)
	}
	if pt, err = svc.Decrypt(ctx, "acme", "files", empty, nil); err != nil || pt == nil || len(pt) != 0 {
		t.Fatalf("Decrypt of an empty plaintext = %q (nil %v), %v; want empty, not nil", pt, pt == nil, err)
	}
	re, err := svc.Reencrypt(ctx, "acme", "chat", ct, []byte("msg-1"))
	if err != nil || bytes.Equal(re, ct) {
		t.Fatalf("Reencrypt = %v; want a new ciphertext", err)
	}
	rs, err := svc.Batch(ctx, "acme", []client.BatchItem{
		{Op: client.OpEncrypt, Scope: "chat", Data: []byte("b1")},
		{Op: client.OpDecrypt, Scope: "chat", Data: re, AAD: []byte("msg-1")},
		{Op: client.OpReencrypt, Scope: "chat", Data: ct, AAD: []byte("msg-1")},
		{Op: client.OpDecrypt, Scope: "chat", Data: ct},
		{Op: "sign", Scope: "chat", Data: ct},
	})
	if err != nil || len(rs) != 5 {
		t.Fatalf("Batch = %+v, %v", rs, err)
	}
	if rs[0].Err != nil || len(rs[0].Data) == 0 || rs[1].Err != nil || string(rs[1].Data) != "hello" || rs[2].Err != nil || len(rs[2].Data) == 0 {
		t.Fatalf("Batch results 0-2 = %+v; want a ciphertext, hello, a ciphertext", rs[:3])
	}
	if !errors.Is(rs[3].Err, client.ErrDecryptFailed) {
		t.Fatalf("Batch item 3 (no aad) = %v, want ErrDecryptFailed", rs[3].Err)
	}
	var itemErr *client.Error
	if !errors.As(rs[4].Err, &itemErr) || itemErr.Code != client.CodeInvalidInput || itemErr.Field != "items[4].op" || itemErr.Status != 400 {
		t.Fatalf("Batch item 4 (unknown op) = %#v, want invalid_input on items[4].op", rs[4].Err)
	}
	if _, err := svc.Batch(ctx, "acme", make([]client.BatchItem, 9)); !errors.Is(err, client.ErrInvalidInput) {
		t.Fatalf("Batch over the limit = %v, want ErrInvalidInput", err)
	}

	// Rotation to a new version: old data decrypts, the old version is
	// safe to retire.
	old := k.CurrentKeyID
	v2 := srv.Customer.Rotate(srv.CMK)
	j, err := admin.Rotate(ctx, "acme", client.Rotation{KeyID: v2})
	if err != nil || j.Kind != "rotate" || j.State != "done" || !j.Finished() {
		t.Fatalf("Rotate = %+v, %v; want a finished rotate job", j, err)
	}
	if pt, err = svc.Decrypt(ctx, "acme", "chat", ct, []byte("msg-1")); err != nil || string(pt) != "hello" {
		t.Fatalf("Decrypt after rotation = %q, %v", pt, err)
	}
	inv, err := admin.Inventory(ctx, "acme")
	if err != nil || !hasVersion(inv, old, true) || !hasVersion(inv, v2, false) {
		t.Fatalf("Inventory = %+v, %v; want %s safe to retire, %s current", inv, err, old, v2)
	}
	wantCode(t, "Rotate with key_id and settings", func() error {
		_, err := admin.Rotate(ctx, "acme", client.Rotation{KeyID: v2, Settings: &client.Settings{KeyID: srv.CMK}})
		return err
	}(), 400, client.CodeInvalidInput)
	if _, err := admin.Configure(ctx, "acme", client.Settings{KeyID: srv.CMK}); !errors.Is(err, client.ErrInvalidState) {
		t.Fatalf("Configure after the enforcement date = %v, want ErrInvalidState", err)
	}

	// Re-key: a background job, which WaitJob follows batch by batch.
	j, err = admin.Rekey(ctx, "acme")
	if err != nil || j.Kind != "rekey" || j.Finished() {
		t.Fatalf("Rekey = %+v, %v; want an unfinished rekey job", j, err)
	}
	var seen []client.Job
	j, err = admin.WaitJob(ctx, "acme", j.ID, time.Millisecond, func(j client.Job) { seen = append(seen, j) })
	if err != nil || j.State != "done" || j.Done != j.Total || len(seen) == 0 || seen[len(seen)-1].State != "done" {
		t.Fatalf("WaitJob = %+v, %v (seen %d states); want done", j, err, len(seen))
	}
	if got, err := admin.Job(ctx, "acme", j.ID); err != nil || got.ID != j.ID || got.State != "done" {
		t.Fatalf("Job = %+v, %v", got, err)
	}
	if _, err := admin.Job(ctx, "acme", "no-such-job"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Job of an unknown id = %v, want ErrNotFound", err)
	}
	if _, err := admin.WaitJob(ctx, "acme", j.ID, 0, nil); err == nil || !strings.Contains(err.Error(), "positive") {
		t.Fatalf("WaitJob with interval 0 = %v, want an error asking for a positive one", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := admin.WaitJob(cancelled, "acme", j.ID, time.Millisecond, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitJob with a cancelled context = %v, want context.Canceled", err)
	}

	// Revocation: the covered scope fails closed with the reason, the
	// timeline records it; restoration; disable.
	srv.Customer.FailKey(srv.CMK, kms.Authoritative, kms.ReasonDenied)
	srv.Advance(clienttest.CheckInterval + time.Second)
	srv.Tick(t)
	_, err = svc.Encrypt(ctx, "acme", "chat", []byte("x"), nil)
	if e := wantCode(t, "Encrypt under a revoked key", err, 403, client.CodeKeyRevoked); !strings.Contains(e.Message, string(kms.ReasonDenied)) {
		t.Fatalf("revoked: message %q does not name the reason", e.Message)
	}
	if _, err := svc.Encrypt(ctx, "acme", "files", []byte("x"), nil); err != nil {
		t.Fatalf("Encrypt in the deselected scope while revoked: %v", err)
	}
	if _, err := admin.Disable(ctx, "acme"); !errors.Is(err, client.ErrInvalidState) {
		t.Fatalf("Disable while revoked = %v, want ErrInvalidState", err)
	}
	tl, err := admin.Timeline(ctx, "acme", 10)
	if err != nil || len(tl) == 0 || tl[0].Kind != "revoked" || tl[0].DetectedAt.IsZero() {
		t.Fatalf("Timeline = %+v, %v; want a revocation", tl, err)
	}
	wantCode(t, "Timeline limit", func() error { _, err := admin.Timeline(ctx, "acme", -1); return err }(), 400, client.CodeInvalidInput)
	srv.Customer.HealKey(srv.CMK)
	srv.Advance(clienttest.CheckInterval + time.Second)
	srv.Tick(t)
	if tl, err = admin.Timeline(ctx, "acme", 0); err != nil || len(tl) < 2 {
		t.Fatalf("Timeline after restoration = %+v, %v; want two events", tl, err)
	}
	j, err = admin.Disable(ctx, "acme")
	if err != nil || j.Kind != "disable" {
		t.Fatalf("Disable = %+v, %v", j, err)
	}
	if j, err = admin.WaitJob(ctx, "acme", j.ID, time.Millisecond, nil); err != nil || j.State != "done" {
		t.Fatalf("the disable job = %+v, %v; want done", j, err)
	}
	if k, err = admin.Key(ctx, "acme"); err != nil || k.State != "disabled" {
		t.Fatalf("Key after disable = %+v, %v; want disabled", k, err)
	}

	// The tenant's own audit chain, listed and exported.
	pg, err := admin.TenantAudit(ctx, "acme", client.AuditQuery{Action: "key.", Tenant: "globex", All: true})
	if err != nil || len(pg.Events) == 0 {
		t.Fatalf("TenantAudit = %+v, %v", pg, err)
	}
	for _, ev := range pg.Events {
		if ev.Tenant != "acme" || !strings.HasPrefix(ev.Action, "key.") {
			t.Fatalf("TenantAudit returned %+v; want acme's key.* events only", ev)
		}
	}
	var buf bytes.Buffer
	if _, err := admin.TenantAuditExport(ctx, "acme", client.AuditQuery{}, &buf); err != nil || !strings.Contains(buf.String(), `"action":"key.disable`) {
		t.Fatalf("TenantAuditExport = %v; want the disable event in %.200q", err, buf.String())
	}
	if _, err := admin.TenantAudit(ctx, "globex", client.AuditQuery{}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("TenantAudit of another tenant = %v, want ErrNotFound", err)
	}
}

func hasVersion(inv client.Inventory, id string, safe bool) bool {
	for _, v := range inv.Versions {
		if v.KeyID == id && v.SafeToRetire == safe {
			return true
		}
	}
	return false
}

func TestProbes(t *testing.T) {
	srv := clienttest.New(t, 0)
	c := connect(t, srv, "")
	if err := c.Healthz(ctx); err != nil {
		t.Fatalf("Healthz: %v", err)
	}
	r, err := c.Readyz(ctx)
	if err != nil || !r.Ready || r.Checks["store"] != "ok" {
		t.Fatalf("Readyz = %+v, %v; want ready", r, err)
	}
	m, err := c.Metrics(ctx)
	if err != nil || !strings.Contains(m, "byok_http_requests_total") {
		t.Fatalf("Metrics = %.100q, %v; want the Prometheus text", m, err)
	}
	srv.Platform.Fail(kms.Authoritative, kms.ReasonDisabled)
	srv.Advance(time.Minute) // past the readiness cache
	if r, err = c.Readyz(ctx); err != nil || r.Ready || r.Checks["platform_key"] == "ok" {
		t.Fatalf("Readyz with the platform key failing = %+v, %v; want not ready, naming the platform key", r, err)
	}
	if _, err := c.ListTenants(ctx, client.Page{}); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("ListTenants without a token = %v, want ErrUnauthenticated", err)
	}
}

func TestTokens(t *testing.T) {
	srv := clienttest.New(t, 0)
	expired := srv.Token(t, "operator", time.Hour)
	srv.Advance(2 * time.Hour)
	for _, tc := range []struct {
		name  string
		token string
		code  string
	}{
		{"malformed", "not-a-token", client.CodeUnauthenticated},
		{"unknown", "byok_operator_0123456789abcdef0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", client.CodeUnauthenticated},
		{"expired", expired, client.CodeTokenExpired},
	} {
		_, err := connect(t, srv, tc.token).ListTenants(ctx, client.Page{})
		e := wantCode(t, tc.name, err, 401, tc.code)
		if strings.Contains(e.Error(), tc.token) {
			t.Fatalf("%s: the error %q shows the token", tc.name, e)
		}
	}
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "byok.example.com", "ftp://byok.example.com", "https://", "https://h/?x=1", "https://u:p@h", "http://h/#f", "%zz"} {
		if _, err := client.New(u, "t", nil); err == nil {
			t.Errorf("New(%q) succeeded, want an error", u)
		}
	}
	if _, err := client.New("https://h", "byok_operator_a b", nil); err == nil || strings.Contains(err.Error(), "byok_operator") {
		t.Errorf("New with a token holding a space = %v; want an error that does not show it", err)
	}
	c, err := client.New("https://byok.example.com/api/", "byok_operator_secret", &client.Options{UserAgent: "x"})
	if err != nil || strings.Contains(c.String(), "secret") || !strings.Contains(c.String(), "byok.example.com/api") {
		t.Fatalf("New = %v, %v; want a client whose String names the server, not the token", c, err)
	}
}

// TestRequests checks what the client sends: the path prefix, escaping,
// headers and body, against a recording handler.
func TestRequests(t *testing.T) {
	var got *http.Request
	var body []byte
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = readAll(r)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"a/b","policy":"grace","state":"none"}`))
	}))
	defer h.Close()
	c, err := client.New(h.URL+"/prefix/", "tok", &client.Options{HTTPClient: h.Client(), UserAgent: "test-agent"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetPolicy(ctx, "a/b", "strict"); err != nil {
		t.Fatal(err)
	}
	if got.Method != "PUT" || got.URL.EscapedPath() != "/prefix/v1/tenants/a%2Fb/policy" {
		t.Fatalf("request %s %s, want PUT /prefix/v1/tenants/a%%2Fb/policy", got.Method, got.URL.EscapedPath())
	}
	if got.Header.Get("Authorization") != "Bearer tok" || got.Header.Get("Content-Type") != "application/json" || got.Header.Get("User-Agent") != "test-agent" {
		t.Fatalf("headers %v", got.Header)
	}
	if string(body) != `{"policy":"strict"}` {
		t.Fatalf("body %s", body)
	}
	if _, err := c.Proceed(ctx, "t", time.Date(2026, 7, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), nil); err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"enforce_at":"2026-06-30T23:00:00Z"}` {
		t.Fatalf("Proceed body %s, want the time in UTC and no coverage", body)
	}
	if _, err := c.Rotate(ctx, "t", client.Rotation{}); err != nil {
		t.Fatal(err)
	}
	if string(body) != `{}` {
		t.Fatalf("Rotate to the current version sent %s, want {}", body)
	}
	if _, err := c.CreateToken(ctx, client.TokenRequest{Kind: "service", Tenants: []string{"t"}, TTL: 90 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"kind":"service","tenants":["t"],"ttl":"1h30m0s"}` {
		t.Fatalf("CreateToken body %s", body)
	}
	if _, err := c.Audit(ctx, client.AuditQuery{Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Action: "key.", Limit: 5}); err != nil {
		t.Fatal(err)
	}
	if q := got.URL.Query(); q.Get("since") != "2026-01-02T03:04:05Z" || q.Get("action") != "key." || q.Get("limit") != "5" || q.Has("until") || q.Has("all") {
		t.Fatalf("Audit query %s", got.URL.RawQuery)
	}
}

// TestErrorAnswers checks the decoding of error answers, including those
// that do not come from a byok server.
func TestErrorAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   client.Error
	}{
		{"byok error", 409, nil, `{"error":{"code":"invalid_state","message":"not now","field":"x"}}`,
			client.Error{Status: 409, Code: "invalid_state", Message: "not now", Field: "x"}},
		{"retry after", 503, map[string]string{"Retry-After": "30", "X-Request-Id": "r1"}, `{"error":{"code":"key_unavailable","message":"later"}}`,
			client.Error{Status: 503, Code: "key_unavailable", Message: "later", RetryAfter: 30 * time.Second, RequestID: "r1"}},
		{"proxy page", 502, nil, "<html>Bad Gateway</html>", client.Error{Status: 502, Code: "http_502"}},
		{"empty", 404, nil, "", client.Error{Status: 404, Code: "http_404"}},
	} {
		h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range tc.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		c, err := client.New(h.URL, "byok_operator_x_secret", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Tenant(ctx, "acme")
		h.Close()
		var e *client.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v, want a *client.Error", tc.name, err)
		}
		if e.Status != tc.want.Status || e.Code != tc.want.Code || e.Field != tc.want.Field || e.RetryAfter != tc.want.RetryAfter || e.RequestID != tc.want.RequestID {
			t.Errorf("%s: %+v, want %+v", tc.name, *e, tc.want)
		}
		if tc.want.Message != "" && e.Message != tc.want.Message || e.Message == "" {
			t.Errorf("%s: message %q, want %q", tc.name, e.Message, tc.want.Message)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error %q shows the token", tc.name, err)
		}
		if !errors.Is(err, &client.Error{Status: tc.status}) || errors.Is(err, &client.Error{Status: 418}) {
			t.Errorf("%s: errors.Is by status does not match as documented", tc.name)
		}
	}
}

func TestTransportErrors(t *testing.T) {
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not json"))
	}))
	c, err := client.New(h.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tenant(ctx, "acme"); err == nil || !strings.Contains(err.Error(), "not the JSON expected") {
		t.Fatalf("a 200 that is not JSON = %v, want an error saying so", err)
	}
	h.Close()
	_, err = c.Tenant(ctx, "acme")
	var e *client.Error
	if err == nil || errors.As(err, &e) {
		t.Fatalf("a closed server = %v, want a transport error, not an answer", err)
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

// TestAWSSettings configures a tenant's AWS KMS key through the client
// against a server that offers AWS KMS over awsemu, and reads the
// provider's fields back: direct access, then a role with its external
// id, which Test configuration uses to assume the role in the emulator.
func TestAWSSettings(t *testing.T) {
	srv := clienttest.NewWithAWS(t, 0)
	op := connect(t, srv, srv.Operator)
	if _, err := op.CreateTenant(ctx, "acme", "grace", []string{"chat"}); err != nil {
		t.Fatal(err)
	}
	admin := connect(t, srv, srv.Token(t, "tenant-admin", 0, "acme"))
	key := srv.AWS.KeyARN

	k, err := admin.Configure(ctx, "acme", client.Settings{Provider: "aws-kms", KeyID: key})
	if s := k.Settings; err != nil || k.State != "draft" || s.Provider != "aws-kms" || s.KeyID != key || s.RoleARN != "" || s.ExternalID != "" || s.SecretSet {
		t.Fatalf("Configure direct access = %+v, %v; want draft, aws-kms, the key ARN, no role", k, err)
	}
	rep, err := admin.Test(ctx, "acme")
	if err != nil || rep.Passed || !strings.Contains(fmt.Sprint(rep.Checks), awskms.KeyPolicyStatement(clienttest.AWSPlatform, "acme")) {
		t.Fatalf("Test without the key policy statement = %+v, %v; want it failed with the statement to paste", rep, err)
	}

	// A role: the fields go out and come back, and Test assumes the role.
	const role = "arn:aws:iam::" + clienttest.AWSAccount + ":role/byok-access"
	ext := awskms.NewExternalID()
	emu := srv.AWS.Emulator
	if err := emu.PutRole(role, awskms.TrustPolicy(clienttest.AWSPlatform, ext)); err != nil {
		t.Fatal(err)
	}
	def := strings.TrimSuffix(awsemu.DefaultKeyPolicy(clienttest.AWSAccount), "]}")
	policy := def + "," + strings.TrimPrefix(strings.TrimSpace(awskms.KeyPolicyStatement(role, "acme")), "[") + "}"
	if err := emu.PutKeyPolicy(key, policy); err != nil {
		t.Fatal(err)
	}
	k, err = admin.Configure(ctx, "acme", client.Settings{Provider: "aws-kms", KeyID: key, RoleARN: role, ExternalID: ext})
	if s := k.Settings; err != nil || s.Provider != "aws-kms" || s.RoleARN != role || s.ExternalID != ext {
		t.Fatalf("Configure with a role = %+v, %v; want role %s and external id %s", k.Settings, err, role, ext)
	}
	if k, err = admin.Key(ctx, "acme"); err != nil || k.Settings.RoleARN != role || k.Settings.ExternalID != ext || k.Settings.DirectoryID != "" {
		t.Fatalf("Key = %+v, %v; want the role and external id read back", k.Settings, err)
	}
	if rep, err = admin.Test(ctx, "acme"); err != nil || !rep.Passed {
		t.Fatalf("Test through the role = %+v, %v; want passed", rep, err)
	}

	// The provider checks its fields: each error names the one at fault.
	for _, tc := range []struct {
		s     client.Settings
		field string
	}{
		{client.Settings{Provider: "aws-kms", KeyID: key, ExternalID: ext}, "external_id"},
		{client.Settings{Provider: "aws-kms", KeyID: key, RoleARN: role}, "external_id"},
		{client.Settings{Provider: "aws-kms", KeyID: key, Credential: "platform-app"}, "credential"},
		{client.Settings{Provider: "azure-key-vault", KeyID: srv.CMK, Credential: "platform-app", RoleARN: role}, "role_arn"},
	} {
		_, err := admin.Configure(ctx, "acme", tc.s)
		if e := wantCode(t, fmt.Sprintf("Configure %+v", tc.s), err, 400, client.CodeInvalidInput); e.Field != tc.field {
			t.Errorf("Configure %+v: field %q (%s), want %q", tc.s, e.Field, e.Message, tc.field)
		}
	}
}
