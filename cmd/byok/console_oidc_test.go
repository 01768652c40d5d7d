package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

// TestConsoleAcrossReplicas: two byok serve replicas over one PostgreSQL,
// configured from console.oidc; a session signed in on one serves the
// other, and signing out on the second ends it on the first. Without its
// secret variable, console.oidc refuses to start, naming the variable.
func TestConsoleAcrossReplicas(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dir, _ := emu.CreateTenant(kvemu.Tenant{})
	ui, _ := emu.CreateApp(kvemu.App{TenantID: dir.ID, RedirectURIs: []string{"https://byok.example.com/console/oidc/callback"}})
	sec, _ := emu.AddSecret(ui.ClientID, kvemu.Secret{})

	dsn := pgtest.NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "platform.key")
	cfg := config.Default()
	cfg.Store.Postgres = dsn
	cfg.PlatformKey.File = keyFile
	cfg.Console.OIDC = &config.ConsoleOIDC{Issuer: "https://login.microsoftonline.com/" + dir.ID + "/v2.0", ClientID: ui.ClientID,
		ClientSecretEnv: "BYOK_TEST_OIDC_SECRET", RedirectURL: "https://byok.example.com/console/oidc/callback",
		Operators: []config.OIDCRule{{Require: []config.OIDCClaim{{Claim: "tid", Value: dir.ID}}}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "BYOK_TEST_OIDC_SECRET" {
			return sec.Value
		}
		return ""
	}
	_, err = openApp(ctx, cfg, appOptions{azureTransport: emu.HTTPClient(), getenv: func(string) string { return "" }}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "BYOK_TEST_OIDC_SECRET") || !strings.Contains(err.Error(), "console.oidc.client_secret_env") {
		t.Fatalf("console.oidc without its secret variable: %v", err)
	}
	var fronts [2]*httptest.Server
	var apps [2]*app
	for i := range fronts {
		a, err := openApp(ctx, cfg, appOptions{azureTransport: emu.HTTPClient(), getenv: getenv, replicaID: "r" + string(rune('0'+i))}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		apps[i] = a
		t.Cleanup(func() { a.close() })
		fronts[i] = httptest.NewServer(a.handler)
		t.Cleanup(fronts[i].Close)
	}
	// The console offers the configured sign-in.
	res, err := http.Get(fronts[0].URL + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `id="signin-oidc"`) {
		t.Error("the sign-in page of a replica with console.oidc offers no OpenID Connect sign-in")
	}

	// Token sign-in on replica 0 (the operator token is in the shared
	// store), pages on replica 1, sign-out on 1, refused on 0.
	op, _, err := server.IssueToken(ctx, apps[0].db, token.Operator, nil, "replicas", 0)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil) // cookies ignore ports: both replicas get them, as behind one host
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(i int, path string) (int, string) {
		res, err := c.Get(fronts[i].URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	_, page := get(0, "/console/signin")
	res, err = c.PostForm(fronts[0].URL+"/console/signin", url.Values{"csrf": {csrf.FindStringSubmatch(page)[1]}, "token": {op}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("token sign-in on replica 0: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
	code, page := get(1, "/console/operator")
	if code != http.StatusOK {
		t.Fatalf("replica 1 refused replica 0's session: %d", code)
	}
	front0, _ := url.Parse(fronts[0].URL + "/console/")
	stolen := jar.Cookies(front0)
	res, err = c.PostForm(fronts[1].URL+"/console/signout", url.Values{"csrf": {csrf.FindStringSubmatch(page)[1]}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on replica 1: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
	jar.SetCookies(front0, stolen) // the cookie kept, as a copied one would be
	if code, _ := get(0, "/console/operator"); code != http.StatusSeeOther {
		t.Errorf("replica 0 after sign-out on replica 1: %d, want a redirect to sign-in", code)
	}
}

// TestConsoleSignInAssertionFile: with client_assertion_file the console
// authenticates with the token file's content, read at each use (the
// kubelet rotates it); a missing file stops the start, naming the field.
func TestConsoleSignInAssertionFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	c := config.Console{OIDC: &config.ConsoleOIDC{Issuer: "https://login.microsoftonline.com/organizations/v2.0", ClientID: "c",
		ClientAssertionFile: file, RedirectURL: "https://byok.example.com/console/oidc/callback"}}
	if _, _, err := consoleSignIn(c, nil, func(string) string { return "" }, nil); err == nil || !strings.Contains(err.Error(), "console.oidc.client_assertion_file") {
		t.Fatalf("a missing token file: %v", err)
	}
	if err := os.WriteFile(file, []byte("first.token.jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, o, err := consoleSignIn(c, nil, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.ClientSecret != "" || o.ClientAssertion == nil {
		t.Fatalf("OIDC with a token file: secret set %v, assertion set %v", o.ClientSecret != "", o.ClientAssertion != nil)
	}
	for _, want := range []string{"first.token.jwt", "second.token.jwt"} {
		if err := os.WriteFile(file, []byte(want+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := o.ClientAssertion(t.Context()); err != nil || got != want {
			t.Errorf("assertion %q, %v; want %q", got, err, want)
		}
	}
}
