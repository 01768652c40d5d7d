package entra

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a service with one tenant, one app with a secret and a
// certificate.
type fixture struct {
	s      *Service
	clk    *testClock
	tenant Tenant
	app    App
	secret Secret
	cert   *x509.Certificate
	key    *rsa.PrivateKey
}

// testKey is generated once: RSA key generation is slow under -race.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newFixture(t testing.TB) *fixture {
	t.Helper()
	clk := &testClock{t: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
	s, err := New(Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: s, clk: clk, key: testKey()}
	if f.tenant, err = s.CreateTenant(Tenant{Name: "t", Domains: []string{"t.onmicrosoft.com"}}); err != nil {
		t.Fatal(err)
	}
	if f.app, err = s.CreateApp(App{TenantID: f.tenant.ID}); err != nil {
		t.Fatal(err)
	}
	if f.secret, err = s.AddSecret(f.app.ClientID, Secret{Value: "right-secret"}); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: clk.t.Add(-time.Hour), NotAfter: clk.t.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &f.key.PublicKey, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if f.cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddCertificate(f.app.ClientID, der); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) tokenURL() string {
	return "https://login.microsoftonline.com/" + f.tenant.ID + "/oauth2/v2.0/token"
}

// assertion signs a client assertion as MSAL does (PS256, x5t#S256),
// with changes applied to the claims.
func (f *fixture) assertion(t testing.TB, alg string, change func(map[string]any)) string {
	t.Helper()
	sum := sha256.Sum256(f.cert.Raw)
	h, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT", "x5t#S256": base64.StdEncoding.EncodeToString(sum[:])})
	now := f.clk.Now().Unix()
	claims := map[string]any{"aud": f.tokenURL(), "iss": f.app.ClientID, "sub": f.app.ClientID, "jti": NewGUID(), "nbf": now, "exp": now + 600}
	if change != nil {
		change(claims)
	}
	c, _ := json.Marshal(claims)
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	d := sha256.Sum256([]byte(signed))
	var sig []byte
	var err error
	if alg == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, f.key, crypto.SHA256, d[:], nil)
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, f.key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// post sends a token request and returns the status and decoded body.
func (f *fixture) post(t testing.TB, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://login.microsoftonline.com"+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	rec := httptest.NewRecorder()
	f.s.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not JSON: %q", rec.Body.String())
	}
	return rec.Code, m
}

func secretForm(clientID, secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {"https://vault.azure.net/.default openid offline_access profile"}}
}

