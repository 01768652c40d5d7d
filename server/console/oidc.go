package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server/token"
)

// OIDC configures sign-in through the platform's OpenID Connect issuer
// (Microsoft Entra ID first; any issuer with discovery works): the
// authorization code flow with PKCE, state and nonce, the ID token
// verified (issuer, audience, expiry, signature through the issuer's JWKS,
// which is fetched again when a token names a key it does not hold), and
// its claims mapped to a role by Operators and TenantAdmins. Token sign-in
// stays.
type OIDC struct {
	// Issuer is the issuer URL; its /.well-known/openid-configuration is
	// read at the first sign-in. For Entra ID,
	// https://login.microsoftonline.com/{directory id}/v2.0 signs in the
	// platform's own directory; .../organizations/v2.0 signs in users of
	// any directory (customers' admins from theirs): each ID token's iss
	// must then be .../{its tid}/v2.0.
	Issuer string
	// ClientID and ClientSecret are the console's app registration (a
	// confidential client); the secret is read from the environment by
	// byok serve, never from a file.
	ClientID, ClientSecret string
	// ClientAssertion, instead of ClientSecret, returns a client
	// assertion for each code exchange: a federated token the app trusts
	// (a Kubernetes workload identity's token file, a managed identity's
	// token for api://AzureADTokenExchange). No secret anywhere.
	ClientAssertion func(ctx context.Context) (string, error)
	// RedirectURL is where the issuer sends the browser back:
	// https://<console host>/console/oidc/callback (register it on the
	// app as a Web redirect URI).
	RedirectURL string
	// Scopes requested; default openid, profile, email.
	Scopes []string
	// Label is the sign-in button's text; default "Sign in with your
	// organization".
	Label string
	// Operators: a user matching any of these rules is an operator.
	Operators []Rule
	// TenantAdmins: a user matching one of these rules (and no operator
	// rule) is the tenant admin of the rule's tenant. Rules are tried in
	// order; the first that matches decides.
	TenantAdmins []Rule
	// HTTPClient reaches the issuer (discovery, JWKS, token endpoint);
	// nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Rule maps the claims of an ID token to a role.
type Rule struct {
	// Tenant is the byok tenant a TenantAdmins rule makes the user admin
	// of. Leave it empty and set FromKeySettings instead to find it.
	Tenant string
	// FromKeySettings, in a TenantAdmins rule: the tenant is the one whose
	// saved key settings name the user's Entra directory (the ID token's
	// tid is the settings' DirectoryID). "Users of the directory named in
	// a tenant's key settings are that tenant's admins, if they hold app
	// role G": FromKeySettings with Require roles=G.
	FromKeySettings bool
	// Require lists claims the ID token must all carry for the rule to
	// match: a claim holding a string must equal Value, one holding a
	// list must contain it (groups, roles). A rule must require at least
	// one claim.
	Require []Claim
}

// Claim is one required claim value.
type Claim struct {
	Name, Value string
}

// flowCookie carries a started sign-in (state, nonce, PKCE verifier)
// from /oidc/start to /oidc/callback in the browser itself, so the
// callback may land on any replica. It is HttpOnly, scoped to the
// callback's path, lives 10 minutes and is SameSite=Lax: the callback is
// a top-level navigation from the issuer's site, which Strict cookies do
// not follow.
const (
	flowCookie   = "byok_console_oidc"
	flowLifetime = 10 * time.Minute
)

// oidcFlow is the flow cookie's content.
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
}

// oidcClient is the console's relying party: configured at New, the
// issuer discovered at the first sign-in (and again after a failed
// discovery).
type oidcClient struct {
	cfg   OIDC
	label string
	now   func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider
	template string // Entra multi-tenant: the issuer with {tenantid}
}

