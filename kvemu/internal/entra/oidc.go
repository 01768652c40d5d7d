package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Interactive sign-in: users, the authorize endpoint with a test sign-in
// form, authorization codes (with PKCE) and ID tokens, as an app signing
// users in with OpenID Connect meets them in Entra ID.

// User is a person of a tenant who can sign in to apps through the
// authorize endpoint.
type User struct {
	// ObjectID is the user's object id (the oid claim); generated when
	// empty.
	ObjectID string `json:"objectId" yaml:"objectId,omitempty"`
	// TenantID is the user's home directory (the tid claim).
	TenantID string `json:"tenantId" yaml:"tenantId"`
	// Name is the display name (the name claim).
	Name string `json:"name" yaml:"name"`
	// UserPrincipalName is the sign-in name (preferred_username).
	UserPrincipalName string `json:"userPrincipalName" yaml:"userPrincipalName"`
	// Groups are the object ids of the user's groups (the groups claim).
	Groups []string `json:"groups,omitempty" yaml:"groups,omitempty"`
	// Roles are the app roles assigned to the user (the roles claim of
	// any app's ID token).
	Roles []string `json:"roles,omitempty" yaml:"roles,omitempty"`
	// Fault makes the ID tokens issued to this user wrong in one way, so
	// that a relying party's refusal can be tested.
	Fault SignInFault `json:"fault,omitempty" yaml:"fault,omitempty"`
}

// SignInFault is a deliberate defect of the ID tokens issued to a user.
type SignInFault string

// The faults a [User] may carry.
const (
	// FaultNone: a correct ID token.
	FaultNone SignInFault = ""
	// FaultWrongAudience: aud is another app's client id.
	FaultWrongAudience SignInFault = "wrong-audience"
	// FaultExpiredIDToken: exp is an hour in the past.
	FaultExpiredIDToken SignInFault = "expired-id-token"
	// FaultWrongNonce: nonce is not the one the authorize request gave.
	FaultWrongNonce SignInFault = "wrong-nonce"
	// FaultBadSignature: signed by a key the JWKS does not hold.
	FaultBadSignature SignInFault = "bad-signature"
)

func (f SignInFault) valid() bool {
	switch f {
	case FaultNone, FaultWrongAudience, FaultExpiredIDToken, FaultWrongNonce, FaultBadSignature:
		return true
	}
	return false
}

// codeLifetime is how long an authorization code can be redeemed, as in
// Entra (10 minutes).
const codeLifetime = 10 * time.Minute

// authCode is an issued authorization code, keyed by its SHA-256.
type authCode struct {
	clientID, redirectURI, userOID string
	nonce, challenge, scope        string
	issuerTenant                   string // the tenant the user signed in to
	expires                        time.Time
	redeemed                       bool
}

// CreateUser adds a user to u.TenantID. An empty ObjectID is generated.
// It returns the user as stored.
func (s *Service) CreateUser(u User) (User, error) {
	var err error
	if u.ObjectID, err = guidOrNew("user object id", u.ObjectID); err != nil {
		return User{}, err
	}
	if u.Name == "" || u.UserPrincipalName == "" {
		return User{}, fmt.Errorf("%w: a user needs a name and a userPrincipalName (e.g. ada@contoso.com)", ErrInvalid)
	}
	if !u.Fault.valid() {
		return User{}, fmt.Errorf("%w: fault %q; use %s, %s, %s or %s", ErrInvalid, u.Fault, FaultWrongAudience, FaultExpiredIDToken, FaultWrongNonce, FaultBadSignature)
	}
	u.Groups, u.Roles = slices.Clone(u.Groups), slices.Clone(u.Roles)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookupTenant(u.TenantID)
	if t == nil {
		return User{}, fmt.Errorf("%w: tenant %q; create it first", ErrNotFound, u.TenantID)
	}
	u.TenantID = t.ID
	if s.users[u.ObjectID] != nil {
		return User{}, fmt.Errorf("%w: user %s", ErrExists, u.ObjectID)
	}
	for _, o := range s.users {
		if strings.EqualFold(o.UserPrincipalName, u.UserPrincipalName) {
			return User{}, fmt.Errorf("%w: user %s", ErrExists, u.UserPrincipalName)
		}
	}
	s.users[u.ObjectID] = &u
	return u, nil
}

// Users lists the users, ordered by user principal name.
func (s *Service) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.UserPrincipalName, b.UserPrincipalName) })
	return out
}

