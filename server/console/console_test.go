package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/server/console"
)

func TestNewRejectsIncompleteConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  console.Config
		want string
	}{
		{"empty", console.Config{}, "Lifecycle, Tokens, Audit"},
	} {
		_, err := console.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

func TestNewRejectsBadPrefixAndTTL(t *testing.T) {
	f := newFixture(t, false)
	base := func() console.Config {
		return console.Config{Lifecycle: f.lc, Tokens: f.db, Audit: audit.New(f.db, nil)}
	}
	c := base()
	c.Prefix = "/console/"
	if _, err := console.New(c); err == nil || !strings.Contains(err.Error(), "Prefix") {
		t.Errorf("New with prefix %q = %v, want a Prefix error", c.Prefix, err)
	}
	c = base()
	c.SessionTTL = -time.Second
	if _, err := console.New(c); err == nil || !strings.Contains(err.Error(), "SessionTTL") {
		t.Errorf("New with a negative TTL = %v, want a SessionTTL error", err)
	}
}

func TestSignInExchangesTokenForStrictCookie(t *testing.T) {
	for _, tlsServer := range []bool{false, true} {
		f := newFixture(t, tlsServer)
		u := f.newUser()
		res := u.signIn(f.tokens[contoso])
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/t/contoso/" {
			t.Fatalf("sign-in: %d to %q, want 303 to the tenant's status page", res.StatusCode, res.Header.Get("Location"))
		}
		var session *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == "byok_console" {
				session = c
			}
		}
		if session == nil {
			t.Fatal("sign-in set no session cookie")
		}
		if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure != tlsServer {
			t.Errorf("TLS %v: cookie HttpOnly=%v SameSite=%v Secure=%v; want HttpOnly, Strict, Secure only under TLS",
				tlsServer, session.HttpOnly, session.SameSite, session.Secure)
		}
		if strings.Contains(session.Value, f.tokens[contoso]) || len(session.Value) < 43 {
			t.Errorf("session id %d chars, want 256 random bits unrelated to the token", len(session.Value))
		}
		if code, body := u.get("/t/contoso/"); code != http.StatusOK || !strings.Contains(body, "Enterprise Key") {
			t.Errorf("status page after sign-in: %d", code)
		}
	}
}

func TestSignInRefusesBadTokens(t *testing.T) {
	f := newFixture(t, false)
	good := f.tokens[contoso]
	wrongSecret := good[:len(good)-4] + "AAAA"
	if wrongSecret == good {
		wrongSecret = good[:len(good)-4] + "BBBB"
	}
	for name, text := range map[string]string{
		"empty": "", "garbage": "hello", "wrong secret": wrongSecret,
		"unknown id": "byok_tenant-admin_00000000000000000000000000000000_" + good[len(good)-43:],
		"service":    f.tokens["service"],
	} {
		u := f.newUser()
		res, body := u.post("/signin", url.Values{"csrf": {u.csrf("/signin")}, "token": {text}})
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: sign-in answered %d, want 401", name, res.StatusCode)
		}
		if !strings.Contains(body, `id="signin-error"`) {
			t.Errorf("%s: no error shown", name)
		}
		if strings.Contains(body, good[len(good)-43:]) {
			t.Errorf("%s: the page repeats a token secret", name)
		}
		if code, _ := u.get("/t/contoso/"); code != http.StatusSeeOther {
			t.Errorf("%s: tenant page after a refused sign-in answered %d, want a redirect to sign in", name, code)
		}
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, false)

	// Sign-in without the double-submit value.
	u := f.newUser()
	res, _ := u.post("/signin", url.Values{"token": {f.tokens[contoso]}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without CSRF: %d, want 403", res.StatusCode)
	}
	res, _ = u.post("/signin", url.Values{"csrf": {"forged"}, "token": {f.tokens[contoso]}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in with a wrong CSRF value: %d, want 403", res.StatusCode)
	}

	u.signIn(f.tokens[contoso])
	good := u.csrf("/t/contoso/setup")
	form := url.Values{"provider": {"azure-key-vault"}, "key_id": {keyID}, "directory_id": {directory},
		"credential": {"client-secret"}, "client_id": {f.app.ClientID}, "secret": {f.secret}}
	for _, path := range []string{"/t/contoso/configure", "/t/contoso/test", "/t/contoso/proceed", "/t/contoso/rotate",
		"/t/contoso/rekey", "/t/contoso/disable", "/t/contoso/scopes", "/t/contoso/certificate", "/signout"} {
		for name, tok := range map[string]string{"missing": "", "wrong": good[:len(good)-2] + "xx"} {
			v := url.Values{}
			for k, vs := range form {
				v[k] = vs
			}
			if tok != "" {
				v.Set("csrf", tok)
			}
			res, body := u.post(path, v)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "security token") {
				t.Errorf("POST %s with %s CSRF token: %d, want 403", path, name, res.StatusCode)
			}
		}
	}
	st, err := f.lc.Status(f.ctx, contoso)
	if err != nil || st.State != "none" {
		t.Errorf("after forged posts the key is %v (%v), want still none", st.State, err)
	}
	form.Set("csrf", good)
	if res, _ := u.post("/t/contoso/configure", form); res.StatusCode != http.StatusSeeOther {
		t.Errorf("configure with the right CSRF token: %d, want 303", res.StatusCode)
	}
	if st, _ := f.lc.Status(f.ctx, contoso); st.State != "draft" {
		t.Errorf("after configure the key is %s, want draft", st.State)
	}
}