func newOIDC(cfg OIDC, now func() time.Time) (*oidcClient, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"Issuer", cfg.Issuer}, {"ClientID", cfg.ClientID},
		{"RedirectURL", cfg.RedirectURL}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if cfg.ClientSecret == "" && cfg.ClientAssertion == nil {
		missing = append(missing, "ClientSecret (or ClientAssertion)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("console: Config.OIDC lacks %s; set them, or leave OIDC nil for token sign-in only", strings.Join(missing, ", "))
	}
	if cfg.ClientSecret != "" && cfg.ClientAssertion != nil {
		return nil, errors.New("console: Config.OIDC sets both ClientSecret and ClientAssertion; the app authenticates with one")
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || !strings.HasSuffix(u.Path, "/oidc/callback") {
		return nil, fmt.Errorf("console: Config.OIDC.RedirectURL %q must be the console's callback, https://<host><prefix>/oidc/callback", cfg.RedirectURL)
	}
	if len(cfg.Operators)+len(cfg.TenantAdmins) == 0 {
		return nil, errors.New("console: Config.OIDC maps nobody to a role; add an Operators or TenantAdmins rule")
	}
	for i, r := range cfg.Operators {
		if len(r.Require) == 0 || r.Tenant != "" || r.FromKeySettings {
			return nil, fmt.Errorf("console: Config.OIDC.Operators[%d] must require at least one claim and name no tenant", i)
		}
	}
	for i, r := range cfg.TenantAdmins {
		if len(r.Require) == 0 || (r.Tenant == "") == !r.FromKeySettings {
			return nil, fmt.Errorf("console: Config.OIDC.TenantAdmins[%d] must require at least one claim and set exactly one of Tenant and FromKeySettings", i)
		}
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	o := &oidcClient{cfg: cfg, label: cfg.Label, now: now}
	if o.label == "" {
		o.label = "Sign in with your organization"
	}
	return o, nil
}

// ctx carries the issuer's HTTP client for go-oidc and oauth2.
func (o *oidcClient) ctx(ctx context.Context) context.Context {
	if o.cfg.HTTPClient == nil {
		return ctx
	}
	return context.WithValue(oidc.ClientContext(ctx, o.cfg.HTTPClient), oauth2.HTTPClient, o.cfg.HTTPClient)
}

// discover returns the issuer's provider, reading its discovery document
// once. An Entra ID organizations or common issuer names its issuer as a
// template (https://login.microsoftonline.com/{tenantid}/v2.0), which is
// kept to check each token's iss against its tid.
func (o *oidcClient) discover(ctx context.Context) (*oidc.Provider, string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, o.template, nil
	}
	ctx = o.ctx(ctx)
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	var mismatch *oidc.IssuerMismatchError
	if errors.As(err, &mismatch) && strings.Contains(mismatch.Discovered, "{tenantid}") {
		o.template = mismatch.Discovered
		p, err = oidc.NewProvider(oidc.InsecureIssuerURLContext(ctx, mismatch.Discovered), o.cfg.Issuer)
	}
	if err != nil {
		return nil, "", fmt.Errorf("console: OpenID Connect discovery of %s failed: %w; check console.oidc.issuer and that byok reaches it", o.cfg.Issuer, err)
	}
	o.provider = p
	return p, o.template, nil
}

func (o *oidcClient) oauth2Config(p *oidc.Provider) *oauth2.Config {
	c := &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: o.cfg.RedirectURL, Scopes: o.cfg.Scopes}
	if o.cfg.ClientAssertion != nil {
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams // client_id in the body, no secret
	}
	return c
}

// clientAuth returns the exchange's client assertion parameters, if the
// app authenticates with one.
func (o *oidcClient) clientAuth(ctx context.Context) ([]oauth2.AuthCodeOption, error) {
	if o.cfg.ClientAssertion == nil {
		return nil, nil
	}
	a, err := o.cfg.ClientAssertion(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: the client assertion for the code exchange: %w", err)
	}
	return []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", a),
	}, nil
}

