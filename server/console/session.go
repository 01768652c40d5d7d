package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/server/token"
)

// Cookie names.
const (
	sessionCookie = "byok_console"
	// signinCookie carries the sign-in form's CSRF value before there is
	// a session (a double-submit cookie).
	signinCookie = "byok_console_signin"
)

// session is one signed-in browser. Its fields after csrf are guarded by
// sessions.mu.
type session struct {
	hash    [32]byte // SHA-256 of the cookie's id
	tokenID string
	kind    token.Kind
	tenant  string // a tenant admin's tenant; "" for an operator
	csrf    string
	expires time.Time

	flash *flash
	// cert is a certificate generated for the tenant's app registration,
	// kept until the admin saves settings with the certificate
	// credential.
	cert *azurekv.Certificate
}

// flash is a one-time message shown on the next page.
type flash struct {
	OK   bool
	Text string
}

// sessions is the in-memory session store.
type sessions struct {
	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions() *sessions { return &sessions{m: map[[32]byte]*session{}} }

// randomText returns 32 random bytes in unpadded base64url.
func randomText() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create stores a new session for tok, valid until expires, and returns
// its cookie value. Expired sessions are swept on the way.
func (st *sessions) create(tok token.Record, expires, now time.Time) (string, *session) {
	id := randomText()
	s := &session{hash: sha256.Sum256([]byte(id)), tokenID: tok.ID, kind: tok.Kind, csrf: randomText(), expires: expires}
	if tok.Kind == token.TenantAdmin && len(tok.Tenants) == 1 {
		s.tenant = tok.Tenants[0]
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for h, old := range st.m {
		if !now.Before(old.expires) {
			delete(st.m, h)
		}
	}
	st.m[s.hash] = s
	return id, s
}

// lookup returns the live session whose cookie value is id. The map is
// keyed by the SHA-256 of the id, and the stored digest is compared again
// in constant time, so the lookup's timing says nothing about valid ids.
func (st *sessions) lookup(id string, now time.Time) (*session, bool) {
	h := sha256.Sum256([]byte(id))
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[h]
	if !ok || subtle.ConstantTimeCompare(s.hash[:], h[:]) != 1 {
		return nil, false
	}
	if !now.Before(s.expires) {
		delete(st.m, h)
		return nil, false
	}
	return s, true
}

// drop ends a session.
func (st *sessions) drop(s *session) {
	st.mu.Lock()
	delete(st.m, s.hash)
	st.mu.Unlock()
}

// setFlash leaves a message for the session's next page.
func (st *sessions) setFlash(s *session, ok bool, text string) {
	st.mu.Lock()
	s.flash = &flash{OK: ok, Text: text}
	st.mu.Unlock()
}

// takeFlash returns and clears the session's message.
func (st *sessions) takeFlash(s *session) *flash {
	st.mu.Lock()
	defer st.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

// setCert keeps a generated certificate in the session.
func (st *sessions) setCert(s *session, c *azurekv.Certificate) {
	st.mu.Lock()
	s.cert = c
	st.mu.Unlock()
}

// certificate returns the session's generated certificate, or nil.
func (st *sessions) certificate(s *session) *azurekv.Certificate {
	st.mu.Lock()
	defer st.mu.Unlock()
	return s.cert
}

var errNoSession = errors.New("console: not signed in")

// current returns the request's session after checking that its token is
// still active: a revoked or expired token ends the session.
func (c *console) current(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	now := c.cfg.Now()
	s, ok := c.sessions.lookup(ck.Value, now)
	if !ok {
		return nil, errNoSession
	}
	rec, err := c.cfg.Tokens.Token(r.Context(), s.tokenID)
	if errors.Is(err, byok.ErrNotFound) || err == nil && !rec.Active(now) {
		c.sessions.drop(s)
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// validCSRF reports, in constant time, whether the form's csrf field is
// the session's token.
func validCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// maxForm caps every form body; the largest is key settings with a
// certificate chain.
const maxForm = 64 << 10

// authed wraps h so that it runs only for a signed-in session, and, for a
// POST, only with the session's CSRF token.
func (c *console) authed(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.current(r)
		if errors.Is(err, errNoSession) {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, c.cfg.Prefix+"/signin", http.StatusSeeOther)
				return
			}
			c.renderError(w, r, nil, http.StatusUnauthorized, "Your session has ended. Sign in again with your token.")
			return
		}
		if err != nil {
			c.internal(w, r, nil, err)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if !validCSRF(r, s.csrf) {
				c.renderError(w, r, s, http.StatusForbidden, "This form is missing its security token or it is stale. Reload the page and submit it again.")
				return
			}
		}
		h(w, r, s)
	})
}

// operator wraps h for operator sessions only.
func (c *console) operator(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return c.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
		if s.kind != token.Operator {
			c.renderError(w, r, s, http.StatusForbidden, "The operator page needs an operator token; you signed in with a "+string(s.kind)+" token.")
			return
		}
		h(w, r, s)
	})
}

