// Package server is byok's HTTP JSON API: operators manage tenants, tokens
// and the platform key; tenant admins configure, test, schedule, rotate,
// re-key and disable their customer-managed key and read their audit log;
// platform services encrypt and decrypt.
//
// [New] returns an [http.Handler]; `byok serve` and `byok demo` mount it.
// The routes, their token kinds and every error code are in docs/api.md and
// docs/openapi.yaml.
//
// # Authentication
//
// Every route but /healthz, /readyz and /metrics takes a bearer token
// (package [token]): operator, tenant-admin (one tenant) or service (a list
// of tenants, data calls only). Tokens are stored as SHA-256 digests,
// compared in constant time, expire and can be revoked. A token used on a
// tenant it does not hold gets 404, as a tenant that does not exist does,
// so a token never learns whether another tenant exists. [IssueToken]
// creates the first operator token.
//
// # Errors
//
// Every error is one JSON shape ([Error]) whose status is decided in one
// place, from the error's type: invalid input 400, bad token 401, wrong
// token kind or a revoked customer key 403, not found 404, lifecycle state
// 409, body too large 413, key provider unavailable 503 with Retry-After,
// anything else 500 with an id to quote, whose details go to the log only.
//
// # Logs and metrics
//
// Each request is logged once through log/slog: method, route, status,
// duration, request id, token id and tenant. Never a body, a header value
// or a token's secret. Prometheus metrics (see [Metrics]) use only bounded
// label values: route patterns, operations, outcomes, states; never tenant
// or scope ids.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server/token"
)

// The server's handlers each consume one role of the tenant-key
// lifecycle; *lifecycle.Service has them all, and their methods' contracts
// are those of lifecycle.Service.

// Tenants creates, lists and sets the policy of tenants (operator routes).
type Tenants interface {
	CreateTenant(ctx context.Context, actor audit.Actor, tenant string, policy byok.Policy, scopes []string) error
	ListTenants(ctx context.Context, after string, limit int) ([]lifecycle.TenantSummary, error)
	SetPolicy(ctx context.Context, actor audit.Actor, tenant string, policy byok.Policy) error
}

// KeyAdmin changes a tenant's customer key (tenant admin routes).
type KeyAdmin interface {
	Configure(ctx context.Context, actor audit.Actor, tenant string, settings lifecycle.KeySettings) (lifecycle.CustomerKey, error)
	Test(ctx context.Context, actor audit.Actor, tenant string) (lifecycle.Report, error)
	Proceed(ctx context.Context, actor audit.Actor, tenant string, enforceAt time.Time, coverage *lifecycle.Coverage) (lifecycle.CustomerKey, error)
	SetScopes(ctx context.Context, actor audit.Actor, tenant string, coverage lifecycle.Coverage) (lifecycle.CustomerKey, error)
	Rotate(ctx context.Context, actor audit.Actor, tenant string, req lifecycle.RotateRequest) (lifecycle.Job, error)
	Rekey(ctx context.Context, actor audit.Actor, tenant string) (lifecycle.Job, error)
	Disable(ctx context.Context, actor audit.Actor, tenant string) (lifecycle.Job, error)
}

// KeyStatus reads a tenant's customer key: its status, inventory, jobs
// and revocation timeline.
type KeyStatus interface {
	Status(ctx context.Context, tenant string) (lifecycle.CustomerKey, error)
	Inventory(ctx context.Context, tenant string) ([]lifecycle.VersionCount, error)
	Job(ctx context.Context, tenant, id string) (lifecycle.Job, error)
	Timeline(ctx context.Context, tenant string, limit int) ([]lifecycle.HealthEvent, error)
}

// PlatformKeys reads the platform root key's inventory and re-keys its
// shares.
type PlatformKeys interface {
	PlatformInventory(ctx context.Context) ([]lifecycle.PlatformVersion, error)
	StartPlatformRekey(ctx context.Context, actor audit.Actor) (lifecycle.PlatformRekey, error)
	PlatformRekeyStatus(id string) (lifecycle.PlatformRekey, error)
}

// Lifecycle is every role, and the keyring that serves the data routes:
// what [Config] takes.
type Lifecycle interface {
	Keyring() *byok.Keyring
	Tenants
	KeyAdmin
	KeyStatus
	PlatformKeys
}

var _ Lifecycle = (*lifecycle.Service)(nil)

// AuditLog is what the server calls on the audit log; *audit.Log
// implements it.
type AuditLog interface {
	Record(ctx context.Context, e audit.Event) (audit.Event, error)
	List(ctx context.Context, f audit.Filter, cursor string, limit int) ([]audit.Event, string, error)
	Export(ctx context.Context, w io.Writer, f audit.Filter) (int, error)
}

var _ AuditLog = (*audit.Log)(nil)

// Tokens is the storage of the API's tokens ([token.Store]);
// store/sqlite implements it.
type Tokens = token.Store

