package server

import (
	"bytes"
	"context"
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

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/internal/fakeclock"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/lifecycletest"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store/sqlite"
)

// env is a server over the real lifecycle, audit log and SQLite store,
// with fake key providers and a fake clock.
type env struct {
	t        *testing.T
	db       *sqlite.DB
	lc       *lifecycle.Service
	log      *audit.Log
	usage    *audit.Counter
	platform *kmstest.Fake
	customer *kmstest.Fake
	cmk      string // versionless id of the customer key
	clock    *fakeclock.Clock
	srv      *httptest.Server
	h        http.Handler
	logs     *bytes.Buffer // the server's request logs
	operator string        // an operator token
}

var epoch = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// newEnv returns a server over SQLite and fake providers; opts change the
// lifecycle's configuration before it is built.
func newEnv(t testing.TB, opts ...func(*lifecycle.Config)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "byok.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, platform: kmstest.NewFake(), customer: kmstest.NewFake(), clock: fakeclock.New(epoch), logs: &bytes.Buffer{}}
	prk := e.platform.AddKey("prk")
	e.cmk = e.customer.AddKey("cmk")
	e.log = audit.New(db, nil)
	e.usage = audit.NewCounter(e.log)
	m := NewMetrics(nil)
	cfg := lifecycle.Config{
		Store: db, PlatformKMS: m.InstrumentProvider("platform", e.platform), PlatformKeyID: prk,
		Connectors: []lifecycle.Connector{lifecycletest.Connector{KMS: e.customer}},
		Instrument: m.InstrumentProvider,
		Audit:      e.log, Now: e.clock.Now, PlatformOnlyScopes: []string{"cache"},
		Keyring: byok.Config{CheckInterval: 10 * time.Second, MaxStaleness: time.Minute},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.lc, err = lifecycle.New(cfg)
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
	return e
}

// lockedWriter serialises writes to a buffer shared by handlers.
type lockedWriter struct{ w *bytes.Buffer }

var logMu sync.Mutex

func (l lockedWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return l.w.Write(p)
}

func (e *env) logText() string {
	logMu.Lock()
	defer logMu.Unlock()
	return e.logs.String()
}

// resp is an answer of the server.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// errCode returns the error code of an error answer, or "".
func (r resp) errCode() string {
	var b errorBody
	if json.Unmarshal(r.body, &b) != nil || b.Error == nil {
		return ""
	}
	return b.Error.Code
}

func (r resp) errField() string {
	var b errorBody
	if json.Unmarshal(r.body, &b) != nil || b.Error == nil {
		return ""
	}
	return b.Error.Field
}

// decode unmarshals the body into v; it fails t on error.
func (r resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d %s is not the JSON expected: %v", r.status, r.body, err)
	}
}

// do sends a request with tok (if not "") and body (JSON-encoded unless
// it is a string or []byte, sent as is).
func (e *env) do(t testing.TB, method, path, tok string, body any) resp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// must sends a request and fails t unless the answer has status want.
func (e *env) must(t testing.TB, want int, method, path, tok string, body any) resp {
	t.Helper()
	r := e.do(t, method, path, tok, body)
	if r.status != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

// tenant creates a tenant with scopes through the API.
func (e *env) tenant(t testing.TB, id string, scopes ...string) {
	t.Helper()
	e.must(t, 201, "POST", "/v1/tenants", e.operator, map[string]any{"id": id, "scopes": scopes})
}

// token issues a token through the API and returns its text.
func (e *env) token(t testing.TB, kind token.Kind, tenants ...string) string {
	t.Helper()
	var v tokenView
	e.must(t, 201, "POST", "/v1/tokens", e.operator, map[string]any{"kind": kind, "tenants": tenants}).decode(t, &v)
	return v.Token
}

// tick runs one lifecycle pass; it fails t on error.
func (e *env) tick(t testing.TB) {
	t.Helper()
	if err := e.lc.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
}

// keyState returns the lifecycle state of tenant's key through the API.
func (e *env) keyState(t testing.TB, tenant, admin string) keyView {
	t.Helper()
	var k keyView
	e.must(t, 200, "GET", "/v1/tenants/"+tenant+"/key", admin, nil).decode(t, &k)
	return k
}
