package console_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/server"
)

// gatedLifecycle holds Test configuration after its first check until the
// test closes gate.
type gatedLifecycle struct {
	*lifecycle.Service
	gate chan struct{}
}

func (g *gatedLifecycle) TestWithProgress(ctx context.Context, actor audit.Actor, tenant string, progress func(lifecycle.Check)) (lifecycle.Report, error) {
	first := true
	return g.Service.TestWithProgress(ctx, actor, tenant, func(c lifecycle.Check) {
		progress(c)
		if first {
			first = false
			<-g.gate
		}
	})
}

// configure saves Contoso's settings with the app's client secret.
func (u *user) configure(t *testing.T) {
	t.Helper()
	res, _ := u.post("/t/contoso/configure", url.Values{"csrf": {u.csrf("/t/contoso/setup")}, "provider": {azure.Provider},
		"key_id": {keyID}, "directory_id": {directory}, "credential": {"client-secret"}, "client_id": {u.f.app.ClientID}, "secret": {u.f.secret}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("configure: %d", res.StatusCode)
	}
}

// TestTestStreams reads the Test configuration page as it arrives: the
// first check's row comes while the rest of the test is still held, and
// the result only after it.
func TestTestStreams(t *testing.T) {
	gate := make(chan struct{})
	f := newFixtureWith(t, false, func(s *lifecycle.Service) server.Lifecycle { return &gatedLifecycle{Service: s, gate: gate} })
	f.grantRole()
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	u.configure(t)

	res, err := u.c.PostForm(u.url("/t/contoso/test"), url.Values{"csrf": {u.csrf("/t/contoso/setup")}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("test: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(res.Body)
	var sofar strings.Builder
	for !strings.Contains(sofar.String(), `<th scope="row">key-uri</th>`) {
		line, err := br.ReadString('\n')
		sofar.WriteString(line)
		if err != nil {
			close(gate)
			t.Fatalf("the stream ended before the first check's row: %v\n%s", err, sofar.String())
		}
	}
	// The test is held after its first check: nothing later can be here.
	if s := sofar.String(); strings.Contains(s, "clock-skew") || strings.Contains(s, `id="test-result"`) {
		close(gate)
		t.Fatalf("the page before the gate opened holds later checks or the result:\n%s", s)
	}
	close(gate)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	body := sofar.String() + string(rest)
	mustContain(t, "streamed report", body, `<th scope="row">round-trip</th>`, `<th scope="row">clock-skew</th>`,
		`id="test-result">passed</span>`, `id="back-to-setup"`, "</html>")
	if strings.Contains(body, "data-stream") {
		t.Error("the stream markers were sent")
	}
	k, err := f.lc.Status(f.ctx, contoso)
	if err != nil || k.LastTest == nil || !k.LastTest.Passed() {
		t.Fatalf("stored report: %+v, %v", k.LastTest, err)
	}
	_, setup := u.get("/t/contoso/setup")
	mustContain(t, "setup after the test", setup, `id="test-result">passed`)
}

// TestTestRefusedRedirects: a test the rules refuse (no settings yet) goes
// back to the setup page with the lifecycle's reason, streaming nothing.
func TestTestRefusedRedirects(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	res, _ := u.post("/t/contoso/test", url.Values{"csrf": {u.csrf("/t/contoso/setup")}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasSuffix(res.Header.Get("Location"), "/setup#report") {
		t.Fatalf("refused test: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	_, body := u.get("/t/contoso/setup")
	mustContain(t, "setup after a refused test", body, `id="flash"`, "cannot test")
}

// bareLifecycle hides the service's optional methods.
type bareLifecycle struct{ server.Lifecycle }

// TestWithoutOptionalMethods: a Lifecycle without TestWithProgress gets
// the report when the test ends; one without ListVaultKeys gets a picker
// that says to type the identifier.
func TestWithoutOptionalMethods(t *testing.T) {
	f := newFixtureWith(t, false, func(s *lifecycle.Service) server.Lifecycle { return bareLifecycle{s} })
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	u.configure(t)
	res, _ := u.post("/t/contoso/test", url.Values{"csrf": {u.csrf("/t/contoso/setup")}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("test: %d, want a redirect to the report", res.StatusCode)
	}
	_, body := u.get("/t/contoso/setup")
	mustContain(t, "setup after the test", body, `id="test-result">failed`, "key-read")
	_, keys := u.get("/t/contoso/keys?vault=" + url.QueryEscape("https://"+vaultName+".vault.azure.net"))
	mustContain(t, "key picker", keys, `id="keys-error"`, "type the key identifier")
}

// TestKeysPage lists the vault with the saved credential, links each key
// and version back to the setup page, and is isolated per tenant.
func TestKeysPage(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	vault := url.QueryEscape("https://" + vaultName + ".vault.azure.net")

	_, body := u.get("/t/contoso/keys?vault=" + vault)
	mustContain(t, "keys before any settings", body, `id="keys-error"`, "save the key settings")
	u.configure(t)
	_, body = u.get("/t/contoso/keys?vault=" + vault)
	mustContain(t, "keys without a role", body, `id="keys-error"`, "access-denied")
	_, body = u.get("/t/contoso/keys?vault=" + url.QueryEscape("https://contoso.example.com"))
	mustContain(t, "keys of a malformed URL", body, `id="keys-error"`, "not a Key Vault")
	_, body = u.get("/t/contoso/keys")
	mustContain(t, "keys without a URL", body, `id="keys-error"`, "enter the vault")

	f.grantRole()
	v, err := f.emu.Key(vaultName, keyName, "")
	if err != nil {
		t.Fatal(err)
	}
	_, body = u.get("/t/contoso/keys?vault=" + url.QueryEscape(keyID)) // a key id names its vault
	mustContain(t, "keys", body, `id="vault-keys"`, v.Version, "RSA 3072-bit")
	// html/template escapes the query in lower case.
	mustContain(t, "key links", strings.ToLower(body),
		strings.ToLower(`href="/console/t/contoso/setup?key_id=`+url.QueryEscape(keyID)+`#key_id"`),
		strings.ToLower(`href="/console/t/contoso/setup?key_id=`+url.QueryEscape(keyID+"/"+v.Version)+`#key_id"`))
	_, setup := u.get("/t/contoso/setup?key_id=" + url.QueryEscape(keyID+"/"+v.Version))
	mustContain(t, "setup with a picked key", setup, `id="picked"`, `value="`+keyID+"/"+v.Version+`"`)

	other := f.newUser()
	other.signIn(f.tokens[fabrikam])
	if code, _ := other.get("/t/contoso/keys?vault=" + vault); code != http.StatusNotFound {
		t.Errorf("another tenant's key list: %d, want 404", code)
	}
	// Each listing that reached the connector is audited as a vault call.
	events, _, err := audit.New(f.db, nil).List(f.ctx, audit.Filter{Tenant: contoso, ActionPrefix: "vault.listkeys"}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Errorf("%d vault.listkeys events, want 3 (denied, malformed, listed)", len(events))
	}
}