// oidcStart begins a sign-in: fresh state, nonce and PKCE verifier in the
// flow cookie, and a redirect to the issuer's authorize endpoint.
func (c *console) oidcStart(w http.ResponseWriter, r *http.Request) {
	p, _, err := c.oidc.discover(r.Context())
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: OpenID Connect sign-in unavailable", "err", err)
		c.renderError(w, r, nil, http.StatusBadGateway, "Sign-in through your organization is unavailable: byok cannot read the identity provider's configuration. Try again later, or sign in with a token; the server log says why.")
		return
	}
	f := oidcFlow{State: randomText(), Nonce: randomText(), Verifier: oauth2.GenerateVerifier()}
	b, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: c.cfg.Prefix + "/oidc/",
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode, MaxAge: int(flowLifetime / time.Second)})
	http.Redirect(w, r, c.oidc.oauth2Config(p).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

// refuse shows why a sign-in through the issuer failed, with a way to
// start again; detail goes to the log only (never a code or token).
func (c *console) refuse(w http.ResponseWriter, r *http.Request, status int, reason, msg string, detail error) {
	c.log.WarnContext(r.Context(), "console: OpenID Connect sign-in refused", "reason", reason, "err", detail)
	c.render(w, r, status, "oidc", page{Title: "Sign-in refused", Error: msg, Data: oidcPage{Reason: reason}})
}

// oidcPage is the data of the oidc template: a refusal, or the page that
// continues to the start page after a sign-in.
type oidcPage struct {
	Reason   string // a refusal's short code, e.g. "nonce"
	Continue string // after a sign-in: where to go
	Name     string
}

// oidcCallback finishes a sign-in: the flow cookie's state must be the
// one returned (constant time), the code is exchanged with the PKCE
// verifier and the client's credentials, the ID token verified and its
// nonce compared with the flow's (constant time), and its claims mapped to
// a role. Each refusal is its own page.
func (c *console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	clear := &http.Cookie{Name: flowCookie, Path: c.cfg.Prefix + "/oidc/", MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode}
	q := r.URL.Query()
	var f oidcFlow
	ck, err := r.Cookie(flowCookie)
	if err == nil {
		var b []byte
		if b, err = base64.RawURLEncoding.DecodeString(ck.Value); err == nil {
			err = json.Unmarshal(b, &f)
		}
	}
	http.SetCookie(w, clear) // one flow, one callback
	if err != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		c.refuse(w, r, http.StatusBadRequest, "no-flow", "This sign-in was not started in this browser, or took longer than 10 minutes. Start again.", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		c.refuse(w, r, http.StatusBadRequest, "state", "This answer from the identity provider does not belong to the sign-in this browser started (its state differs). Start again.", nil)
		return
	}
	if e := q.Get("error"); e != "" {
		c.refuse(w, r, http.StatusUnauthorized, "provider", "The identity provider did not sign you in: "+trim(e+": "+q.Get("error_description")), nil)
		return
	}
	p, template, err := c.oidc.discover(r.Context())
	if err != nil {
		c.refuse(w, r, http.StatusBadGateway, "discovery", "byok cannot read the identity provider's configuration now. Try again later, or sign in with a token.", err)
		return
	}
	ctx := c.oidc.ctx(r.Context())
	auth, err := c.oidc.clientAuth(ctx)
	if err != nil {
		c.refuse(w, r, http.StatusBadGateway, "client-assertion", "byok cannot read its own credential for the identity provider now (its federated token). Try again later, or sign in with a token; the server log says why.", err)
		return
	}
	tok, err := c.oidc.oauth2Config(p).Exchange(ctx, q.Get("code"), append(auth, oauth2.VerifierOption(f.Verifier))...)
	if err != nil {
		var re *oauth2.RetrieveError
		msg := "The identity provider refused to exchange the sign-in code"
		if errors.As(err, &re) {
			msg += " (" + trim(re.ErrorCode+": "+firstLine(re.ErrorDescription)) + ")"
			err = fmt.Errorf("token endpoint answered %d %s", re.Response.StatusCode, re.ErrorCode)
		}
		c.refuse(w, r, http.StatusUnauthorized, "exchange", msg+". A code works once and for a few minutes: start again.", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		c.refuse(w, r, http.StatusBadGateway, "no-id-token", "The identity provider answered without an ID token; check that the openid scope is allowed for the app.", nil)
		return
	}
	idt, err := p.VerifierContext(ctx, &oidc.Config{ClientID: c.oidc.cfg.ClientID, Now: c.cfg.Now, SkipIssuerCheck: template != ""}).Verify(ctx, raw)
	if err != nil {
		reason, msg := classifyVerifyError(err)
		c.refuse(w, r, http.StatusUnauthorized, reason, msg, err)
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		c.refuse(w, r, http.StatusUnauthorized, "claims", "The ID token's claims cannot be read.", err)
		return
	}
	if template != "" {
		tid, _ := claims["tid"].(string)
		if tid == "" || idt.Issuer != strings.Replace(template, "{tenantid}", tid, 1) {
			c.refuse(w, r, http.StatusUnauthorized, "issuer", "The ID token's issuer is not the one of its directory (iss does not match tid).", fmt.Errorf("iss %q, tid %q", idt.Issuer, tid))
			return
		}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		c.refuse(w, r, http.StatusUnauthorized, "nonce", "The ID token does not answer this sign-in (its nonce differs): it may have been replayed. Start again.", nil)
		return
	}
	who := userName(claims)
	kind, tenant, msg, err := c.mapClaims(r.Context(), claims)
	if err != nil {
		c.internal(w, r, nil, err)
		return
	}
	if msg != "" {
		c.refuse(w, r, http.StatusForbidden, "unmapped", msg, nil)
		return
	}
	id, s, err := c.sessions.create(r.Context(), grant{kind: kind, tenant: tenant, subject: "oidc:" + idt.Issuer + "#" + idt.Subject, name: who})
	if err != nil {
		c.internal(w, r, nil, err)
		return
	}
	c.setSessionCookie(w, r, id, s.expires)
	// The session cookie is SameSite=Strict, and this response ends a
	// navigation that began on the issuer's site: a redirect would carry
	// on that navigation without the cookie. A page of the console's own
	// that moves on (meta refresh, or the link) starts a same-site one.
	c.render(w, r, http.StatusOK, "oidc", page{Title: "Signed in", Data: oidcPage{Continue: c.startPage(s), Name: who}})
}

// classifyVerifyError names why go-oidc refused an ID token.
func classifyVerifyError(err error) (string, string) {
	var exp *oidc.TokenExpiredError
	text := err.Error()
	switch {
	case errors.As(err, &exp):
		return "expired", "The ID token expired at " + exp.Expiry.UTC().Format(time.RFC3339) + ": start again (if this repeats, the identity provider's or this server's clock is wrong)."
	case strings.Contains(text, "expected audience"):
		return "audience", "The ID token was issued for another application (its audience is not this console's client id)."
	case strings.Contains(text, "issued by a different provider"):
		return "issuer", "The ID token was issued by another identity provider than the one configured."
	case strings.Contains(text, "signature"), strings.Contains(text, "key"):
		return "signature", "The ID token's signature does not verify with the identity provider's published keys."
	}
	return "invalid", "The ID token is not valid."
}

// mapClaims applies the rules: an operator rule first, then the tenant
// admin rules in order. msg explains a user no rule maps.
func (c *console) mapClaims(ctx context.Context, claims map[string]any) (kind token.Kind, tenant, msg string, err error) {
	for _, r := range c.oidc.cfg.Operators {
		if matches(claims, r.Require) {
			return token.Operator, "", "", nil
		}
	}
	var ambiguous []string
	for _, r := range c.oidc.cfg.TenantAdmins {
		if !matches(claims, r.Require) {
			continue
		}
		if r.Tenant != "" {
			return token.TenantAdmin, r.Tenant, "", nil
		}
		tid, _ := claims["tid"].(string)
		if tid == "" {
			continue
		}
		ts, err := c.tenantsOfDirectory(ctx, tid)
		if err != nil {
			return "", "", "", err
		}
		switch len(ts) {
		case 0:
			continue
		case 1:
			return token.TenantAdmin, ts[0], "", nil
		default:
			ambiguous = ts
		}
	}
	who := userName(claims)
	tid, _ := claims["tid"].(string)
	if ambiguous != nil {
		return "", "", fmt.Sprintf("You signed in as %s, and the key settings of several tenants (%s) name your directory %s, so byok cannot tell which you administer. Ask your platform operator to map your directory to one tenant.", who, strings.Join(ambiguous, ", "), tid), nil
	}
	return "", "", fmt.Sprintf("You signed in as %s (directory %s), but no role in this console is mapped to your account. Ask your platform operator to map your group, app role or directory to a role (console.oidc in byok's configuration), or sign in with a token.", who, orDash(tid)), nil
}

// tenantsOfDirectory lists the tenants whose saved key settings name the
// Entra directory tid.
func (c *console) tenantsOfDirectory(ctx context.Context, tid string) ([]string, error) {
	var out []string
	after := ""
	for {
		page, err := c.cfg.Lifecycle.ListTenants(ctx, after, 500)
		if err != nil {
			return nil, err
		}
		for _, t := range page {
			k, err := c.cfg.Lifecycle.Status(ctx, t.ID)
			if err != nil {
				return nil, err
			}
			if dir := azureOptions(k.Settings).DirectoryID; k.State != lifecycle.StateNone && dir != "" && strings.EqualFold(dir, tid) {
				out = append(out, t.ID)
			}
		}
		if len(page) < 500 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// matches reports whether claims hold every required value.
func matches(claims map[string]any, req []Claim) bool {
	for _, c := range req {
		switch v := claims[c.Name].(type) {
		case string:
			if v != c.Value {
				return false
			}
		case []any:
			if !slices.ContainsFunc(v, func(x any) bool { s, ok := x.(string); return ok && s == c.Value }) {
				return false
			}
		case nil:
			return false
		default:
			if fmt.Sprint(v) != c.Value {
				return false
			}
		}
	}
	return len(req) > 0
}

// userName names the signed-in user for pages and refusals.
func userName(claims map[string]any) string {
	name, _ := claims["name"].(string)
	upn, _ := claims["preferred_username"].(string)
	if upn == "" {
		upn, _ = claims["email"].(string)
	}
	switch {
	case name != "" && upn != "":
		return trim(name + " (" + upn + ")")
	case name != "":
		return trim(name)
	case upn != "":
		return trim(upn)
	}
	sub, _ := claims["sub"].(string)
	sum := sha256.Sum256([]byte(sub))
	return "subject " + base64.RawURLEncoding.EncodeToString(sum[:6])
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(strings.TrimSuffix(s, "\r"))
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
