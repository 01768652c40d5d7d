package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/internal/fakeclock"
	"github.com/openbyok/byok/lifecycle/azure"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kms/local"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/console"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store/sqlite"
)

// The customer of the tests: Contoso, with a directory, an app, a vault and
// a key in the emulator. Fabrikam is the other tenant.
const (
	contoso   = "contoso"
	fabrikam  = "fabrikam"
	directory = "7d5c2f3e-8a41-4b6e-9c1d-2f0a3b4c5d6e"
	vaultName = "contoso-byok"
	keyName   = "cmk"
	keyID     = "https://" + vaultName + ".vault.azure.net/keys/" + keyName
)

var scopes = []string{"chat", "files", "analytics"}

// fixture is the real service wired as cmd/byok's openApp wires it
// (lifecycle over SQLite, the Azure connector over kvemu, the audit log,
// tokens), with the API at / and the console at /console/.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	clock  *fakeclock.Clock
	emu    *kvemu.Emulator
	db     *sqlite.DB
	lc     *lifecycle.Service
	srv    *httptest.Server
	app    kvemu.App
	secret string
	tokens map[string]string // "contoso", "fabrikam", "operator"
	// conn is the lifecycle's connector; a test may give it the
	// platform's identities before its first request.
	conn *azure.Connector
}

func newFixture(t *testing.T, tlsServer bool) *fixture {
	t.Helper()
	return newFixtureWith(t, tlsServer, nil)
}

// newFixtureWith is newFixture with the console's Lifecycle wrapped by
// wrap (nil: the service itself).
func newFixtureWith(t *testing.T, tlsServer bool, wrap func(*lifecycle.Service) server.Lifecycle) *fixture {
	t.Helper()
	return newFixtureConnectors(t, tlsServer, wrap, nil)
}

// newFixtureConnectors is newFixtureWith with the connectors more returns
// (called once, before the lifecycle is made) beside the Azure one.
func newFixtureConnectors(t *testing.T, tlsServer bool, wrap func(*lifecycle.Service) server.Lifecycle, more func(*fixture) []lifecycle.Connector) *fixture {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	f := &fixture{t: t, ctx: ctx, clock: fakeclock.New(time.Now().UTC().Truncate(time.Second)), tokens: map[string]string{}}
	var err error
	if f.emu, err = kvemu.Start(kvemu.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.emu.Close() })
	if f.db, err = sqlite.Open(ctx, filepath.Join(dir, "byok.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	prk, err := local.Open(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	connector := azure.NewConnector(azurekv.PlatformApp{})
	connector.Transport = f.emu.HTTPClient()
	f.conn = connector
	log := audit.New(f.db, nil)
	connectors := []lifecycle.Connector{connector}
	if more != nil {
		connectors = append(connectors, more(f)...)
	}
	f.lc, err = lifecycle.New(lifecycle.Config{Store: f.db, PlatformKMS: prk, PlatformKeyID: prk.KeyID(),
		Connectors: connectors, Audit: log, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.New(server.Config{Lifecycle: f.lc, Store: f.db, Audit: log, PlatformKMS: prk, PlatformKeyID: prk.KeyID(), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var lc server.Lifecycle = f.lc
	if wrap != nil {
		lc = wrap(f.lc)
	}
	// Sessions in the store, as byok serve has them; the journeys move the
	// fake clock by hours between pages, so the idle timeout is the
	// lifetime (TestSessionsAcrossReplicas tests the default).
	ui, err := console.New(console.Config{Lifecycle: lc, Tokens: f.db, Audit: log, PlatformAppID: "11111111-2222-3333-4444-555555555555", Now: f.clock.Now,
		Sessions: f.db, SessionIdleTimeout: console.DefaultSessionTTL})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("/console/", ui)
	if tlsServer {
		f.srv = httptest.NewTLSServer(mux)
	} else {
		f.srv = httptest.NewServer(mux)
	}
	t.Cleanup(f.srv.Close)

	operator := audit.Actor{Kind: audit.Operator, ID: "test"}
	for _, tenant := range []string{contoso, fabrikam} {
		if err := f.lc.CreateTenant(ctx, operator, tenant, byok.Grace, scopes); err != nil {
			t.Fatal(err)
		}
		text, _, err := server.IssueToken(ctx, f.db, token.TenantAdmin, []string{tenant}, tenant+" admin", 0)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[tenant] = text
	}
	if f.tokens["operator"], _, err = server.IssueToken(ctx, f.db, token.Operator, nil, "operator", 0); err != nil {
		t.Fatal(err)
	}
	if f.tokens["service"], _, err = server.IssueToken(ctx, f.db, token.Service, []string{contoso}, "service", 0); err != nil {
		t.Fatal(err)
	}

	// Contoso's directory, app, vault and key; no role yet.
	if _, err := f.emu.CreateTenant(kvemu.Tenant{ID: directory, Name: "Contoso"}); err != nil {
		t.Fatal(err)
	}
	if f.app, err = f.emu.CreateApp(kvemu.App{TenantID: directory, DisplayName: "byok at SaaS Inc."}); err != nil {
		t.Fatal(err)
	}
	s, err := f.emu.AddSecret(f.app.ClientID, kvemu.Secret{ExpiresAt: time.Now().AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	f.secret = s.Value
	if err := f.emu.CreateVault(kvemu.VaultConfig{Name: vaultName, TenantID: directory, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.emu.CreateKey(vaultName, keyName, kvemu.KeySpec{Type: "RSA", Size: 3072}); err != nil {
		t.Fatal(err)
	}
	return f
}

// grantRole gives Contoso's app the role byok needs on the vault and
// returns the assignment's id.
func (f *fixture) grantRole() string {
	f.t.Helper()
	id, err := f.emu.AssignRole(vaultName, kvemu.RoleAssignment{PrincipalID: f.app.ObjectID, Role: "Key Vault Crypto Service Encryption User"})
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// tick runs one lifecycle pass and fails the test on its error.
func (f *fixture) tick() {
	f.t.Helper()
	if err := f.lc.Tick(f.ctx); err != nil {
		f.t.Fatalf("Tick: %v", err)
	}
}

// user is a browser-less client of the console with its own cookies.
type user struct {
	f *fixture
	c *http.Client
}

func (f *fixture) newUser() *user {
	jar, _ := cookiejar.New(nil)
	c := f.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &user{f: f, c: c}
}

func (u *user) url(path string) string { return u.f.srv.URL + "/console" + path }

// get fetches a console path and returns the status and body.
func (u *user) get(path string) (int, string) {
	u.f.t.Helper()
	res, err := u.c.Get(u.url(path))
	if err != nil {
		u.f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// post submits a form to a console path and returns the response, its
// body read.
func (u *user) post(path string, form url.Values) (*http.Response, string) {
	u.f.t.Helper()
	res, err := u.c.PostForm(u.url(path), form)
	if err != nil {
		u.f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the form on the page at path.
func (u *user) csrf(path string) string {
	u.f.t.Helper()
	_, body := u.get(path)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		u.f.t.Fatalf("no CSRF field on %s", path)
	}
	return m[1]
}

// signIn signs in with the named token and returns the response of the
// sign-in POST.
func (u *user) signIn(text string) *http.Response {
	u.f.t.Helper()
	res, _ := u.post("/signin", url.Values{"csrf": {u.csrf("/signin")}, "token": {text}})
	return res
}

// mustContain fails the test unless body contains every one of want.
func mustContain(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s does not contain %q", what, w)
		}
	}
}