func (f *fixture) assertionForm(a string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {f.app.ClientID}, "client_assertion": {a},
		"client_assertion_type": {assertionType}, "scope": {"https://vault.azure.net/.default"}}
}

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t)
	v2 := "/" + f.tenant.ID + "/oauth2/v2.0/token"
	with := func(v url.Values, k, val string) url.Values {
		c := url.Values{}
		for kk, vv := range v {
			c[kk] = vv
		}
		if val == "" {
			c.Del(k)
		} else {
			c.Set(k, val)
		}
		return c
	}
	good := secretForm(f.app.ClientID, f.secret.Value)
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		status int
		code   int
	}{
		{"no grant_type", v2, with(good, "grant_type", ""), 400, 900144},
		{"password grant", v2, with(good, "grant_type", "password"), 400, 70003},
		{"no client_id", v2, with(good, "client_id", ""), 400, 900144},
		{"no scope", v2, with(good, "scope", ""), 400, 900144},
		{"scope without /.default", v2, with(good, "scope", "https://vault.azure.net/keys.read"), 400, 1002012},
		{"two resources", v2, with(good, "scope", "https://vault.azure.net/.default https://graph.microsoft.com/.default"), 400, 1002012},
		{"unknown resource", v2, with(good, "scope", "https://nothing.example/.default"), 400, 500011},
		{"no credential", v2, with(good, "client_secret", ""), 401, 7000218},
		{"wrong secret", v2, with(good, "client_secret", "wrong"), 401, 7000215},
		{"unknown tenant", "/" + NewGUID() + "/oauth2/v2.0/token", good, 400, 90002},
		{"common tenant", "/common/oauth2/v2.0/token", good, 400, 700016},
		{"unknown client", v2, with(good, "client_id", NewGUID()), 400, 700016},
		{"v1 without resource", "/" + f.tenant.ID + "/oauth2/token", good, 400, 900144},
		{"bad assertion type", v2, with(f.assertionForm("a.b.c"), "client_assertion_type", "jwt"), 400, 50027},
		{"assertion not a JWT", v2, f.assertionForm("not-a-jwt"), 401, 700027},
		{"assertion bad base64", v2, f.assertionForm("a.b.c"), 401, 700027},
		{"assertion alg none", v2, f.assertionForm(strings.Join(strings.Split(f.assertion(t, "PS256", nil), ".")[:2], ".") + "."), 401, 700027},
		{"assertion wrong audience", v2, f.assertionForm(f.assertion(t, "PS256", func(m map[string]any) { m["aud"] = "https://elsewhere.example/token" })), 401, 700027},
		{"assertion sub is not client", v2, f.assertionForm(f.assertion(t, "PS256", func(m map[string]any) { m["sub"] = NewGUID() })), 401, 700021},
		{"assertion expired", v2, f.assertionForm(f.assertion(t, "PS256", func(m map[string]any) { m["exp"] = f.clk.Now().Unix() - 1 })), 401, 700024},
		{"assertion from the future", v2, f.assertionForm(f.assertion(t, "PS256", func(m map[string]any) { m["nbf"] = f.clk.Now().Add(time.Hour).Unix() })), 401, 700024},
		{"assertion without exp", v2, f.assertionForm(f.assertion(t, "PS256", func(m map[string]any) { delete(m, "exp") })), 401, 700027},
		{"assertion of unknown issuer", v2, f.assertionForm(f.assertion(t, "PS256", func(m map[string]any) { m["iss"] = "https://issuer.example" })), 400, 70021},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := f.post(t, tc.path, tc.form)
			codes, _ := body["error_codes"].([]any)
			if st != tc.status || len(codes) != 1 || codes[0] != float64(tc.code) {
				t.Fatalf("status %d codes %v, want %d [%d]; %v", st, codes, tc.status, tc.code, body["error_description"])
			}
			desc, _ := body["error_description"].(string)
			if !strings.HasPrefix(desc, "AADSTS") || !strings.Contains(desc, "\r\nTrace ID: ") {
				t.Errorf("error_description %q is not Entra's shape", desc)
			}
			if strings.Contains(desc, f.secret.Value) {
				t.Error("the error contains the client secret")
			}
		})
	}
}

func TestTokenEndpointSuccess(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, path string
		form       url.Values
		acr        string
	}{
		{"secret v2", "/" + f.tenant.ID + "/oauth2/v2.0/token", secretForm(f.app.ClientID, f.secret.Value), "1"},
		{"secret v2 by domain", "/t.onmicrosoft.com/oauth2/v2.0/token", secretForm(f.app.ClientID, f.secret.Value), "1"},
		{"secret v1", "/" + f.tenant.ID + "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {f.app.ClientID},
			"client_secret": {f.secret.Value}, "resource": {"https://vault.azure.net/"}}, "1"},
		{"PS256 assertion", "/" + f.tenant.ID + "/oauth2/v2.0/token", f.assertionForm(f.assertion(t, "PS256", nil)), "2"},
		{"assertion naming the tenant id, sent to the domain", "/t.onmicrosoft.com/oauth2/v2.0/token", f.assertionForm(f.assertion(t, "PS256", nil)), "2"},
		{"RS256 assertion, v1 audience", "/" + f.tenant.ID + "/oauth2/v2.0/token", f.assertionForm(f.assertion(t, "RS256", func(m map[string]any) {
			m["aud"] = []string{"https://login.microsoftonline.com/" + f.tenant.ID + "/oauth2/token"}
		})), "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := f.post(t, tc.path, tc.form)
			if st != 200 || body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) {
				t.Fatalf("status %d body %v", st, body)
			}
			tok, _ := body["access_token"].(string)
			c, err := f.s.VerifyAccessToken(tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.Audience != "https://vault.azure.net" || c.TenantID != f.tenant.ID || c.ObjectID != f.app.ObjectID || c.AppID != f.app.ClientID {
				t.Errorf("claims %+v", c)
			}
			p, _ := parseJWT(tok)
			if p.str("appidacr") != tc.acr || p.str("ver") != "1.0" || p.header.Typ != "JWT" {
				t.Errorf("appidacr %q ver %q typ %q", p.str("appidacr"), p.str("ver"), p.header.Typ)
			}
		})
	}
}

