package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/internal/fakeclock"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/lifecycletest"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store/sqlite"
)

// tracedEnv is newEnv with tracing into an in-memory exporter, and the
// providers' key material recorded (to check no span carries it).
type tracedEnv struct {
	*env
	spans *tracetest.InMemoryExporter
	keys  *keyBytes
}

// keyBytes records every plaintext given to or returned by a provider:
// shares of tenant keys.
type keyBytes struct {
	mu   sync.Mutex
	seen [][]byte
}

func (k *keyBytes) add(b []byte) {
	k.mu.Lock()
	k.seen = append(k.seen, bytes.Clone(b))
	k.mu.Unlock()
}

func (k *keyBytes) all() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte(nil), k.seen...)
}

type recordingProvider struct {
	kms.Provider
	k *keyBytes
}

func (p recordingProvider) Wrap(ctx context.Context, keyID string, plaintext []byte) (kms.Wrapped, error) {
	p.k.add(plaintext)
	return p.Provider.Wrap(ctx, keyID, plaintext)
}

func (p recordingProvider) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	b, err := p.Provider.Unwrap(ctx, w)
	if err == nil {
		p.k.add(b)
	}
	return b, err
}

// recordingConnector is the fake connector whose providers record.
type recordingConnector struct {
	lifecycletest.Connector
	k *keyBytes
}

func (c recordingConnector) Provider(ctx context.Context, s lifecycle.KeySettings) (kms.Provider, error) {
	p, err := c.Connector.Provider(ctx, s)
	if err != nil {
		return nil, err
	}
	return recordingProvider{p, c.k}, nil
}

func newTracedEnv(t *testing.T) *tracedEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "byok.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	e := &env{db: db, platform: kmstest.NewFake(), customer: kmstest.NewFake(), clock: fakeclock.New(epoch), logs: &bytes.Buffer{}}
	keys := &keyBytes{}
	prk := e.platform.AddKey("prk")
	e.cmk = e.customer.AddKey("cmk")
	e.log = audit.New(db, nil)
	e.usage = audit.NewCounter(e.log)
	m := NewMetrics(nil)
	m.TraceWith(tp)
	e.lc, err = lifecycle.New(lifecycle.Config{
		Store: db, PlatformKMS: m.InstrumentProvider("platform", recordingProvider{e.platform, keys}), PlatformKeyID: prk,
		Connectors: []lifecycle.Connector{recordingConnector{lifecycletest.Connector{KMS: e.customer}, keys}},
		Instrument: m.InstrumentProvider,
		Audit:      e.log, Now: e.clock.Now, PlatformOnlyScopes: []string{"cache"},
		Keyring: byok.Config{CheckInterval: 10 * time.Second, MaxStaleness: time.Minute, Trace: m.KeyringTrace()},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.h, err = New(Config{Lifecycle: e.lc, Store: db, Audit: e.log, PlatformKMS: e.platform, PlatformKeyID: prk,
		Logger: slog.New(slog.NewJSONHandler(lockedWriter{w: e.logs}, nil)), Now: e.clock.Now, MaxBatch: 8, Metrics: m, Usage: e.usage})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	e.operator, _, err = issueToken(ctx, db, token.Operator, nil, "bootstrap", 0, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &tracedEnv{env: e, spans: exp, keys: keys}
}

// doTraced sends a JSON request with a traceparent header (if not "").
func (e *tracedEnv) doTraced(t *testing.T, method, path, tok, traceparent string, body any) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func named(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func one(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	got := named(spans, name)
	if len(got) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name)
		}
		t.Fatalf("%d spans named %q, want 1; spans: %q", len(got), name, names)
	}
	return got[0]
}