func TestTenantAdminCannotReachAnotherTenant(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	csrf := u.csrf("/t/contoso/")
	for _, path := range []string{"/t/fabrikam/", "/t/fabrikam/setup", "/t/fabrikam/audit", "/t/fabrikam/audit/export",
		"/t/fabrikam/jobs/job_1", "/t/fabrikam/rotate", "/t/fabrikam/disable", "/t/fabrikam/certificate/pem", "/t/nosuch/"} {
		if code, body := u.get(path); code != http.StatusNotFound || strings.Contains(body, "fabrikam admin") {
			t.Errorf("GET %s as contoso: %d, want 404", path, code)
		}
	}
	for _, path := range []string{"/t/fabrikam/configure", "/t/fabrikam/test", "/t/fabrikam/proceed", "/t/fabrikam/rotate",
		"/t/fabrikam/rekey", "/t/fabrikam/disable", "/t/fabrikam/scopes", "/t/fabrikam/certificate"} {
		res, _ := u.post(path, url.Values{"csrf": {csrf}, "key_id": {keyID}, "provider": {"azure-key-vault"}})
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s as contoso: %d, want 404", path, res.StatusCode)
		}
	}
	if st, _ := f.lc.Status(f.ctx, fabrikam); st.State != "none" {
		t.Errorf("fabrikam's key is %s after contoso's attempts, want none", st.State)
	}
	// The operator page is the operator's only.
	if code, _ := u.get("/operator"); code != http.StatusForbidden {
		t.Errorf("operator page as a tenant admin: %d, want 403", code)
	}
	// An audit export holds the tenant's own chain only.
	code, body := u.get("/t/contoso/audit/export")
	if code != http.StatusOK || strings.Contains(body, `"fabrikam"`) || !strings.Contains(body, `"contoso"`) {
		t.Errorf("contoso's export: %d, holds fabrikam's events or misses its own:\n%s", code, body)
	}
}