// SetSignInFault sets the fault of the ID tokens issued to a user (by
// object id or user principal name); [FaultNone] clears it.
func (s *Service) SetSignInFault(user string, f SignInFault) error {
	if !f.valid() {
		return fmt.Errorf("%w: fault %q", ErrInvalid, f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if strings.EqualFold(u.ObjectID, user) || strings.EqualFold(u.UserPrincipalName, user) {
			u.Fault = f
			return nil
		}
	}
	return fmt.Errorf("%w: user %q", ErrNotFound, user)
}

// AddRedirectURI registers a web redirect URI on an app.
func (s *Service) AddRedirectURI(clientID, uri string) error {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) || u.Fragment != "" {
		return fmt.Errorf("%w: redirect URI %q must be https (or http on localhost) without a fragment", ErrInvalid, uri)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appLocked(clientID)
	if err != nil {
		return err
	}
	if !slices.Contains(a.RedirectURIs, uri) {
		a.RedirectURIs = append(a.RedirectURIs, uri)
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// RotateIDTokenKey makes a new ID token signing key; the JWKS keeps the
// previous one too (as Entra publishes keys before and after a roll), so
// tokens signed before the rotation still verify, and a relying party
// that cached the old set must fetch it again for the new kid.
func (s *Service) RotateIDTokenKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("entra: generate ID token key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idKeys = []*rsa.PrivateKey{key, s.idKeys[0]}
	return nil
}

// IDTokenKeyID returns the kid of the current ID token signing key.
func (s *Service) IDTokenKeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return keyThumbprint(&s.idKeys[0].PublicKey)
}

// postValue returns a field of a POST form body, bounded in size; the
// form stays parsed for the handler that follows.
func postValue(w http.ResponseWriter, r *http.Request, name string) string {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		// Leave the error to the handler: its ParseForm reads the
		// failed body again and fails the same way.
		r.Form, r.PostForm = nil, nil
		return ""
	}
	return r.PostForm.Get(name)
}

// authRequest is a validated authorize request.
type authRequest struct {
	app                                *app
	redirectURI, state, nonce, scope   string
	challenge, responseMode, tenantSeg string
	params                             url.Values // what the form carries on
}

// authorize serves /{tenant}/oauth2/v2.0/authorize: GET shows the test
// sign-in form (one button per user who may sign in), POST signs the
// chosen user in and redirects to the app's redirect URI with a code.
// Errors the app must not receive (unknown app, unregistered redirect URI)
// are shown as a page, as Entra does; the others go back to the app as
// error and error_description.
func (s *Service) authorize(w http.ResponseWriter, r *http.Request, authority, tenantSeg string) {
	var q url.Values
	switch r.Method {
	case http.MethodGet:
		q = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			s.authPage(w, http.StatusBadRequest, "AADSTS900144: the sign-in form is not a valid form.", nil)
			return
		}
		q = r.PostForm
	default:
		s.authPage(w, http.StatusMethodNotAllowed, "AADSTS900561: the authorize endpoint takes GET or POST.", nil)
		return
	}
	req, msg := s.parseAuthRequest(q, tenantSeg)
	if msg != "" {
		s.authPage(w, http.StatusBadRequest, msg, nil)
		return
	}
	fail := func(code, desc string) {
		v := url.Values{"error": {code}, "error_description": {desc}}
		if req.state != "" {
			v.Set("state", req.state)
		}
		http.Redirect(w, r, withQuery(req.redirectURI, v), http.StatusFound)
	}
	if rt := q.Get("response_type"); rt != "code" {
		fail("unsupported_response_type", fmt.Sprintf("AADSTS700054: response_type %q is not enabled for the application; kvemu emulates the authorization code flow (response_type=code).", truncate(rt)))
		return
	}
	if !slices.Contains(strings.Fields(req.scope), "openid") {
		fail("invalid_scope", "AADSTS70011: The provided request must include an 'openid' scope value to sign a user in.")
		return
	}
	if m := q.Get("code_challenge_method"); req.challenge != "" && m != "S256" {
		fail("invalid_request", fmt.Sprintf("AADSTS501491: code_challenge_method %q is not supported by kvemu; use S256.", truncate(m)))
		return
	}
	users := s.signInUsers(req)
	if r.Method == http.MethodGet {
		s.authPage(w, http.StatusOK, "", &signInForm{App: req.app.DisplayName, ClientID: req.app.ClientID, Params: req.params, Users: users})
		return
	}
	if q.Get("cancel") != "" {
		fail("access_denied", "AADSTS65004: User declined to consent to access the app.")
		return
	}
	oid := strings.ToLower(q.Get("user"))
	i := slices.IndexFunc(users, func(u User) bool { return u.ObjectID == oid })
	if i < 0 {
		s.authPage(w, http.StatusBadRequest, "AADSTS50034: that user cannot sign in to this app here; pick one of the listed users.", nil)
		return
	}
	code := randomString(64)
	s.mu.Lock()
	now := s.now()
	for k, c := range s.codes {
		if !now.Before(c.expires) {
			delete(s.codes, k)
		}
	}
	s.codes[sha256.Sum256([]byte(code))] = &authCode{clientID: req.app.ClientID, redirectURI: req.redirectURI,
		userOID: oid, nonce: req.nonce, challenge: req.challenge, scope: req.scope,
		issuerTenant: users[i].TenantID, expires: now.Add(codeLifetime)}
	s.mu.Unlock()
	v := url.Values{"code": {code}, "session_state": {NewGUID()}}
	if req.state != "" {
		v.Set("state", req.state)
	}
	http.Redirect(w, r, withQuery(req.redirectURI, v), http.StatusFound)
}

