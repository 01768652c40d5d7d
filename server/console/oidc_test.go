package console_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/server/console"
)

// The platform's directory (its operators), Fabrikam's directory, and the
// group and app role the mapping rules name.
const (
	platformDir   = "0a1b2c3d-0000-4000-8000-00000000000a"
	fabrikamDir   = "0f0f0f0f-0000-4000-8000-0000000000fb"
	opsGroup      = "6b1c0e2a-1111-4222-8333-444455556666"
	adminRole     = "BYOK.TenantAdmin"
	organizations = "https://login.microsoftonline.com/organizations/v2.0"
)

// sso is the fixture with two console replicas over the fixture's one
// SQLite store, both configured for OpenID Connect against kvemu's Entra,
// behind one front URL that sends each request to the replica `to` names.
type sso struct {
	*fixture
	front    *httptest.Server
	to       atomic.Int32 // the replica the front sends requests to
	app      kvemu.App    // the console's app registration
	users    map[string]kvemu.User
	replicas [2]http.Handler
	oidc     console.OIDC // the replicas' configuration
}

// newSSO builds the fixture, the console's multi-tenant app in the
// platform's directory with its redirect URI and secret, users, and two
// console replicas trusting issuer (organizations when empty).
func newSSO(t *testing.T, issuer string) *sso {
	t.Helper()
	s := &sso{fixture: newFixture(t, false), users: map[string]kvemu.User{}}
	if issuer == "" {
		issuer = organizations
	}
	emu := s.emu
	for _, tn := range []kvemu.Tenant{{ID: platformDir, Name: "SaaS Inc."}, {ID: fabrikamDir, Name: "Fabrikam"}} {
		if _, err := emu.CreateTenant(tn); err != nil {
			t.Fatal(err)
		}
	}
	s.front = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.replicas[s.to.Load()].ServeHTTP(w, r)
	}))
	s.front.Start()
	t.Cleanup(s.front.Close)
	callback := s.front.URL + "/console/oidc/callback"
	var err error
	if s.app, err = emu.CreateApp(kvemu.App{TenantID: platformDir, DisplayName: "byok console", MultiTenant: true, RedirectURIs: []string{callback}}); err != nil {
		t.Fatal(err)
	}
	sec, err := emu.AddSecret(s.app.ClientID, kvemu.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []kvemu.User{
		{TenantID: platformDir, Name: "Olga Operator", UserPrincipalName: "olga@saas.example", Groups: []string{opsGroup}},
		{TenantID: platformDir, Name: "Pat Platform", UserPrincipalName: "pat@saas.example"}, // no group
		{TenantID: directory, Name: "Carla Contoso", UserPrincipalName: "carla@contoso.com", Roles: []string{adminRole}},
		{TenantID: directory, Name: "Chris Contoso", UserPrincipalName: "chris@contoso.com"}, // no role
		{TenantID: fabrikamDir, Name: "Fay Fabrikam", UserPrincipalName: "fay@fabrikam.com"},
		{TenantID: platformDir, Name: "Aud Wrong", UserPrincipalName: "aud@saas.example", Groups: []string{opsGroup}, Fault: kvemu.FaultWrongAudience},
		{TenantID: platformDir, Name: "Exp Ired", UserPrincipalName: "exp@saas.example", Groups: []string{opsGroup}, Fault: kvemu.FaultExpiredIDToken},
		{TenantID: platformDir, Name: "Non Ce", UserPrincipalName: "nonce@saas.example", Groups: []string{opsGroup}, Fault: kvemu.FaultWrongNonce},
		{TenantID: platformDir, Name: "Sig Nature", UserPrincipalName: "sig@saas.example", Groups: []string{opsGroup}, Fault: kvemu.FaultBadSignature},
	} {
		if s.users[u.UserPrincipalName], err = emu.CreateUser(u); err != nil {
			t.Fatal(err)
		}
	}
	// Contoso's key settings name its directory: its users holding the
	// admin role are its admins.
	if _, err := s.lc.Configure(s.ctx, audit.Actor{Kind: audit.TenantAdmin, ID: "test"}, contoso, azure.Settings(keyID, azure.Options{DirectoryID: directory, ClientID: s.fixture.app.ClientID, Credential: azure.CredentialClientSecret}, lifecycle.NewSecret(s.secret))); err != nil {
		t.Fatal(err)
	}
	s.oidc = console.OIDC{
		Issuer: issuer, ClientID: s.app.ClientID, ClientSecret: sec.Value, RedirectURL: callback,
		Label:      "Sign in with Microsoft Entra ID",
		HTTPClient: emu.HTTPClient(),
		Operators:  []console.Rule{{Require: []console.Claim{{Name: "tid", Value: platformDir}, {Name: "groups", Value: opsGroup}}}},
		TenantAdmins: []console.Rule{
			{Tenant: fabrikam, Require: []console.Claim{{Name: "tid", Value: fabrikamDir}}},
			{FromKeySettings: true, Require: []console.Claim{{Name: "roles", Value: adminRole}}},
		},
	}
	for i := range s.replicas {
		s.replicas[i] = s.replica(nil)
	}
	return s
}