// TestTraceparentAccepted: a request that carries a W3C traceparent is a
// server span of that trace, child of the caller's span, with the route
// pattern as its name, the status code and the request id.
func TestTraceparentAccepted(t *testing.T) {
	e := newTracedEnv(t)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	e.tenant(t, "acme", "chat")
	e.spans.Reset()
	r := e.doTraced(t, "GET", "/v1/tenants/acme", e.operator, "00-"+traceID+"-"+parentID+"-01", nil)
	if r.status != 200 {
		t.Fatalf("GET /v1/tenants/acme = %d %s", r.status, r.body)
	}
	s := one(t, e.spans.GetSpans(), "GET /v1/tenants/{tenant}")
	if s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != parentID || !s.Parent.IsRemote() {
		t.Errorf("server span in trace %s under %s (remote %v), want trace %s under the caller's %s",
			s.SpanContext.TraceID(), s.Parent.SpanID(), s.Parent.IsRemote(), traceID, parentID)
	}
	if s.SpanKind != trace.SpanKindServer {
		t.Errorf("span kind %v, want server", s.SpanKind)
	}
	if v, _ := attr(s, "byok.request_id"); v.AsString() == "" || v.AsString() != r.header.Get("X-Request-Id") {
		t.Errorf("byok.request_id = %q, want the X-Request-Id answered, %q", v.AsString(), r.header.Get("X-Request-Id"))
	}
	if v, _ := attr(s, "http.response.status_code"); v.AsInt64() != 200 {
		t.Errorf("http.response.status_code = %v, want 200", v.Emit())
	}

	// An error's code is an attribute too; no traceparent: a new trace.
	e.spans.Reset()
	r = e.doTraced(t, "GET", "/v1/tenants/nobody", e.operator, "", nil)
	s = one(t, e.spans.GetSpans(), "GET /v1/tenants/{tenant}")
	if v, _ := attr(s, "byok.error_code"); v.AsString() != CodeNotFound {
		t.Errorf("byok.error_code = %q, want %s", v.AsString(), CodeNotFound)
	}
	if v, _ := attr(s, "http.response.status_code"); v.AsInt64() != 404 || s.Parent.IsValid() {
		t.Errorf("status %v, parent %v; want 404 and a root span", v.Emit(), s.Parent.SpanID())
	}
	// Probes are not traced.
	e.spans.Reset()
	e.doTraced(t, "GET", "/healthz", "", "", nil)
	if n := len(e.spans.GetSpans()); n != 0 {
		t.Errorf("/healthz made %d spans, want none", n)
	}
}

// activeCustomerKey takes tenant acme to an active customer-managed key.
func (e *tracedEnv) activeCustomerKey(t *testing.T, admin, secret string) {
	t.Helper()
	e.must(t, 200, "PUT", "/v1/tenants/acme/key", admin, map[string]any{
		"key_id": e.cmk, "directory_id": "dir", "client_id": "app", "credential": "client-secret", "secret": secret,
	})
	e.must(t, 200, "POST", "/v1/tenants/acme/key/test", admin, nil)
	e.must(t, 200, "POST", "/v1/tenants/acme/key/proceed", admin, map[string]any{
		"enforce_at": epoch.Add(24 * time.Hour).Format(time.RFC3339), "coverage": map[string]any{"all": true}})
	e.clock.Advance(25 * time.Hour)
	e.tick(t)
	e.tick(t)
	if k := e.keyState(t, "acme", admin); k.State != lifecycle.StateActive {
		t.Fatalf("key state %s, want active", k.State)
	}
}

