package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store"
)

// Cookie names.
const (
	sessionCookie = "byok_console"
	// signinCookie carries the sign-in form's CSRF value before there is
	// a session (a double-submit cookie).
	signinCookie = "byok_console_signin"
)

// session is one signed-in browser, as read from the session store for
// the request at hand. Any replica over the same store reads the same
// session: nothing about it lives in a replica's memory.
type session struct {
	id      string   // the cookie's value; never stored
	hash    [32]byte // SHA-256 of id: the store's key
	tokenID string   // "" for an OpenID Connect sign-in
	subject string   // the audit actor's id
	name    string   // the user's name, for the header
	kind    token.Kind
	tenant  string // a tenant admin's tenant; "" for an operator
	csrf    string // derived from id
	expires time.Time

	// data is the session's sealed part: a flash message, and a generated
	// certificate (with its private key) or AWS external id kept until the
	// settings are saved.
	data sessionData
}

// sessionData is sealed (AES-256-GCM) under a key derived from the
// session's id before it is stored: the store, and whoever reads the
// database, never sees a certificate's private key.
type sessionData struct {
	Flash   *flash `json:"flash,omitempty"`
	CertDER []byte `json:"cert,omitempty"`
	KeyDER  []byte `json:"key,omitempty"` // PKCS #8
	// ExternalID is the AWS external id generated for the tenant's
	// setup, until settings are saved with it (aws.go).
	ExternalID string `json:"external_id,omitempty"`
}

// flash is a one-time message shown on the next page.
type flash struct {
	OK   bool   `json:"ok"`
	Text string `json:"text"`
}

// Defaults of the session timers.
const (
	// DefaultSessionTTL is a session's lifetime when Config.SessionTTL
	// is zero.
	DefaultSessionTTL = 8 * time.Hour
	// DefaultSessionIdleTimeout ends a session unused this long when
	// Config.SessionIdleTimeout is zero.
	DefaultSessionIdleTimeout = time.Hour
	// sweepEvery is how often a replica deletes ended sessions (on a
	// sign-in).
	sweepEvery = 5 * time.Minute
)

// sessions reads and writes sessions in a [store.SessionStore].
type sessions struct {
	st       store.SessionStore
	lifetime time.Duration
	idle     time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu        sync.Mutex
	lastSweep time.Time
}

// randomText returns 32 random bytes in unpadded base64url.
func randomText() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// derive returns HMAC-SHA256(id, label): the session's CSRF token and its
// data key are derived from its id, so that neither is stored.
func derive(id, label string) []byte {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte(label))
	return m.Sum(nil)
}

func newSession(id string, rec store.Session) *session {
	return &session{id: id, hash: rec.Hash, tokenID: rec.TokenID, subject: rec.Subject, name: rec.Name,
		kind: token.Kind(rec.Kind), tenant: rec.Tenant, expires: rec.Expires,
		csrf: base64.RawURLEncoding.EncodeToString(derive(id, "byok console csrf v1"))}
}

// grant is who a new session is for.
type grant struct {
	kind            token.Kind
	tenant, tokenID string
	subject, name   string
	notAfter        time.Time // the token's expiry; zero: none
}

// create stores a new session and returns its cookie value. Ended
// sessions are swept now and then on the way.
func (st *sessions) create(ctx context.Context, g grant) (string, *session, error) {
	now := st.now()
	st.sweep(ctx, now)
	expires := now.Add(st.lifetime)
	if !g.notAfter.IsZero() && g.notAfter.Before(expires) {
		expires = g.notAfter
	}
	id := randomText()
	rec := store.Session{Hash: sha256.Sum256([]byte(id)), Kind: string(g.kind), Tenant: g.tenant, TokenID: g.tokenID,
		Subject: g.subject, Name: g.name, Created: now, LastSeen: now, Expires: expires}
	if err := st.st.CreateSession(ctx, rec); err != nil {
		return "", nil, fmt.Errorf("console: store the new session of %s: %w", g.subject, err)
	}
	return id, newSession(id, rec), nil
}