// replica returns a console over the fixture's store with the sso
// configuration, changed by mod (nil: as it is).
func (s *sso) replica(mod func(*console.OIDC)) http.Handler {
	s.t.Helper()
	o := s.oidc
	if mod != nil {
		mod(&o)
	}
	ui, err := console.New(console.Config{Lifecycle: s.lc, Tokens: s.db, Audit: audit.New(s.db, nil), Now: s.clock.Now, Sessions: s.db, OIDC: &o})
	if err != nil {
		s.t.Fatal(err)
	}
	return ui
}

// browserless is a cookie-keeping client that reaches both the console
// (plain HTTP, dialled as given) and kvemu (every HTTPS name), and does
// not follow redirects: each step is checked.
type browserless struct {
	t *testing.T
	s *sso
	c *http.Client
}

func (s *sso) client() *browserless {
	jar, _ := cookiejar.New(nil)
	return &browserless{t: s.t, s: s, c: &http.Client{Jar: jar, Transport: s.emu.HTTPClient().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browserless) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (b *browserless) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// authorize starts a sign-in at the console and picks upn on kvemu's
// sign-in form. It returns the callback URL kvemu redirects to (code and
// state), not yet visited.
func (b *browserless) authorize(upn string) string {
	b.t.Helper()
	res, _ := b.get(b.s.front.URL + "/console/oidc/start")
	authz := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(authz, "https://login.microsoftonline.com/") {
		b.t.Fatalf("start: %d, Location %q", res.StatusCode, authz)
	}
	u, _ := url.Parse(authz)
	for _, p := range []string{"state", "nonce", "code_challenge"} {
		if u.Query().Get(p) == "" {
			b.t.Errorf("the authorize request has no %s", p)
		}
	}
	if m := u.Query().Get("code_challenge_method"); m != "S256" {
		b.t.Errorf("code_challenge_method %q, want S256", m)
	}
	_, form := b.get(authz)
	f := url.Values{"user": {b.s.users[upn].ObjectID}}
	for _, m := range hiddenField.FindAllStringSubmatch(form, -1) {
		f.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	req, _ := http.NewRequest(http.MethodPost, authz, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, body := b.do(req)
	cb := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(cb, b.s.front.URL+"/console/oidc/callback?") {
		b.t.Fatalf("kvemu's sign-in of %s: %d, Location %q\n%s", upn, res.StatusCode, cb, body)
	}
	return cb
}

// signIn signs upn in and returns the callback's answer.
func (b *browserless) signIn(upn string) (*http.Response, string) {
	b.t.Helper()
	return b.get(b.authorize(upn))
}

// refused checks a refusal page and its reason.
func refused(t *testing.T, what string, res *http.Response, body string, status int, reason string, want ...string) {
	t.Helper()
	if res.StatusCode != status || !strings.Contains(body, `data-reason="`+reason+`"`) {
		t.Errorf("%s: %d, want %d with reason %s\n%s", what, res.StatusCode, status, reason, body)
	}
	mustContain(t, what, body, want...)
	if strings.Contains(body, "code=") {
		t.Errorf("%s: the refusal page quotes a code", what)
	}
}

var continueLink = regexp.MustCompile(`id="continue" href="([^"]+)"`)

// TestOIDCSignIn: operators by group in the platform's directory, the
// admin of a tenant by its directory (tid) and by the directory its key
// settings name with an app role; the session serves pages and is
// audited with the user's subject. Users no rule maps get a clear 403.
func TestOIDCSignIn(t *testing.T) {
	s := newSSO(t, "")
	for _, tc := range []struct{ upn, start, who string }{
		{"olga@saas.example", "/console/operator", "Olga Operator (olga@saas.example), operator"},
		{"carla@contoso.com", "/console/t/contoso/", "Carla Contoso (carla@contoso.com), tenant admin of contoso"},
		{"fay@fabrikam.com", "/console/t/fabrikam/", "Fay Fabrikam (fay@fabrikam.com), tenant admin of fabrikam"},
	} {
		b := s.client()
		res, body := b.signIn(tc.upn)
		m := continueLink.FindStringSubmatch(body)
		if res.StatusCode != http.StatusOK || m == nil || m[1] != tc.start {
			t.Fatalf("%s: callback %d, continue %v\n%s", tc.upn, res.StatusCode, m, body)
		}
		mustContain(t, "signed-in page", body, `http-equiv="refresh"`)
		code, page := b.get(s.front.URL + tc.start)
		if code.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s answered %d", tc.upn, tc.start, code.StatusCode)
		}
		mustContain(t, tc.upn+" page", page, tc.who)
		flowPath, _ := url.Parse(s.front.URL + "/console/oidc/callback")
		if len(b.c.Jar.Cookies(flowPath)) != 1 { // the session cookie only
			t.Errorf("the flow cookie outlived its callback: %v", b.c.Jar.Cookies(flowPath))
		}
	}
	// An action is audited with the user's issuer and subject.
	b := s.client()
	b.signIn("carla@contoso.com")
	_, page := b.get(s.front.URL + "/console/t/contoso/setup")
	csrf := csrfField.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no CSRF field on the setup page")
	}
	req, _ := http.NewRequest(http.MethodPost, s.front.URL+"/console/t/contoso/test", strings.NewReader(url.Values{"csrf": {csrf[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b.do(req)
	_, auditPage := b.get(s.front.URL + "/console/t/contoso/audit")
	mustContain(t, "audit of an OIDC user's action", auditPage, "oidc:https://login.microsoftonline.com/"+directory+"/v2.0#")

	for _, upn := range []string{"pat@saas.example", "chris@contoso.com"} {
		res, body := s.client().signIn(upn)
		refused(t, upn+" (no mapping)", res, body, http.StatusForbidden, "unmapped", "no role in this console is mapped to your account")
	}
}

// TestOIDCRefusals: each broken sign-in is refused with its own page and
// no session: an ID token for another audience, expired, with a wrong
// nonce or signed by an unknown key (kvemu's per-user faults); a replayed
// code (kvemu: AADSTS54005); a state that is not the flow's; another
// flow's code, whose PKCE verifier differs (kvemu: AADSTS501481); and a
// callback with no flow.
func TestOIDCRefusals(t *testing.T) {
	s := newSSO(t, "")
	for upn, reason := range map[string]string{
		"aud@saas.example": "audience", "exp@saas.example": "expired",
		"nonce@saas.example": "nonce", "sig@saas.example": "signature",
	} {
		b := s.client()
		res, body := b.signIn(upn)
		refused(t, upn, res, body, http.StatusUnauthorized, reason)
		if r, _ := b.get(s.front.URL + "/console/operator"); r.StatusCode != http.StatusSeeOther {
			t.Errorf("%s: refused, yet the operator page answers %d", upn, r.StatusCode)
		}
	}

	// Replayed code: the same browser, its flow cookie put back, the
	// same callback URL again.
	b := s.client()
	cb := b.authorize("olga@saas.example")
	front, _ := url.Parse(s.front.URL + "/console/oidc/")
	flow := b.c.Jar.Cookies(front)
	if res, _ := b.get(cb); res.StatusCode != http.StatusOK {
		t.Fatalf("first use of the code: %d", res.StatusCode)
	}
	b.c.Jar.SetCookies(front, flow)
	res, body := b.get(cb)
	refused(t, "replayed code", res, body, http.StatusUnauthorized, "exchange", "AADSTS54005")

	// State mismatch.
	b = s.client()
	cb = b.authorize("olga@saas.example")
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("state", "not-the-flows-state")
	u.RawQuery = q.Encode()
	res, body = b.get(u.String())
	refused(t, "state mismatch", res, body, http.StatusBadRequest, "state")

	// Code injection: the victim's browser gets the attacker's code with
	// its own state; the victim's PKCE verifier does not match.
	victim, attacker := s.client(), s.client()
	victimCB, _ := url.Parse(victim.authorize("olga@saas.example"))
	attackerCB, _ := url.Parse(attacker.authorize("pat@saas.example"))
	q = victimCB.Query()
	q.Set("code", attackerCB.Query().Get("code"))
	victimCB.RawQuery = q.Encode()
	res, body = victim.get(victimCB.String())
	refused(t, "PKCE verifier mismatch", res, body, http.StatusUnauthorized, "exchange", "AADSTS501481")

	// No flow at all (cookie gone or another browser).
	res, body = s.client().get(cb)
	refused(t, "callback without a flow", res, body, http.StatusBadRequest, "no-flow")

	// The issuer's own error comes back as a page.
	b = s.client()
	res, _ = b.get(s.front.URL + "/console/oidc/start")
	authz, _ := url.Parse(res.Header.Get("Location"))
	res, body = b.get(s.front.URL + "/console/oidc/callback?" + url.Values{"state": {authz.Query().Get("state")},
		"error": {"access_denied"}, "error_description": {"AADSTS65004: User declined to consent to access the app."}}.Encode())
	refused(t, "provider error", res, body, http.StatusUnauthorized, "provider", "AADSTS65004")
}

// TestOIDCKeyRotation: after the issuer rotates its ID token key, the
// next sign-in verifies with the new key, fetched from the JWKS.
func TestOIDCKeyRotation(t *testing.T) {
	s := newSSO(t, "https://login.microsoftonline.com/"+platformDir+"/v2.0") // single-tenant issuer
	if res, _ := s.client().signIn("olga@saas.example"); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in before the rotation: %d", res.StatusCode)
	}
	before := s.emu.IDTokenKeyID()
	if err := s.emu.RotateIDTokenKey(); err != nil {
		t.Fatal(err)
	}
	if s.emu.IDTokenKeyID() == before {
		t.Fatal("the key did not change")
	}
	if res, body := s.client().signIn("olga@saas.example"); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after the rotation: %d\n%s", res.StatusCode, body)
	}
	// A user of another directory cannot sign in through the
	// single-tenant issuer: kvemu's form does not offer them.
	b := s.client()
	res, _ := b.get(s.front.URL + "/console/oidc/start")
	_, form := b.get(res.Header.Get("Location"))
	if strings.Contains(form, "carla@contoso.com") {
		t.Error("the platform directory's sign-in form offers a Contoso user")
	}
}

// TestSessionsAcrossReplicas: a session made on one replica serves pages
// and actions on the other (one store); signing out on one ends it on
// both; the idle timeout and the lifetime end it everywhere.
func TestSessionsAcrossReplicas(t *testing.T) {
	s := newSSO(t, "")
	b := s.client()
	s.to.Store(0)
	if res, _ := b.signIn("carla@contoso.com"); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in on replica 0: %d", res.StatusCode)
	}
	s.to.Store(1)
	res, page := b.get(s.front.URL + "/console/t/contoso/setup")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("replica 1 refused replica 0's session: %d", res.StatusCode)
	}
	// A form from replica 1 posted to replica 0: the CSRF token is the
	// session's, whichever replica served it; the flash set on 0 shows
	// on 1.
	csrf := csrfField.FindStringSubmatch(page)[1]
	s.to.Store(0)
	req, _ := http.NewRequest(http.MethodPost, s.front.URL+"/console/t/contoso/scopes", strings.NewReader(url.Values{"csrf": {csrf}, "scope": scopes}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, body := b.do(req); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("action on replica 0 with replica 1's form: %d\n%s", res.StatusCode, body)
	}
	s.to.Store(1)
	_, page = b.get(s.front.URL + "/console/t/contoso/")
	if !strings.Contains(page, `id="flash"`) {
		t.Error("the message of an action on replica 0 is not shown on replica 1")
	}
	// Sign out on 1; 0 refuses the cookie, even replayed.
	s.to.Store(1)
	front, _ := url.Parse(s.front.URL + "/console/")
	cookies := b.c.Jar.Cookies(front)
	req, _ = http.NewRequest(http.MethodPost, s.front.URL+"/console/signout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, _ := b.do(req); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", res.StatusCode)
	}
	b.c.Jar.SetCookies(front, cookies)
	s.to.Store(0)
	if res, _ := b.get(s.front.URL + "/console/t/contoso/"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/signin" {
		t.Errorf("replica 0 after sign-out on replica 1: %d %s, want a redirect to sign-in", res.StatusCode, res.Header.Get("Location"))
	}

	// Idle timeout (default 1 h) and lifetime (default 8 h): idle is
	// unused after +50 min and ends an hour later, on both replicas;
	// busy is used every 50 minutes and ends at 8 h all the same. (Both
	// sign in first: kvemu's ID tokens follow the real clock.)
	idle, busy := s.client(), s.client()
	idle.signIn("olga@saas.example")
	busy.signIn("olga@saas.example")
	use := func(who *browserless, replica int32) int {
		s.to.Store(replica)
		res, _ := who.get(s.front.URL + "/console/operator")
		return res.StatusCode
	}
	s.clock.Advance(50 * time.Minute)
	if use(idle, 1) != http.StatusOK || use(busy, 0) != http.StatusOK {
		t.Fatal("sessions used within their idle timeout were refused")
	}
	for i := range 8 { // to 7 h 30 min
		s.clock.Advance(50 * time.Minute)
		if got := use(busy, int32(i%2)); got != http.StatusOK {
			t.Fatalf("a session in use within its lifetime: %d at +%d min", got, 100+50*i)
		}
	}
	for i := range int32(2) {
		if got := use(idle, 1-i); got != http.StatusSeeOther {
			t.Errorf("replica %d serves a session idle for hours: %d", 1-i, got)
		}
	}
	s.clock.Advance(50 * time.Minute) // 8 h 20 min
	if got := use(busy, 1); got != http.StatusSeeOther {
		t.Errorf("a session past its 8 h lifetime: %d", got)
	}
}

// TestOIDCWorkloadIdentity: the console's app authenticates the code
// exchange with a federated token (a Kubernetes workload identity's) that
// the app trusts, instead of a secret; a token for another subject is
// refused by the issuer (AADSTS700213), and a token that cannot be read
// is a clear page.
func TestOIDCWorkloadIdentity(t *testing.T) {
	s := newSSO(t, "")
	const issuer, subject = "https://oidc.aks.example/cluster-1/", "system:serviceaccount:byok:byok"
	if err := s.emu.AddFederatedIssuer(issuer); err != nil {
		t.Fatal(err)
	}
	if err := s.emu.AddFederatedCredential(s.app.ClientID, kvemu.FederatedCredential{Issuer: issuer, Subject: subject}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, subject string
		readErr       error
		status        int
		reason, want  string
	}{
		{"trusted workload", subject, nil, http.StatusOK, "", ""},
		{"another workload", "system:serviceaccount:other:app", nil, http.StatusUnauthorized, "exchange", "AADSTS700213"},
		{"unreadable token file", "", errors.New("open /var/run/secrets/azure/tokens/azure-identity-token: no such file"), http.StatusBadGateway, "client-assertion", "federated token"},
	} {
		s.replicas[0] = s.replica(func(o *console.OIDC) {
			o.ClientSecret = ""
			o.ClientAssertion = func(context.Context) (string, error) {
				if tc.readErr != nil {
					return "", tc.readErr
				}
				return s.emu.FederatedToken(issuer, tc.subject, "")
			}
		})
		s.to.Store(0)
		res, body := s.client().signIn("olga@saas.example")
		if tc.reason == "" {
			if res.StatusCode != tc.status || !strings.Contains(body, `id="continue"`) {
				t.Errorf("%s: %d\n%s", tc.name, res.StatusCode, body)
			}
			continue
		}
		refused(t, tc.name, res, body, tc.status, tc.reason, tc.want)
	}
}
