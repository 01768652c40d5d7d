// Package console is byok's web console: the "Enterprise Key" pages where a
// tenant admin connects, tests, schedules, rotates and disables a
// customer-managed key and reads the audit log, and the operator's page of
// every tenant with its key state and health (DESIGN §1).
//
// [New] returns an [http.Handler] that serves every page under
// Config.Prefix (default "/console"); mount it next to the API:
//
//	h, err := console.New(console.Config{Lifecycle: lc, Tokens: db, Audit: log})
//	mux.Handle("/console/", h)
//
// # No second copy of the rules
//
// Every action calls the same [server.Lifecycle] methods as the HTTP API,
// and every refusal (a bad field, an operation the key's state does not
// allow) is the lifecycle's own error, shown with its text. Which buttons
// a page offers is decided by [lifecycle.Allowed], the rules table itself.
//
// # Sign-in and safety
//
// A user signs in through the platform's OpenID Connect issuer
// (Config.OIDC: code flow with PKCE, state and nonce, the ID token
// verified, claims mapped to a role), or by pasting an API token
// (tenant-admin or operator), checked as the API checks it ([token.Parse],
// the store's record, digests compared in constant time, revocation and
// expiry). Either is exchanged for a session cookie: HttpOnly,
// SameSite=Strict, Secure when the request came over TLS, holding 256
// random bits. Sessions live in Config.Sessions (the server's store, so
// any replica serves them and sign-out ends them everywhere), keyed by the
// SHA-256 of their id, which is never stored; they end after
// Config.SessionTTL, after Config.SessionIdleTimeout unused, or with their
// token: every request re-reads a token's record, so revoking the token
// ends its sessions. Every form carries a CSRF token (per session, compared in
// constant time); a POST without the right one gets 403. A tenant admin
// asking for another tenant's page or action gets 404, as for a tenant
// that does not exist.
//
// Pages are html/template, embedded with the stylesheet and a small
// script (progressive enhancement only: every page works without it).
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store"
)

// Config configures the console. Lifecycle, Tokens and Audit are required.
type Config struct {
	// Lifecycle is the tenant-key lifecycle, the same one the API calls.
	Lifecycle server.Lifecycle
	// Tokens is where the API's tokens are stored; sign-in checks
	// against it.
	Tokens token.Store
	// Audit is the audit log, for the audit pages and the status chart.
	Audit server.AuditLog
	// PlatformAppID is the client id of the platform's multi-tenant
	// Entra app, for the admin-consent link and the `az ad sp create`
	// command; empty hides that credential option's instructions.
	PlatformAppID string
	// Prefix is the path the console is served under; default
	// "/console". It must start with "/" and not end with one.
	Prefix string
	// SessionTTL is a session's lifetime; default DefaultSessionTTL.
	SessionTTL time.Duration
	// SessionIdleTimeout ends a session unused this long; default
	// DefaultSessionIdleTimeout.
	SessionIdleTimeout time.Duration
	// Sessions stores the sessions; give the server's store (SQLite or
	// PostgreSQL) so that every replica serves every session and
	// signing out ends it everywhere. nil keeps them in this process's
	// memory (one replica; lost on restart).
	Sessions store.SessionStore
	// OIDC, when set, offers sign-in through the platform's OpenID
	// Connect issuer next to token sign-in (oidc.go).
	OIDC *OIDC
	// Now is the clock of sessions and of the pages' "now" (enforcement
	// dates); nil means time.Now. Give the lifecycle's clock.
	Now func() time.Time
	// Logger receives the details of internal errors; nil discards them.
	Logger *slog.Logger
	// SecureCookies marks the console's cookies Secure even on plain-HTTP
	// requests: set it when TLS ends at a proxy in front of byok. Requests
	// that arrive over TLS always get Secure cookies.
	SecureCookies bool
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// console is a configured console.
type console struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	oidc     *oidcClient // nil: token sign-in only
	pages    map[string]*template.Template
}

