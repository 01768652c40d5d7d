package console_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ssoBrowser starts chromium as browser does, with kvemu's Entra reachable
// under its real name: login.microsoftonline.com resolves to kvemu's
// listener, and kvemu's certificate (only that one, by its public key) is
// accepted. Every redirect of the sign-in is the browser's own.
func ssoBrowser(t *testing.T, s *sso) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found on PATH; install chromium: apt-get install -y chromium")
	}
	conn, err := tls.Dial("tcp", s.emu.Addr(), &tls.Config{RootCAs: s.emu.CAPool(), ServerName: "login.microsoftonline.com"})
	if err != nil {
		t.Fatalf("reading kvemu's certificate: %v", err)
	}
	spki := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	conn.Close()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP login.microsoftonline.com "+s.emu.Addr()),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	return ctx
}

// ssoPage drives the console behind the sso fixture's front URL.
type ssoPage struct {
	*page
	s *sso

	mu        sync.Mutex
	callbacks []string          // callback URLs the browser requested
	flows     map[string]string // callback URL -> the flow cookie it carried
	ids       map[network.RequestID]string
}

func newSSOPage(t *testing.T, s *sso) *ssoPage {
	p := &ssoPage{page: &page{t: t, ctx: ssoBrowser(t, s), f: s.fixture}, s: s,
		flows: map[string]string{}, ids: map[network.RequestID]string{}}
	// Record the callback requests and the flow cookie each carried, for
	// the replay.
	err := chromedp.Listen(p.ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if strings.Contains(e.Request.URL, "/console/oidc/callback?") {
				p.callbacks = append(p.callbacks, e.Request.URL)
				p.ids[e.RequestID] = e.Request.URL
			}
		case *network.EventRequestWillBeSentExtraInfo:
			for _, c := range e.AssociatedCookies {
				if c.Cookie != nil && c.Cookie.Name == "byok_console_oidc" {
					if u, ok := p.ids[e.RequestID]; ok {
						p.flows[u] = c.Cookie.Value
					} else {
						p.flows[string(e.RequestID)] = c.Cookie.Value
					}
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// flowOf returns the flow cookie the callback request u carried.
func (p *ssoPage) flowOf(u string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.flows[u]; ok {
		return v
	}
	for id, url := range p.ids { // extra info may come before the request
		if url == u {
			return p.flows[string(id)]
		}
	}
	return ""
}

func (p *ssoPage) lastCallback() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.callbacks) == 0 {
		p.t.Fatal("the browser requested no callback")
	}
	return p.callbacks[len(p.callbacks)-1]
}

// open navigates to a console path of the front URL.
func (p *ssoPage) open(path string) {
	p.t.Helper()
	p.do("open "+path, chromedp.Navigate(p.s.front.URL+"/console"+path), chromedp.WaitVisible(chromedp.CSS("main")))
}

// signIn clicks the sign-in button, picks upn on kvemu's form and waits
// for wait on the page the browser lands on.
func (p *ssoPage) signIn(upn, wait string) {
	p.t.Helper()
	p.open("/signin")
	p.click("#signin-oidc", "form button[name=user]")
	p.click(`button[value="`+p.s.users[upn].ObjectID+`"]`, wait)
}

// refusal returns the reason and text of the refusal page shown.
func (p *ssoPage) refusal() (string, string) {
	p.t.Helper()
	reason, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("signin-refused").dataset.reason`))
	if err != nil {
		p.t.Fatalf("reading the refusal: %v", err)
	}
	return reason, p.text("#signin-refused")
}

// TestBrowserOIDC signs in through OpenID Connect in chromium against
// kvemu's Entra with the real redirects: the operator (by group) and
// Contoso's admin (by the directory its key settings name, with an app
// role) on one replica, acting on the other; then the refusals, each its
// own page and no session: an ID token for another audience, an expired
// one, one with another nonce, a replayed code (the same browser, its
// flow cookie put back: kvemu refuses the code, AADSTS54005), and a
// callback whose state is not the flow's.
func TestBrowserOIDC(t *testing.T) {
	s := newSSO(t, "")
	p := newSSOPage(t, s)

	p.open("/signin")
	mustContain(t, "sign-in page", p.text("#signin-oidc"), "Sign in with Microsoft Entra ID")
	p.shot("signin-oidc")
	p.click("#signin-oidc", "form button[name=user]")
	mustContain(t, "kvemu's sign-in form", p.html(), "olga@saas.example", "carla@contoso.com")
	p.shot("kvemu-entra-signin")
	p.click(`button[value="`+s.users["olga@saas.example"].ObjectID+`"]`, "#tenants")
	mustContain(t, "operator page", p.text("#tenants"), "contoso", "fabrikam")
	mustContain(t, "header", p.html(), "Olga Operator (olga@saas.example), operator")

	// Another browser session for Contoso's admin: a fresh profile.
	p2 := newSSOPage(t, s)
	s.to.Store(0)
	p2.signIn("carla@contoso.com", "#state")
	s.to.Store(1) // the other replica serves the session
	p2.open("/t/contoso/setup")
	mustContain(t, "setup page on replica 1", p2.html(), "Carla Contoso (carla@contoso.com), tenant admin of contoso", directory)
	p2.click(".signout button", "#signin-oidc")
	s.to.Store(0)
	p2.open("/t/contoso/")
	if loc, _ := chromedp.Run(p2.ctx, chromedp.Location()); !strings.HasSuffix(loc, "/console/signin") {
		t.Errorf("after signing out on replica 1, replica 0 shows %s, want the sign-in page", loc)
	}

	// Refusals.
	for _, tc := range []struct{ upn, reason, text string }{
		{"aud@saas.example", "audience", "another application"},
		{"exp@saas.example", "expired", "expired"},
		{"nonce@saas.example", "nonce", "nonce differs"},
	} {
		q := newSSOPage(t, s)
		q.signIn(tc.upn, "#signin-refused")
		reason, text := q.refusal()
		if reason != tc.reason || !strings.Contains(text, tc.text) {
			t.Errorf("%s: refused for %q (%s), want %s", tc.upn, reason, text, tc.reason)
		}
		q.shot("oidc-refused-" + tc.reason)
		q.open("/operator")
		if loc, _ := chromedp.Run(q.ctx, chromedp.Location()); !strings.HasSuffix(loc, "/console/signin") {
			t.Errorf("%s: refused, yet /operator shows %s", tc.upn, loc)
		}
	}

	// Replayed code: sign in, then the same callback again with the flow
	// cookie the browser sent the first time.
	q := newSSOPage(t, s)
	q.signIn("olga@saas.example", "#tenants")
	cb := q.lastCallback()
	flow := q.flowOf(cb)
	if flow == "" {
		t.Fatal("the callback request carried no flow cookie")
	}
	if _, err := chromedp.Run(q.ctx, chromedp.Evaluate[string](`document.cookie = "byok_console_oidc=`+flow+`; path=/console/oidc/"`)); err != nil {
		t.Fatal(err)
	}
	q.do("replay the callback", chromedp.Navigate(cb), chromedp.WaitVisible(chromedp.CSS("#signin-refused")))
	if reason, text := q.refusal(); reason != "exchange" || !strings.Contains(text, "AADSTS54005") {
		t.Errorf("replayed code: refused for %q (%s), want exchange with AADSTS54005", reason, text)
	}
	q.shot("oidc-refused-replayed-code")

	// State mismatch: the browser started a flow; the answer it gets
	// names another state.
	q.open("/signin")
	q.click("#signin-oidc", "form button[name=user]")
	q.do("a callback with another state", chromedp.Navigate(s.front.URL+"/console/oidc/callback?code=x&state=forged"),
		chromedp.WaitVisible(chromedp.CSS("#signin-refused")))
	if reason, _ := q.refusal(); reason != "state" {
		t.Errorf("state mismatch: refused for %q, want state", reason)
	}
}