// tenant wraps h for the tenant admin of the path's {tenant}. Any other
// tenant's pages answer 404, as a tenant that does not exist does.
func (c *console) tenant(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return c.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
		if s.kind != token.TenantAdmin {
			c.renderError(w, r, s, http.StatusForbidden, "Tenant pages need that tenant's tenant-admin token; you signed in with a "+string(s.kind)+" token.")
			return
		}
		if s.tenant != r.PathValue("tenant") {
			c.renderError(w, r, s, http.StatusNotFound, "There is no tenant "+r.PathValue("tenant")+" for this sign-in.")
			return
		}
		h(w, r, s)
	})
}

// signinPage shows the sign-in form with a fresh double-submit CSRF value.
func (c *console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignin(w, r, http.StatusOK, "")
}

func (c *console) renderSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v := randomText()
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: v, Path: c.cfg.Prefix, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	c.render(w, r, status, "signin", page{Title: "Sign in", CSRF: v, Error: msg})
}

// signin exchanges a pasted token for a session cookie. The token is
// checked as the API checks a bearer token.
func (c *console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	ck, err := r.Cookie(signinCookie)
	if err != nil || !validCSRF(r, ck.Value) {
		c.renderError(w, r, nil, http.StatusForbidden, "The sign-in form is missing its security token or it is stale. Reload the page and sign in again.")
		return
	}
	rec, msg, err := c.checkToken(r)
	if err != nil {
		c.internal(w, r, nil, err)
		return
	}
	if msg != "" {
		c.renderSignin(w, r, http.StatusUnauthorized, msg)
		return
	}
	now := c.cfg.Now()
	expires := now.Add(c.cfg.SessionTTL)
	if !rec.Expires.IsZero() && rec.Expires.Before(expires) {
		expires = rec.Expires
	}
	id, s := c.sessions.create(rec, expires, now)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: c.cfg.Prefix, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode, Expires: expires})
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Path: c.cfg.Prefix, MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, c.startPage(s), http.StatusSeeOther)
}

// checkToken checks the form's token: its form (token.Parse), its record,
// its secret's digest in constant time, its kind, revocation and expiry.
// It returns the record, or a message for the user (never naming which of
// "unknown" and "wrong secret" it was), or an error when the store fails.
func (c *console) checkToken(r *http.Request) (token.Record, string, error) {
	const invalid = "That token is not valid. Paste the whole token (byok_<kind>_<id>_<secret>), or ask your operator for a new one."
	kind, id, secret, err := token.Parse(r.PostFormValue("token"))
	if err != nil {
		return token.Record{}, invalid, nil
	}
	rec, err := c.cfg.Tokens.Token(r.Context(), id)
	if errors.Is(err, byok.ErrNotFound) {
		token.Record{}.Verify(secret) // the same work as for a known id
		return token.Record{}, invalid, nil
	}
	if err != nil {
		return token.Record{}, "", err
	}
	if !rec.Verify(secret) || rec.Kind != kind {
		return token.Record{}, invalid, nil
	}
	if !rec.Active(c.cfg.Now()) {
		return token.Record{}, "That token was revoked or has expired. Ask your operator for a new one.", nil
	}
	if kind == token.Service {
		return token.Record{}, "A service token makes data calls only; sign in with a tenant-admin or operator token.", nil
	}
	return rec, "", nil
}

// signout ends the session.
func (c *console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.drop(s)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: c.cfg.Prefix, MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, c.cfg.Prefix+"/signin", http.StatusSeeOther)
}

// secure reports whether the console's cookies must be Secure: the request
// came over TLS, or Config.SecureCookies says TLS ends at a proxy in front.
func (c *console) secure(r *http.Request) bool { return r.TLS != nil || c.cfg.SecureCookies }