func TestVerifyAccessTokenRejects(t *testing.T) {
	f := newFixture(t)
	_, body := f.post(t, "/"+f.tenant.ID+"/oauth2/v2.0/token", secretForm(f.app.ClientID, f.secret.Value))
	tok := body["access_token"].(string)
	parts := strings.Split(tok, ".")
	other, err := New(Options{Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.CreateTenant(f.tenant); err != nil {
		t.Fatal(err)
	}
	forged, err := signJWT(f.key, jwtHeader{Kid: f.s.keyID}, map[string]any{"nbf": 0, "exp": 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	altered := strings.Replace(string(claims), f.app.ObjectID, NewGUID(), 1)
	for _, tc := range []struct {
		name, token string
		want        error
		verifier    *Service
	}{
		{"empty", "", ErrTokenInvalid, f.s},
		{"garbage", "abc", ErrTokenInvalid, f.s},
		{"altered claims", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(altered)) + "." + parts[2], ErrTokenInvalid, f.s},
		{"forged with our kid", forged, ErrTokenInvalid, f.s},
		{"another emulator's token", tok, ErrTokenInvalid, other},
		{"oversized", strings.Repeat("a", maxJWT+1), ErrTokenInvalid, f.s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.verifier.VerifyAccessToken(tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.token != "" && len(tc.token) > 20 && strings.Contains(err.Error(), tc.token) {
				t.Error("the error contains the token")
			}
		})
	}
	f.clk.Advance(-time.Minute)
	if _, err := f.s.VerifyAccessToken(tok); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("before nbf: %v, want ErrTokenExpired", err)
	}
	f.clk.Advance(time.Minute + time.Hour)
	if _, err := f.s.VerifyAccessToken(tok); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("at exp: %v, want ErrTokenExpired", err)
	}
}

func TestManagedIdentityEndpointErrors(t *testing.T) {
	f := newFixture(t)
	if _, err := f.s.CreateManagedIdentity(ManagedIdentity{TenantID: f.tenant.ID, SystemAssigned: true}); err != nil {
		t.Fatal(err)
	}
	do := func(path string, hdr http.Header) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "http://169.254.169.254"+path, nil)
		req.Header = hdr
		rec := httptest.NewRecorder()
		f.s.ServeManagedIdentity(rec, req)
		return rec.Code, rec.Body.String()
	}
	meta := http.Header{"Metadata": {"true"}}
	asHdr := http.Header{"X-Identity-Header": {f.s.ManagedIdentityHeader()}}
	for _, tc := range []struct {
		name, path string
		hdr        http.Header
		status     int
		want       string
	}{
		{"imds ok", IMDSPath + "?api-version=2018-02-01&resource=https://vault.azure.net", meta, 200, `"expires_in"`},
		{"imds without Metadata", IMDSPath + "?api-version=2018-02-01&resource=https://vault.azure.net", http.Header{}, 400, "metadata header"},
		{"imds without api-version", IMDSPath + "?resource=https://vault.azure.net", meta, 400, "api-version"},
		{"imds without resource", IMDSPath + "?api-version=2018-02-01", meta, 400, "audience"},
		{"imds unknown resource", IMDSPath + "?api-version=2018-02-01&resource=https://x.example", meta, 400, "invalid_resource"},
		{"imds unknown identity", IMDSPath + "?api-version=2018-02-01&resource=https://vault.azure.net&client_id=" + NewGUID(), meta, 400, "Identity not found"},
		{"app service ok", AppServicePath + "?api-version=2019-08-01&resource=https://vault.azure.net", asHdr, 200, `"expires_on"`},
		{"app service without header", AppServicePath + "?api-version=2019-08-01&resource=https://vault.azure.net", http.Header{}, 401, "X-IDENTITY-HEADER"},
		{"app service without api-version", AppServicePath + "?resource=https://vault.azure.net", asHdr, 400, "api-version"},
		{"other path", "/nothing", meta, 404, IMDSPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := do(tc.path, tc.hdr)
			if st != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d body %s; want %d containing %q", st, body, tc.status, tc.want)
			}
		})
	}
}