// parseAuthRequest checks the app and its redirect URI; a message means
// the request cannot go back to the app.
func (s *Service) parseAuthRequest(q url.Values, tenantSeg string) (authRequest, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !isMeta(tenantSeg) && s.lookupTenant(tenantSeg) == nil {
		return authRequest{}, fmt.Sprintf("AADSTS90002: Tenant '%s' not found.", truncate(tenantSeg))
	}
	clientID := q.Get("client_id")
	a := s.apps[strings.ToLower(clientID)]
	if a == nil {
		return authRequest{}, fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", truncate(clientID), truncate(tenantSeg))
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(a.RedirectURIs, redirect) {
		return authRequest{}, fmt.Sprintf("AADSTS50011: The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. (kvemu: register it with AddRedirectURI or the seed's redirectUris.)", truncate(redirect), a.ClientID)
	}
	req := authRequest{app: a, redirectURI: redirect, state: q.Get("state"), nonce: q.Get("nonce"),
		scope: q.Get("scope"), challenge: q.Get("code_challenge"), tenantSeg: tenantSeg, params: url.Values{}}
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "response_mode"} {
		if v := q.Get(k); v != "" {
			req.params.Set(k, v)
		}
	}
	return req, ""
}

// signInUsers lists who may sign in to req's app at req's tenant: the
// tenant's users, or for organizations/common every user of the app's
// home tenant and, for a multi-tenant app, of any tenant.
func (s *Service) signInUsers(req authRequest) []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	var tid string
	if !isMeta(req.tenantSeg) {
		tid = s.lookupTenant(req.tenantSeg).ID
	}
	var out []User
	for _, u := range s.users {
		switch {
		case tid != "" && u.TenantID != tid:
		case u.TenantID != req.app.TenantID && !req.app.MultiTenant:
		default:
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.UserPrincipalName, b.UserPrincipalName) })
	return out
}

func withQuery(base string, v url.Values) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// signInForm is the data of the test sign-in page.
type signInForm struct {
	App, ClientID string
	Params        url.Values
	Users         []User
}

var signInPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account (kvemu)</title></head>
<body><main>
<h1>Sign in to your account</h1>
<p>kvemu's Entra ID: a <strong>test sign-in</strong>, no password. Pick who signs in.</p>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
{{with .Form}}
<p>Signing in to <strong>{{.App}}</strong> ({{.ClientID}}).</p>
<form method="post">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">
{{end}}
{{range .Users}}<p><button type="submit" name="user" value="{{.ObjectID}}" id="user-{{.UserPrincipalName}}">{{.Name}} ({{.UserPrincipalName}}){{if .Fault}} — fault: {{.Fault}}{{end}}</button></p>
{{else}}<p id="no-users">No user can sign in to this app here: add users to the tenant (kvemu CreateUser or the seed's users).</p>
{{end}}
<p><button type="submit" name="cancel" value="1" id="cancel">Cancel</button></p>
</form>
{{end}}
</main></body></html>
`))

func (s *Service) authPage(w http.ResponseWriter, status int, msg string, f *signInForm) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = signInPage.Execute(w, struct {
		Error string
		Form  *signInForm
	}{msg, f})
}

func badGrant(code int, msg string) *aadError {
	return &aadError{status: 400, err: "invalid_grant", code: code, msg: msg}
}

// codeGrant redeems an authorization code at the token endpoint: the code
// must be known, unexpired and never redeemed, for the authenticated
// client (secret, in the body or as HTTP Basic, or a certificate
// assertion), with the redirect URI of the authorize request and a
// code_verifier whose S256 is the code_challenge. It answers an ID token
// (with the user's fault, if any) and an access token for Microsoft Graph.
func (s *Service) codeGrant(w http.ResponseWriter, r *http.Request, authority, tenantSeg string) {
	now := s.now()
	form := r.PostForm
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		u, _ = url.QueryUnescape(u)
		p, _ = url.QueryUnescape(p)
		if clientID != "" && !strings.EqualFold(clientID, u) {
			(&aadError{status: 401, err: "invalid_client", code: 700021, msg: "client_id in the body and in the Authorization header differ."}).write(w, now)
			return
		}
		clientID, secret = u, p
	}
	raw := form.Get("code")
	if clientID == "" {
		errMissingParam("client_id").write(w, now)
		return
	}
	if raw == "" {
		errMissingParam("code").write(w, now)
		return
	}
	tokenURL := authority + "/" + tenantSeg + "/oauth2/v2.0/token"
	s.mu.Lock()
	c := s.codes[sha256.Sum256([]byte(raw))]
	a := s.apps[strings.ToLower(clientID)]
	var aerr *aadError
	switch {
	case c == nil:
		aerr = badGrant(70000, "The provided authorization code is invalid. It may be malformed, for another app, or from another emulator.")
	case c.redeemed:
		aerr = badGrant(54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	case !now.Before(c.expires):
		aerr = badGrant(70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	case a == nil || a.ClientID != c.clientID:
		aerr = badGrant(70000, "The provided authorization code was issued to another app (client_id differs).")
	case secret == "" && form.Get("client_assertion") == "":
		aerr = &aadError{status: 401, err: "invalid_client", code: 7000218, msg: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	case secret != "":
		aerr = s.checkSecret(a, secret)
	case form.Get("client_assertion_type") != assertionType:
		aerr = &aadError{status: 400, err: "invalid_request", code: 50027, msg: fmt.Sprintf("Invalid client_assertion_type; use %s.", assertionType)}
	default:
		aerr = s.checkAssertion(a, []string{tokenURL}, form.Get("client_assertion"))
	}
	if aerr == nil && form.Get("redirect_uri") != c.redirectURI {
		aerr = badGrant(500112, "The redirect_uri of the token request is not the one of the authorization request.")
	}
	if aerr == nil && c.challenge != "" {
		sum := sha256.Sum256([]byte(form.Get("code_verifier")))
		got := base64.RawURLEncoding.EncodeToString(sum[:])
		if form.Get("code_verifier") == "" || subtle.ConstantTimeCompare([]byte(got), []byte(c.challenge)) != 1 {
			aerr = badGrant(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		}
	}
	var u User
	if aerr == nil {
		if up := s.users[c.userOID]; up != nil {
			u = *up
			c.redeemed = true
		} else {
			aerr = badGrant(50034, "The user account does not exist any more in the directory.")
		}
	}
	var key *rsa.PrivateKey
	if len(s.idKeys) > 0 {
		key = s.idKeys[0]
	}
	s.mu.Unlock()
	if aerr != nil {
		aerr.write(w, now)
		return
	}
	idToken, err := s.idToken(key, authority, c, u, now)
	if err != nil {
		(&aadError{status: 500, err: "temporarily_unavailable", code: 90033, msg: "The emulator could not sign the token."}).write(w, now)
		return
	}
	access, expires, err := s.issue(principal{tenantID: u.TenantID, clientID: c.clientID, objectID: u.ObjectID, acr: "1"}, "https://graph.microsoft.com")
	if err != nil {
		(&aadError{status: 500, err: "temporarily_unavailable", code: 90033, msg: "The emulator could not sign the token."}).write(w, now)
		return
	}
	secs := int64(expires.Sub(now) / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "scope": c.scope, "expires_in": secs,
		"ext_expires_in": secs, "access_token": access, "id_token": idToken})
}

// idToken signs the v2.0 ID token of u for code c, with u's fault.
func (s *Service) idToken(key *rsa.PrivateKey, authority string, c *authCode, u User, now time.Time) (string, error) {
	sub := sha256.Sum256([]byte(u.ObjectID + "\x00" + c.clientID)) // pairwise, as Entra's sub
	exp := now.Add(s.lifetime)
	claims := map[string]any{
		"aud": c.clientID, "iss": authority + "/" + u.TenantID + "/v2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(),
		"sub": base64.RawURLEncoding.EncodeToString(sub[:]), "oid": u.ObjectID, "tid": u.TenantID,
		"name": u.Name, "preferred_username": u.UserPrincipalName,
		"aio": randomString(24), "uti": randomString(22), "rh": "0.kvemu.", "ver": "2.0",
	}
	if c.nonce != "" {
		claims["nonce"] = c.nonce
	}
	if len(u.Groups) > 0 {
		claims["groups"] = u.Groups
	}
	if len(u.Roles) > 0 {
		claims["roles"] = u.Roles
	}
	kid := keyThumbprint(&key.PublicKey)
	switch u.Fault {
	case FaultWrongAudience:
		claims["aud"] = NewGUID()
	case FaultExpiredIDToken:
		claims["iat"], claims["nbf"], claims["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	case FaultWrongNonce:
		claims["nonce"] = randomString(32)
	case FaultBadSignature:
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		key = other // same kid, another key
	}
	return signJWT(key, jwtHeader{Typ: "JWT", Kid: kid}, claims)
}