// sweep deletes ended sessions, at most once per sweepEvery per replica.
func (st *sessions) sweep(ctx context.Context, now time.Time) {
	st.mu.Lock()
	due := now.Sub(st.lastSweep) >= sweepEvery
	if due {
		st.lastSweep = now
	}
	st.mu.Unlock()
	if !due {
		return
	}
	if _, err := st.st.DeleteEndedSessions(ctx, now, now.Add(-st.idle)); err != nil {
		st.log.WarnContext(ctx, "console: deleting ended sessions failed", "err", err)
	}
}

// lookup returns the live session whose cookie value is id. The store is
// keyed by the SHA-256 of the id, and the stored digest is compared again
// in constant time, so nothing branches on the secret itself. A session
// past its lifetime or idle too long is deleted, for every replica.
func (st *sessions) lookup(ctx context.Context, id string) (*session, error) {
	h := sha256.Sum256([]byte(id))
	rec, err := st.st.Session(ctx, h)
	if errors.Is(err, byok.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("console: read session: %w", err)
	}
	if subtle.ConstantTimeCompare(rec.Hash[:], h[:]) != 1 {
		return nil, errNoSession
	}
	now := st.now()
	seen := rec.LastSeen
	if seen.IsZero() {
		seen = rec.Created
	}
	if !now.Before(rec.Expires) || !now.Before(seen.Add(st.idle)) {
		st.drop(ctx, h)
		return nil, errNoSession
	}
	// Touch at most every 1/20 of the idle timeout (and every minute at
	// most), so that a page view is not always a write.
	every := min(st.idle/20, time.Minute)
	if now.Sub(seen) >= every {
		if err := st.st.TouchSession(ctx, h, now); err != nil && !errors.Is(err, byok.ErrNotFound) {
			st.log.WarnContext(ctx, "console: recording a session's use failed", "err", err)
		}
	}
	s := newSession(id, rec)
	if len(rec.Data) > 0 {
		if err := s.open(rec.Data); err != nil {
			// Sealed under another id: not this session's data. Start
			// empty rather than fail the page.
			st.log.WarnContext(ctx, "console: a session's data does not open; ignored", "subject", rec.Subject, "err", err)
		}
	}
	return s, nil
}

// drop ends a session everywhere.
func (st *sessions) drop(ctx context.Context, h [32]byte) {
	if err := st.st.DeleteSession(ctx, h); err != nil {
		st.log.WarnContext(ctx, "console: deleting a session failed", "err", err)
	}
}

// seal encrypts the session's data under its derived key, bound to its
// hash.
func (s *session) seal() ([]byte, error) {
	if s.data.Flash == nil && s.data.CertDER == nil && s.data.ExternalID == "" {
		return nil, nil
	}
	plain, err := json.Marshal(s.data)
	if err != nil {
		return nil, err
	}
	aead, err := s.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, s.hash[:]), nil
}

