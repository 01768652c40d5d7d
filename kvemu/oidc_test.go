package kvemu_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/openbyok/byok/kvemu"
)

// TestAuthorizationCodeFlow: the test sign-in form lists the tenant's
// users; a chosen user's code is redeemed once, with the app's secret and
// the PKCE verifier, for an ID token; a second redemption, a wrong
// verifier, a wrong secret and an unregistered redirect URI are refused
// as Entra refuses them.
func TestAuthorizationCodeFlow(t *testing.T) {
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	tn, _ := emu.CreateTenant(kvemu.Tenant{Name: "Contoso"})
	app, err := emu.CreateApp(kvemu.App{TenantID: tn.ID, DisplayName: "console", RedirectURIs: []string{"http://127.0.0.1:1/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := emu.AddSecret(app.ClientID, kvemu.Secret{})
	u, err := emu.CreateUser(kvemu.User{TenantID: tn.ID, Name: "Ada", UserPrincipalName: "ada@contoso.com", Groups: []string{"g1"}})
	if err != nil {
		t.Fatal(err)
	}
	c := emu.HTTPClient()
	c = &http.Client{Transport: c.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authz := "https://login.microsoftonline.com/" + tn.ID + "/oauth2/v2.0/authorize"
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {app.ClientID}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"st"}, "nonce": {"no"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}

	read := func(res *http.Response, err error) (*http.Response, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := read(c.Get(authz + "?" + q.Encode()))
	if res.StatusCode != 200 || !strings.Contains(body, "ada@contoso.com") {
		t.Fatalf("sign-in form: %d %s", res.StatusCode, body)
	}
	bad := url.Values{}
	for k, v := range q {
		bad[k] = v
	}
	bad.Set("redirect_uri", "https://evil.example/cb")
	if res, body := read(c.Get(authz + "?" + bad.Encode())); res.StatusCode != 400 || !strings.Contains(body, "AADSTS50011") {
		t.Errorf("unregistered redirect URI: %d %s", res.StatusCode, body)
	}

	code := func() string {
		t.Helper()
		f := url.Values{"user": {u.ObjectID}}
		for k, v := range q {
			f[k] = v
		}
		res, _ := read(c.PostForm(authz, f))
		loc, err := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || err != nil || loc.Query().Get("state") != "st" || loc.Query().Get("code") == "" {
			t.Fatalf("sign-in answered %d, Location %q", res.StatusCode, res.Header.Get("Location"))
		}
		return loc.Query().Get("code")
	}
	tokenURL := "https://login.microsoftonline.com/" + tn.ID + "/oauth2/v2.0/token"
	redeem := func(code, verifier, secret string) (int, map[string]any) {
		t.Helper()
		res, body := read(c.PostForm(tokenURL, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {app.ClientID},
			"client_secret": {secret}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "code_verifier": {verifier}}))
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		if strings.Contains(body, code) || strings.Contains(body, secret) {
			t.Errorf("the token endpoint's answer quotes the code or the secret")
		}
		return res.StatusCode, m
	}
	wantRefused := func(what string, status int, m map[string]any, aadsts string) {
		t.Helper()
		if status != 400 && status != 401 || !strings.Contains(m["error_description"].(string), aadsts) {
			t.Errorf("%s: %d %v, want %s", what, status, m["error_description"], aadsts)
		}
	}

	c1 := code()
	st, m := redeem(c1, "w"+verifier[1:], sec.Value)
	wantRefused("wrong PKCE verifier", st, m, "AADSTS501481")
	st, m = redeem(c1, verifier, "wrong")
	wantRefused("wrong secret", st, m, "AADSTS7000215")
	st, m = redeem(c1, verifier, sec.Value)
	if st != 200 || m["id_token"] == nil {
		t.Fatalf("redeem: %d %v", st, m)
	}
	parts := strings.Split(m["id_token"].(string), ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	for k, want := range map[string]any{"aud": app.ClientID, "tid": tn.ID, "oid": u.ObjectID, "nonce": "no",
		"iss": "https://login.microsoftonline.com/" + tn.ID + "/v2.0", "preferred_username": "ada@contoso.com"} {
		if claims[k] != want {
			t.Errorf("ID token %s = %v, want %v", k, claims[k], want)
		}
	}
	st, m = redeem(c1, verifier, sec.Value)
	wantRefused("replayed code", st, m, "AADSTS54005")

	// Faults.
	for fault, check := range map[kvemu.SignInFault]func(map[string]any) bool{
		kvemu.FaultWrongAudience:  func(c map[string]any) bool { return c["aud"] != app.ClientID },
		kvemu.FaultWrongNonce:     func(c map[string]any) bool { return c["nonce"] != "no" },
		kvemu.FaultExpiredIDToken: func(c map[string]any) bool { return c["exp"].(float64) < c["iat"].(float64)+7200 },
	} {
		if err := emu.SetSignInFault("ada@contoso.com", fault); err != nil {
			t.Fatal(err)
		}
		st, m := redeem(code(), verifier, sec.Value)
		if st != 200 {
			t.Fatalf("%s: %d", fault, st)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(m["id_token"].(string), ".")[1])
		var claims map[string]any
		json.Unmarshal(payload, &claims)
		if !check(claims) {
			t.Errorf("fault %s: claims %v", fault, claims)
		}
	}
}