func TestControlErrors(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"tenant bad GUID", func() error { _, err := f.s.CreateTenant(Tenant{ID: "x"}); return err }(), ErrInvalid},
		{"tenant duplicate", func() error { _, err := f.s.CreateTenant(Tenant{ID: f.tenant.ID}); return err }(), ErrExists},
		{"domain taken", func() error { _, err := f.s.CreateTenant(Tenant{Domains: []string{"T.onmicrosoft.com"}}); return err }(), ErrExists},
		{"app in unknown tenant", func() error { _, err := f.s.CreateApp(App{TenantID: NewGUID()}); return err }(), ErrNotFound},
		{"app duplicate", func() error {
			_, err := f.s.CreateApp(App{TenantID: f.tenant.ID, ClientID: f.app.ClientID})
			return err
		}(), ErrExists},
		{"secret of unknown app", func() error { _, err := f.s.AddSecret(NewGUID(), Secret{}); return err }(), ErrNotFound},
		{"certificate not DER", func() error { _, err := f.s.AddCertificate(f.app.ClientID, []byte("x")); return err }(), ErrInvalid},
		{"certificate duplicate", func() error { _, err := f.s.AddCertificate(f.app.ClientID, f.cert.Raw); return err }(), ErrExists},
		{"remove unknown certificate", f.s.RemoveCertificate(f.app.ClientID, "00"), ErrNotFound},
		{"consent unknown tenant", func() error { _, err := f.s.Consent(NewGUID(), f.app.ClientID); return err }(), ErrNotFound},
		{"revoke absent consent", f.s.RevokeConsent(f.tenant.ID, NewGUID()), ErrNotFound},
		{"identity without name", func() error { _, err := f.s.CreateManagedIdentity(ManagedIdentity{TenantID: f.tenant.ID}); return err }(), ErrInvalid},
		{"issuer not https", f.s.AddFederatedIssuer("http://x"), ErrInvalid},
		{"token of unknown issuer", func() error { _, err := f.s.FederatedToken("https://nope.example", "s", ""); return err }(), ErrNotFound},
		{"federated credential without subject", f.s.AddFederatedCredential(f.app.ClientID, FederatedCredential{Issuer: "https://x"}), ErrInvalid},
		{"delete unknown identity", f.s.DeleteManagedIdentity(NewGUID()), ErrNotFound},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	f := newFixture(t)
	if err := f.s.AddFederatedIssuer("https://issuer.example"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.AddFederatedCredential(f.app.ClientID, FederatedCredential{Issuer: "https://issuer.example", Subject: "s"}); err != nil {
		t.Fatal(err)
	}
	mi, err := f.s.CreateManagedIdentity(ManagedIdentity{TenantID: f.tenant.ID, Name: "u"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := f.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Restore(data); err != nil {
		t.Fatal(err)
	}
	again, err := n.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var a, b snapshot
	if json.Unmarshal(data, &a) != nil || json.Unmarshal(again, &b) != nil || len(a.Tenants) != len(b.Tenants) || len(a.Apps) != len(b.Apps) ||
		len(b.Apps[0].Certificates) != 1 || len(b.Apps[0].Federated) != 1 || len(b.Identities) != 1 || len(b.Issuers) != 1 {
		t.Fatalf("snapshot changed across restore:\n%s\n%s", data, again)
	}
	f2 := &fixture{s: n, clk: f.clk, tenant: f.tenant, app: f.app, cert: f.cert, key: f.key}
	if st, body := f2.post(t, "/"+f.tenant.ID+"/oauth2/v2.0/token", f2.assertionForm(f2.assertion(t, "PS256", nil))); st != 200 {
		t.Fatalf("certificate after restore: %d %v", st, body)
	}
	if st, _ := f2.post(t, "/"+f.tenant.ID+"/oauth2/v2.0/token", secretForm(f.app.ClientID, f.secret.Value)); st != 200 {
		t.Fatalf("secret after restore: %d", st)
	}
	if got := n.ManagedIdentities(); len(got) != 1 || got[0] != mi {
		t.Errorf("identities after restore %+v", got)
	}
	for _, bad := range []string{"{", `{"version":2}`, `{"version":1,"signingKey":"AAAA"}`} {
		if err := n.Restore([]byte(bad)); err == nil {
			t.Errorf("Restore(%s) succeeded", bad)
		}
	}
	if st, _ := f2.post(t, "/"+f.tenant.ID+"/oauth2/v2.0/token", secretForm(f.app.ClientID, f.secret.Value)); st != 200 {
		t.Fatalf("a failed Restore changed the state: %d", st)
	}
}

func TestOtherEndpoints(t *testing.T) {
	f := newFixture(t)
	get := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		f.s.ServeHTTP(rec, httptest.NewRequest(method, "https://login.microsoftonline.com"+path, nil))
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/" + f.tenant.ID + "/.well-known/openid-configuration", 200, `"issuer":"https://sts.windows.net/` + f.tenant.ID + `/"`},
		{"GET", "/common/v2.0/.well-known/openid-configuration", 200, `{tenantid}`},
		{"GET", "/common/discovery/keys", 200, `"kty":"RSA"`},
		{"GET", "/" + f.tenant.ID + "/oauth2/v2.0/token", 405, "AADSTS900561"},
		{"GET", "/" + f.tenant.ID + "/adminconsent?client_id=" + f.app.ClientID, 200, f.app.ObjectID},
		{"GET", "/" + f.tenant.ID + "/adminconsent?client_id=" + NewGUID(), 400, "AADSTS700016"},
		{"GET", "/nothing", 404, "not emulated"},
		{"GET", "/" + f.tenant.ID + "/saml2", 404, "not emulated"},
	} {
		st, body := get(tc.method, tc.path)
		if st != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %s; want %d containing %q", tc.method, tc.path, st, body, tc.status, tc.want)
		}
	}
	req := httptest.NewRequest("POST", "https://login.microsoftonline.com/"+f.tenant.ID+"/oauth2/v2.0/token", strings.NewReader(strings.Repeat("a=b&", maxFormBytes)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	f.s.ServeHTTP(rec, req)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "64 KiB") {
		t.Errorf("oversized form: %d %s", rec.Code, rec.Body.String())
	}
}

// FuzzTokenEndpoint feeds arbitrary form bodies (and client assertions)
// to the token endpoint: every answer must be JSON, 200 only with a token,
// otherwise an Entra error with an AADSTS code.
func FuzzTokenEndpoint(f *testing.F) {
	fx := newFixture(f)
	f.Add(secretForm(fx.app.ClientID, fx.secret.Value).Encode())
	f.Add(fx.assertionForm(fx.assertion(f, "PS256", nil)).Encode())
	f.Add(fx.assertionForm("eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOjF9.AAAA").Encode())
	f.Add("grant_type=client_credentials&client_id=%zz")
	f.Add("")
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "https://login.microsoftonline.com/"+fx.tenant.ID+"/oauth2/v2.0/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		fx.s.ServeHTTP(rec, req)
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("status %d, answer not JSON: %q", rec.Code, rec.Body.String())
		}
		switch {
		case rec.Code == 200:
			if _, err := fx.s.VerifyAccessToken(m["access_token"].(string)); err != nil {
				t.Fatalf("issued token does not verify: %v", err)
			}
		case rec.Code == 400 || rec.Code == 401:
			if d, _ := m["error_description"].(string); !strings.HasPrefix(d, "AADSTS") {
				t.Fatalf("error without AADSTS code: %v", m)
			}
		default:
			t.Fatalf("status %d: %v", rec.Code, m)
		}
	})
}

// FuzzParseJWT checks the JWT parser never panics and that what it accepts
// re-splits into the same signing input.
func FuzzParseJWT(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.assertion(f, "PS256", nil))
	f.Add("a.b.c")
	f.Add("e30.e30.")
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := parseJWT(raw)
		if err != nil {
			return
		}
		if !strings.HasPrefix(raw, p.signed+".") {
			t.Fatalf("signing input %q is not a prefix of %q", p.signed, raw)
		}
		_ = p.audiences()
		_, _ = p.num("exp")
	})
}