// Store is what the server reads from the metadata store itself: tokens
// and tenants. *sqlite.DB implements it.
type Store interface {
	Tokens
	Tenant(ctx context.Context, id string) (byok.TenantRecord, error)
}

// Config configures the handler [New] returns. Lifecycle, Store, Audit,
// PlatformKMS and PlatformKeyID are required.
type Config struct {
	Lifecycle Lifecycle
	// Keyring serves the data routes; nil means Lifecycle.Keyring().
	Keyring *byok.Keyring
	Store   Store
	Audit   AuditLog
	// PlatformKMS and PlatformKeyID name the platform root key (as given
	// to the lifecycle), for its status route and /readyz.
	PlatformKMS   kms.Provider
	PlatformKeyID string
	// Metrics receives the server's metrics and serves /metrics; nil
	// means new metrics on a registry of their own (see [NewMetrics]).
	Metrics *Metrics
	// Logger receives one line per request and the details of internal
	// errors; nil discards them.
	Logger *slog.Logger
	// Usage, if set, counts every successful data operation per tenant and
	// scope; *audit.Counter records the counts as per-minute usage events.
	Usage UsageCounter
	// MaxBatch is the most items a batch request takes; default 256.
	MaxBatch int
	// Now is the clock (token expiry, token creation); nil means time.Now.
	Now func() time.Time
	// TokenCacheTTL is how long a token record read from Store serves
	// requests before it is read again (token.CachedStore): 0 means
	// token.DefaultCacheTTL (5 s), a negative value reads the store on
	// every request. A token revoked through this handler fails from its
	// next request on; one revoked through another replica, within
	// TokenCacheTTL.
	TokenCacheTTL time.Duration
}

// DefaultMaxBatch is the batch size limit when Config.MaxBatch is 0.
const DefaultMaxBatch = 256

// server holds a configured API.
type server struct {
	cfg Config
	// The roles of cfg.Lifecycle, each consumed by its routes.
	tenants  Tenants
	admin    KeyAdmin
	keys     KeyStatus
	platform PlatformKeys
	tokens   Tokens // cfg.Store, cached unless Config.TokenCacheTTL < 0
	kr       *byok.Keyring
	log      *slog.Logger
	m        *Metrics
	ready    readiness
	routes   []route
}

// UsageCounter counts data operations; *audit.Counter implements it.
type UsageCounter interface {
	Add(tenant, scope string, op audit.Op)
}

// New returns the API's handler. It checks cfg and makes no remote call.
func New(cfg Config) (http.Handler, error) {
	var missing []string
	for _, f := range []struct {
		name  string
		unset bool
	}{
		{"Lifecycle", cfg.Lifecycle == nil}, {"Store", cfg.Store == nil}, {"Audit", cfg.Audit == nil},
		{"PlatformKMS", cfg.PlatformKMS == nil}, {"PlatformKeyID", cfg.PlatformKeyID == ""},
	} {
		if f.unset {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("server: Config lacks %s; set every required field", strings.Join(missing, ", "))
	}
	if cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("server: Config.MaxBatch is %d; give a positive limit, or 0 for %d", cfg.MaxBatch, DefaultMaxBatch)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lc := cfg.Lifecycle
	s := &server{cfg: cfg, tenants: lc, admin: lc, keys: lc, platform: lc, tokens: cfg.Store, kr: cfg.Keyring, log: cfg.Logger, m: cfg.Metrics}
	if cfg.TokenCacheTTL >= 0 {
		cs := token.NewCachedStore(cfg.Store, cfg.TokenCacheTTL, 0)
		cs.SetClock(cfg.Now)
		s.tokens = cs
	}
	if s.kr == nil {
		s.kr = cfg.Lifecycle.Keyring()
	}
	if s.kr == nil {
		return nil, errors.New("server: Config.Keyring is nil and Config.Lifecycle.Keyring() returned nil; give a keyring")
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.m == nil {
		s.m = NewMetrics(nil)
	}
	s.m.watchStates(cfg.Lifecycle)
	s.m.watchKeyring(s.kr)
	s.ready = readiness{store: cfg.Store, kms: cfg.PlatformKMS, keyID: cfg.PlatformKeyID, now: cfg.Now}
	s.routes = s.table()
	mux := http.NewServeMux()
	allowed := map[string][]string{} // pattern -> methods
	for _, rt := range s.routes {
		mux.Handle(rt.method+" "+rt.pattern, s.m.traced(rt, s.handler(rt)))
		allowed[rt.pattern] = append(allowed[rt.pattern], rt.method)
	}
	// A path served with other methods answers 405 and says which.
	for pattern, methods := range allowed {
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
				Message: r.Method + " is not allowed on " + r.URL.Path + "; use " + allow})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound,
			Message: "no route " + r.Method + " " + r.URL.Path + "; see docs/api.md for the routes"})
	})
	return mux, nil
}

// auth is what a route requires of the caller's token.
type auth int