// New returns the console's handler. It checks cfg and makes no remote
// call.
func New(cfg Config) (http.Handler, error) {
	var missing []string
	if cfg.Lifecycle == nil {
		missing = append(missing, "Lifecycle")
	}
	if cfg.Tokens == nil {
		missing = append(missing, "Tokens")
	}
	if cfg.Audit == nil {
		missing = append(missing, "Audit")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("console: Config lacks %s; set every required field", strings.Join(missing, ", "))
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/console"
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("console: Config.Prefix %q must start with \"/\" and not end with one, e.g. \"/console\"", cfg.Prefix)
	}
	if cfg.SessionTTL < 0 {
		return nil, fmt.Errorf("console: Config.SessionTTL is %s; give a positive duration, or 0 for %s", cfg.SessionTTL, DefaultSessionTTL)
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.SessionIdleTimeout < 0 {
		return nil, fmt.Errorf("console: Config.SessionIdleTimeout is %s; give a positive duration, or 0 for %s", cfg.SessionIdleTimeout, DefaultSessionIdleTimeout)
	}
	if cfg.SessionIdleTimeout == 0 {
		cfg.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &console{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	st := cfg.Sessions
	if st == nil {
		st = newMemSessions()
	}
	c.sessions = &sessions{st: st, lifetime: cfg.SessionTTL, idle: cfg.SessionIdleTimeout, now: cfg.Now, log: c.log}
	if cfg.OIDC != nil {
		var err error
		if c.oidc, err = newOIDC(*cfg.OIDC, cfg.Now); err != nil {
			return nil, err
		}
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	return c.routes(), nil
}

// routes builds the console's mux.
func (c *console) routes() http.Handler {
	p := c.cfg.Prefix
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+p+"/static/", http.StripPrefix(p+"/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET "+p+"/{$}", c.home)
	mux.HandleFunc("GET "+p+"/signin", c.signinPage)
	mux.HandleFunc("POST "+p+"/signin", c.signin)
	mux.Handle("POST "+p+"/signout", c.authed(c.signout))
	if c.oidc != nil {
		mux.HandleFunc("GET "+p+"/oidc/start", c.oidcStart)
		mux.HandleFunc("GET "+p+"/oidc/callback", c.oidcCallback)
	}

	mux.Handle("GET "+p+"/operator", c.operator(c.operatorPage))

	t := p + "/t/{tenant}"
	mux.Handle("GET "+t+"/{$}", c.tenant(c.statusPage))
	mux.Handle("GET "+t+"/setup", c.tenant(c.setupPage))
	mux.Handle("POST "+t+"/configure", c.tenant(c.configure))
	mux.Handle("POST "+t+"/certificate", c.tenant(c.generateCertificate))
	mux.Handle("GET "+t+"/certificate/{format}", c.tenant(c.downloadCertificate))
	mux.Handle("POST "+t+"/certificate/rollover", c.tenant(c.startRollover))
	mux.Handle("POST "+t+"/certificate/rollover/finish", c.tenant(c.finishRollover))
	mux.Handle("POST "+t+"/test", c.tenant(c.test))
	mux.Handle("GET "+t+"/keys", c.tenant(c.keysPage))
	mux.Handle("POST "+t+"/proceed", c.tenant(c.proceed))
	mux.Handle("POST "+t+"/scopes", c.tenant(c.setScopes))
	mux.Handle("GET "+t+"/rotate", c.tenant(c.confirmPage("rotate")))
	mux.Handle("POST "+t+"/rotate", c.tenant(c.rotate))
	mux.Handle("GET "+t+"/rekey", c.tenant(c.confirmPage("rekey")))
	mux.Handle("POST "+t+"/rekey", c.tenant(c.rekey))
	mux.Handle("GET "+t+"/disable", c.tenant(c.confirmPage("disable")))
	mux.Handle("POST "+t+"/disable", c.tenant(c.disable))
	mux.Handle("GET "+t+"/jobs/{job}", c.tenant(c.jobJSON))
	mux.Handle("GET "+t+"/audit", c.tenant(c.auditPage))
	mux.Handle("GET "+t+"/audit/export", c.tenant(c.auditExport))

	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, http.StatusNotFound, "There is no console page at "+r.URL.Path+".")
	})
	return securityHeaders(mux)
}

// securityHeaders sets the headers every console answer carries: no
// framing, no sniffing, no referrer, scripts and styles from the console
// only.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// cacheStatic lets browsers cache the embedded assets for an hour.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// home sends a signed-in user to their start page and anyone else to the
// sign-in page.
func (c *console) home(w http.ResponseWriter, r *http.Request) {
	s, err := c.current(r)
	if err != nil {
		http.Redirect(w, r, c.cfg.Prefix+"/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, c.startPage(s), http.StatusSeeOther)
}

// startPage is where a session lands after sign-in.
func (c *console) startPage(s *session) string {
	if s.kind == token.Operator {
		return c.cfg.Prefix + "/operator"
	}
	return c.tenantURL(s.tenant, "")
}

// tenantURL returns the path of a tenant page.
func (c *console) tenantURL(tenant, page string) string {
	return c.cfg.Prefix + "/t/" + tenant + "/" + page
}

// userMessage returns the text of err to show the user and whether err is
// one the user can act on; any other error is internal and its text goes
// to the log only. Refusals are the lifecycle's and keyring's own errors,
// shown as they are.
func userMessage(err error) (string, bool) {
	var fieldErr *lifecycle.FieldError
	var inputErr *byok.InputError
	switch {
	case errors.As(err, &fieldErr):
		return fieldErr.Field + ": " + fieldErr.Reason, true
	case errors.As(err, &inputErr):
		return inputErr.Arg + " " + inputErr.Reason, true
	case errors.Is(err, byok.ErrInvalidInput), errors.Is(err, lifecycle.ErrState),
		errors.Is(err, byok.ErrKeyRevoked), errors.Is(err, byok.ErrNotFound), errors.Is(err, byok.ErrUnknownTenant):
		return err.Error(), true
	case errors.Is(err, byok.ErrKeyUnavailable):
		return "the key vault cannot be reached now: " + err.Error() + "; retry later, and check the vault's availability", true
	case errors.Is(err, store.ErrConflict):
		return "another change to the same key won the race; reload the page and try again", true
	case errors.Is(err, context.DeadlineExceeded):
		return "the operation did not finish in time; retry", true
	}
	return "", false
}