func TestOperatorPageListsEveryTenant(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	res := u.signIn(f.tokens["operator"])
	if loc := res.Header.Get("Location"); loc != "/console/operator" {
		t.Fatalf("operator sign-in went to %q", loc)
	}
	code, body := u.get("/operator")
	if code != http.StatusOK {
		t.Fatalf("operator page: %d", code)
	}
	mustContain(t, "operator page", body, `<th scope="row">contoso</th>`, `<th scope="row">fabrikam</th>`, "platform-managed")
	if code, _ := u.get("/t/contoso/"); code != http.StatusForbidden {
		t.Errorf("tenant page as operator: %d, want 403", code)
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	if code, _ := u.get("/t/contoso/"); code != http.StatusOK {
		t.Fatalf("status page: %d", code)
	}
	recs, err := f.db.ListTokens(f.ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.HasTenant(contoso) && r.Kind == "tenant-admin" {
			if err := f.db.RevokeToken(f.ctx, r.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code, _ := u.get("/t/contoso/"); code != http.StatusSeeOther {
		t.Errorf("status page after the token was revoked: %d, want a redirect to sign in", code)
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	f.clock.Advance(console.DefaultSessionTTL + time.Second)
	if code, _ := u.get("/t/contoso/"); code != http.StatusSeeOther {
		t.Errorf("status page after the session's TTL: %d, want a redirect to sign in", code)
	}
}

func TestGeneratedCertificateDownloads(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	if code, _ := u.get("/t/contoso/certificate/pem"); code != http.StatusNotFound {
		t.Errorf("download before generating: %d, want 404", code)
	}
	res, _ := u.post("/t/contoso/certificate", url.Values{"csrf": {u.csrf("/t/contoso/setup")}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("generate: %d", res.StatusCode)
	}
	code, pem := u.get("/t/contoso/certificate/pem")
	if code != http.StatusOK || !strings.HasPrefix(pem, "-----BEGIN CERTIFICATE-----") || strings.Contains(pem, "PRIVATE KEY") {
		t.Errorf("PEM download: %d, %.40q; want a certificate and no private key", code, pem)
	}
	code, cer := u.get("/t/contoso/certificate/cer")
	if code != http.StatusOK || len(cer) < 100 || cer[0] != 0x30 {
		t.Errorf("CER download: %d, %d bytes; want DER", code, len(cer))
	}
	if code, _ := u.get("/t/contoso/certificate/txt"); code != http.StatusNotFound {
		t.Errorf("unknown format: %d, want 404", code)
	}
	_, body := u.get("/t/contoso/setup")
	mustContain(t, "setup page", body, `id="download-pem"`, "Certificate ready")
}

func TestLifecycleRefusalsShowTheirText(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	csrf := u.csrf("/t/contoso/setup")
	res, _ := u.post("/t/contoso/configure", url.Values{"csrf": {csrf}, "provider": {"azure-key-vault"}, "key_id": {"not a url"},
		"directory_id": {directory}, "credential": {"client-secret"}, "client_id": {f.app.ClientID}, "secret": {f.secret}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("configure: %d", res.StatusCode)
	}
	_, body := u.get("/t/contoso/setup")
	mustContain(t, "setup page after a bad key id", body, `class="flash bad"`, "key_id")
	if strings.Contains(body, f.secret) {
		t.Error("the setup page shows the client secret")
	}
	// Disable is refused by the lifecycle's rules in state none.
	res, _ = u.post("/t/contoso/disable", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %d", res.StatusCode)
	}
	_, body = u.get("/t/contoso/")
	mustContain(t, "status page after a refused disable", body, "there is nothing to disable")
}

func TestJobJSONOfUnknownJob(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	code, body := u.get("/t/contoso/jobs/job_000")
	if code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown job: %d %s, want 404 with an error", code, body)
	}
}

func TestAuditFilterRejectsBadDates(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	code, body := u.get("/t/contoso/audit?since=yesterday")
	if code != http.StatusBadRequest || !strings.Contains(body, "is not a date") {
		t.Errorf("bad since: %d, want 400 saying what is wrong", code)
	}
	if code, _ := u.get("/t/contoso/audit/export?until=2024-13-40"); code != http.StatusBadRequest {
		t.Errorf("export with a bad until: %d, want 400", code)
	}
}

// Behind a proxy that ends TLS, SecureCookies marks the cookies Secure on
// the plain-HTTP requests the proxy forwards.
func TestSecureCookiesBehindProxy(t *testing.T) {
	f := newFixture(t, false)
	ui, err := console.New(console.Config{Lifecycle: f.lc, Tokens: f.db, Audit: audit.New(f.db, nil), SecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(res.Cookies()) == 0 {
		t.Fatal("the sign-in page set no cookie")
	}
	for _, c := range res.Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s is not Secure with SecureCookies set", c.Name)
		}
	}
}