const (
	authNone        auth = iota // no token: /healthz, /readyz, /metrics
	authOperator                // an operator token
	authTenantAdmin             // a tenant-admin token of the route's {tenant}
	authService                 // a service token listing the route's {tenant}
)

// route is one endpoint: its method and pattern, who may call it, its
// body limit and time limit, and its handler.
type route struct {
	method  string
	pattern string // net/http pattern without the method
	auth    auth
	maxBody int64 // bytes; 0: the route takes no body
	timeout time.Duration
	handle  func(c *call) (any, error)
}

// call is one request as a handler sees it.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	tok    token.Record // zero for authNone routes
	status int          // of a successful answer; 0 means 200
	// wrote is set by handlers that wrote the response themselves.
	wrote bool
}

// actor is the audit actor of the caller: its token's kind and id.
func (c *call) actor() audit.Actor {
	return audit.Actor{Kind: audit.ActorKind(c.tok.Kind), ID: "token:" + c.tok.ID}
}

// tenant returns the validated {tenant} of the route.
func (c *call) tenant() string { return c.r.PathValue("tenant") }

// handler wraps a route's handle with the body limit, time limit,
// authentication, authorisation, error mapping, logging and metrics.
func (s *server) handler(rt route) http.Handler {
	rm := s.m.forRoute(rt.method + " " + rt.pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := newRequestID()
		w.Header().Set("X-Request-Id", reqID)
		span := annotate(r, reqID)
		// The request id goes to the vault with each call this request
		// makes (a customer vault call is given its audit event's id).
		ctx, cancel := context.WithTimeout(kms.WithOperationID(r.Context(), reqID), rt.timeout)
		defer cancel()
		c := &call{w: w, r: r.WithContext(ctx), ctx: ctx}
		http.NewResponseController(w).SetWriteDeadline(start.Add(rt.timeout + time.Second))

		status, code, err := s.serve(rt, c)
		if err != nil {
			var internal bool
			var e *Error
			e, internal = errorFor(err)
			if internal {
				s.log.ErrorContext(r.Context(), "internal error", "request_id", reqID, "route", rt.pattern, "err", err)
				e = &Error{Status: e.Status, Code: e.Code, Message: "internal error; quote request id " + reqID + " to the operator"}
			}
			status, code = e.Status, e.Code
			writeError(w, e)
		}
		d := time.Since(start)
		rm.observe(status, d)
		attrs := []slog.Attr{
			slog.String("request_id", reqID), slog.String("method", r.Method), slog.String("route", rt.pattern),
			slog.Int("status", status), slog.Duration("duration", d),
		}
		if code != "" {
			attrs = append(attrs, slog.String("code", code))
			if span != nil {
				span.SetAttributes(attribute.String("byok.error_code", code))
			}
		}
		if c.tok.ID != "" {
			attrs = append(attrs, slog.String("token_id", c.tok.ID), slog.String("token_kind", string(c.tok.Kind)))
		}
		if t := r.PathValue("tenant"); t != "" {
			attrs = append(attrs, slog.String("tenant", t))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// serve runs one call and writes its success response; it returns the
// status written, or the error to map.
func (s *server) serve(rt route, c *call) (int, string, error) {
	r := c.r
	if rt.maxBody == 0 {
		r.Body = http.MaxBytesReader(c.w, r.Body, 0)
	} else {
		if r.ContentLength > rt.maxBody {
			return 0, "", &http.MaxBytesError{Limit: rt.maxBody}
		}
		r.Body = http.MaxBytesReader(c.w, r.Body, rt.maxBody)
	}
	if t := r.PathValue("tenant"); t != "" || strings.Contains(rt.pattern, "{tenant}") {
		if err := checkID("tenant", t); err != nil {
			return 0, "", err
		}
	}
	if rt.auth != authNone {
		tok, err := s.authenticate(c.ctx, r)
		if err != nil {
			return 0, "", err
		}
		c.tok = tok
		if err := authorize(rt.auth, tok, r.PathValue("tenant")); err != nil {
			return 0, "", err
		}
	}
	v, err := rt.handle(c)
	if err != nil {
		return 0, "", err
	}
	if c.wrote {
		return cmpOr(c.status, http.StatusOK), "", nil
	}
	status := cmpOr(c.status, http.StatusOK)
	writeJSON(c.w, status, v)
	return status, "", nil
}

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if a, ok := v.(jsonAppender); ok {
		p := outPool.Get().(*[]byte)
		b := append(a.appendJSON((*p)[:0]), '\n')
		w.Write(b)
		if cap(b) <= maxPooled {
			*p = b
			outPool.Put(p)
		}
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError writes e as an error response.
func writeError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="byok"`)
	}
	writeJSON(w, e.Status, errorBody{Error: e})
}

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkID validates a tenant, scope or job id by the keyring's one rule,
// [byok.CheckID].
func checkID(field, id string) error {
	if id == "" {
		return &byok.InputError{Arg: field, Reason: "is empty; give a " + field + " id"}
	}
	return byok.CheckID(field, id)
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