func (s *session) open(sealed []byte) error {
	aead, err := s.aead()
	if err != nil {
		return err
	}
	if len(sealed) < aead.NonceSize() {
		return errors.New("sealed session data is too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], s.hash[:])
	if err != nil {
		return errors.New("sealed session data does not authenticate")
	}
	return json.Unmarshal(plain, &s.data)
}

func (s *session) aead() (cipher.AEAD, error) {
	b, err := aes.NewCipher(derive(s.id, "byok console session data v1"))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// save stores the session's data. Handlers that change it do not fail
// when the store does: the message or certificate is then lost, which
// the log says.
func (st *sessions) save(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data, err := s.seal()
	if err == nil {
		err = st.st.SetSessionData(ctx, s.hash, data)
	}
	if err != nil && !errors.Is(err, byok.ErrNotFound) {
		st.log.WarnContext(ctx, "console: saving a session's data failed", "subject", s.subject, "err", err)
	}
}

// setFlash leaves a message for the session's next page.
func (st *sessions) setFlash(s *session, ok bool, text string) {
	s.data.Flash = &flash{OK: ok, Text: text}
	st.save(s)
}

// takeFlash returns and clears the session's message.
func (st *sessions) takeFlash(s *session) *flash {
	f := s.data.Flash
	if f != nil {
		s.data.Flash = nil
		st.save(s)
	}
	return f
}

// setCert keeps a generated certificate in the session.
func (st *sessions) setCert(s *session, c *azurekv.Certificate) {
	key, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		st.log.Warn("console: keeping a generated certificate failed", "err", err)
		return
	}
	s.data.CertDER, s.data.KeyDER = c.Cert.Raw, key
	st.save(s)
}

// certificate returns the session's generated certificate, or nil.
func (st *sessions) certificate(s *session) *azurekv.Certificate {
	if s.data.CertDER == nil {
		return nil
	}
	cert, err := x509.ParseCertificate(s.data.CertDER)
	if err != nil {
		return nil
	}
	key, err := x509.ParsePKCS8PrivateKey(s.data.KeyDER)
	rk, ok := key.(*rsa.PrivateKey)
	if err != nil || !ok {
		return nil
	}
	return &azurekv.Certificate{Cert: cert, Key: rk}
}

var errNoSession = errors.New("console: not signed in")

// current returns the request's session. A session signed in with a token
// re-reads the token: a revoked or expired token ends the session.
func (c *console) current(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	s, err := c.sessions.lookup(r.Context(), ck.Value)
	if err != nil {
		return nil, err
	}
	if s.tokenID == "" {
		return s, nil
	}
	rec, err := c.cfg.Tokens.Token(r.Context(), s.tokenID)
	if errors.Is(err, byok.ErrNotFound) || err == nil && !rec.Active(c.cfg.Now()) {
		c.sessions.drop(r.Context(), s.hash)
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
			c.renderError(w, r, nil, http.StatusUnauthorized, "Your session has ended. Sign in again.")
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

// how names the way a session signed in, for refusals.
func (s *session) how() string {
	if s.tokenID == "" {
		return "signed in as " + string(s.kind)
	}
	return "signed in with a " + string(s.kind) + " token"
}

// operator wraps h for operator sessions only.
func (c *console) operator(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return c.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
		if s.kind != token.Operator {
			c.renderError(w, r, s, http.StatusForbidden, "The operator page needs an operator; you "+s.how()+".")
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
			c.renderError(w, r, s, http.StatusForbidden, "Tenant pages need that tenant's admin; you "+s.how()+".")
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
	var label any
	if c.oidc != nil {
		label = c.oidc.label
	}
	c.render(w, r, status, "signin", page{Title: "Sign in", CSRF: v, Error: msg, Data: label})
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
	g := grant{kind: rec.Kind, tokenID: rec.ID, subject: "token:" + rec.ID, notAfter: rec.Expires}
	if rec.Kind == token.TenantAdmin && len(rec.Tenants) == 1 {
		g.tenant = rec.Tenants[0]
	}
	id, s, err := c.sessions.create(r.Context(), g)
	if err != nil {
		c.internal(w, r, nil, err)
		return
	}
	c.setSessionCookie(w, r, id, s.expires)
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Path: c.cfg.Prefix, MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, c.startPage(s), http.StatusSeeOther)
}

// setSessionCookie sets the session's cookie: HttpOnly, SameSite=Strict,
// scoped to the console, Secure under TLS.
func (c *console) setSessionCookie(w http.ResponseWriter, r *http.Request, id string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: c.cfg.Prefix, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode, Expires: expires})
}

// checkToken checks the form's token: its form (token.Parse), its record,
// its secret's digest in constant time, its kind, revocation and expiry.
// It returns the record, or a message for the user (never naming which of
// "unknown" and "wrong secret" it was), or an error when the store fails.
func (c *console) checkToken(r *http.Request) (token.Record, string, error) {
	const invalid = "That token is not valid. Paste the whole token (byok_<kind>_<id>_<secret>), or ask your operator for a new one."
	kind, id, secret, err := token.Parse(strings.TrimSpace(r.PostFormValue("token")))
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

// signout ends the session in the store, so every replica refuses it
// from now on.
func (c *console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.drop(r.Context(), s.hash)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: c.cfg.Prefix, MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, c.cfg.Prefix+"/signin", http.StatusSeeOther)
}

// secure reports whether the console's cookies must be Secure: the request
// came over TLS, or Config.SecureCookies says TLS ends at a proxy in front.
func (c *console) secure(r *http.Request) bool { return r.TLS != nil || c.cfg.SecureCookies }