// TestTraceColdAndWarmPaths: a cold encrypt is a server span, the tenant
// key's derivation under it, and the vault unwraps under that, each with
// the request id sent to the vault; a cold decrypt loads its DEK under
// the request; a warm encrypt is the server span alone.
func TestTraceColdAndWarmPaths(t *testing.T) {
	e := newTracedEnv(t)
	e.tenant(t, "acme", "chat")
	admin := e.token(t, token.TenantAdmin, "acme")
	svc := e.token(t, token.Service, "acme")
	e.activeCustomerKey(t, admin, "CLIENT-SECRET-MARKER")

	e.lc.Keyring().Forget("acme")
	e.spans.Reset()
	r := e.doTraced(t, "POST", "/v1/tenants/acme/encrypt", svc, "", map[string]any{"scope": "chat", "plaintext": []byte("hello")})
	if r.status != 200 {
		t.Fatalf("encrypt = %d %s", r.status, r.body)
	}
	var res dataResult
	r.decode(t, &res)
	spans := e.spans.GetSpans()
	srv := one(t, spans, "POST /v1/tenants/{tenant}/encrypt")
	derive := one(t, spans, "keyring.derive")
	if derive.Parent.SpanID() != srv.SpanContext.SpanID() || derive.SpanContext.TraceID() != srv.SpanContext.TraceID() {
		t.Errorf("keyring.derive's parent = %s, want the request's span %s", derive.Parent.SpanID(), srv.SpanContext.SpanID())
	}
	if v, _ := attr(derive, "byok.outcome"); v.AsString() != "success" {
		t.Errorf("keyring.derive outcome = %q, want success", v.AsString())
	}
	unwraps := named(spans, "kms.unwrap")
	roles := map[string]bool{}
	for _, u := range unwraps {
		if u.Parent.SpanID() != derive.SpanContext.SpanID() {
			t.Errorf("kms.unwrap %v is not a child of keyring.derive", u.Attributes)
		}
		role, _ := attr(u, "byok.kms.role")
		roles[role.AsString()] = true
		opID, _ := attr(u, "byok.kms.request_id")
		keyID, _ := attr(u, "byok.kms.key_id")
		outcome, _ := attr(u, "byok.kms.outcome")
		if opID.AsString() == "" || keyID.AsString() == "" || outcome.AsString() != "success" {
			t.Errorf("kms.unwrap (%s) request id %q, key id %q, outcome %q; want all set, success", role.AsString(), opID.AsString(), keyID.AsString(), outcome.AsString())
		}
		switch role.AsString() {
		case "platform":
			// No audit event of its own: the API request's id goes to the vault.
			if opID.AsString() != r.header.Get("X-Request-Id") {
				t.Errorf("platform unwrap's request id %q, want the request's %q", opID.AsString(), r.header.Get("X-Request-Id"))
			}
		case "customer":
			if !strings.HasPrefix(keyID.AsString(), e.cmk) {
				t.Errorf("customer unwrap's key id %q, want a version of %s", keyID.AsString(), e.cmk)
			}
		}
	}
	if !roles["platform"] || !roles["customer"] {
		t.Errorf("kms.unwrap roles %v, want platform and customer", roles)
	}

	// Warm: no keyring or vault span.
	e.spans.Reset()
	if r := e.doTraced(t, "POST", "/v1/tenants/acme/encrypt", svc, "", map[string]any{"scope": "chat", "plaintext": []byte("again")}); r.status != 200 {
		t.Fatalf("warm encrypt = %d %s", r.status, r.body)
	}
	spans = e.spans.GetSpans()
	one(t, spans, "POST /v1/tenants/{tenant}/encrypt")
	if len(spans) != 1 {
		for _, s := range spans {
			t.Errorf("warm encrypt made span %q", s.Name)
		}
	}

	// Cold decrypt: the DEK's load under the request, the derivation under it.
	e.lc.Keyring().Forget("acme")
	e.spans.Reset()
	if r := e.doTraced(t, "POST", "/v1/tenants/acme/decrypt", svc, "", map[string]any{"scope": "chat", "ciphertext": res.Ciphertext}); r.status != 200 {
		t.Fatalf("decrypt = %d %s", r.status, r.body)
	}
	spans = e.spans.GetSpans()
	srv = one(t, spans, "POST /v1/tenants/{tenant}/decrypt")
	load := one(t, spans, "keyring.load_dek")
	derive = one(t, spans, "keyring.derive")
	if load.Parent.SpanID() != srv.SpanContext.SpanID() || derive.Parent.SpanID() != load.SpanContext.SpanID() {
		t.Errorf("decrypt spans: load_dek under %s, derive under %s; want the request %s, then load_dek %s",
			load.Parent.SpanID(), derive.Parent.SpanID(), srv.SpanContext.SpanID(), load.SpanContext.SpanID())
	}
}

// TestSpansHoldNoSecret: no attribute of any span, over a key's whole
// setup and cold and warm data calls, holds a token, the vault secret,
// a payload, or key material a vault wrapped or unwrapped.
func TestSpansHoldNoSecret(t *testing.T) {
	e := newTracedEnv(t)
	e.tenant(t, "acme", "chat")
	admin := e.token(t, token.TenantAdmin, "acme")
	svc := e.token(t, token.Service, "acme")
	e.activeCustomerKey(t, admin, "CLIENT-SECRET-MARKER")
	plaintext := []byte("PLAINTEXT-MARKER-do-not-trace")
	e.lc.Keyring().Forget("acme")
	ct := e.encrypt(t, svc, "acme", "chat", plaintext)
	e.lc.Keyring().Forget("acme")
	e.mustDecrypt(t, svc, "acme", "chat", ct, plaintext)
	e.do(t, "GET", "/v1/tenants", svc[:len(svc)-3]+"abc", nil) // a forged token

	secrets := []string{
		e.operator, admin, svc,
		e.operator[len(e.operator)-token.SecretLen:], admin[len(admin)-token.SecretLen:], svc[len(svc)-token.SecretLen:],
		"CLIENT-SECRET-MARKER", string(plaintext), base64.StdEncoding.EncodeToString(plaintext),
		base64.StdEncoding.EncodeToString(ct),
	}
	keys := e.keys.all()
	if len(keys) == 0 {
		t.Fatal("no key material recorded")
	}
	for _, k := range keys {
		secrets = append(secrets, string(k), hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k))
	}
	spans := e.spans.GetSpans()
	if len(spans) < 10 {
		t.Fatalf("%d spans, want the whole flow's", len(spans))
	}
	for _, s := range spans {
		texts := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			texts = append(texts, kv.Value.Emit())
		}
		for _, ev := range s.Events {
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.Emit())
			}
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if secret != "" && strings.Contains(text, secret) {
					t.Errorf("span %q holds a secret, payload or key %.12q…", s.Name, secret)
				}
			}
		}
	}
}
