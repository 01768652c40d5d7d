package console_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	stdpng "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotDir is where the browser tests save their screenshots: the
// directory $BYOK_SCREENSHOTS names, or a temporary one. The README's
// screenshots are made with
//
//	BYOK_SCREENSHOTS=$PWD/docs/screenshots go test -run TestBrowserJourney ./server/console
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("BYOK_SCREENSHOTS"); dir != "" {
		return dir
	}
	return t.TempDir()
}

// browser starts Debian's chromium, headless, with a fresh profile, and
// returns a context that drives one tab of it. The test fails (never skips)
// when chromium is missing.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found on PATH; install chromium: apt-get install -y chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
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

// page drives the console in the browser for one test.
type page struct {
	t     *testing.T
	ctx   context.Context
	f     *fixture
	shots string // where screenshots go; chosen at the first
}

// do runs browser actions and fails the test on error.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// text returns the text of the first element matching sel.
func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("reading %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// html returns the page's body.
func (p *page) html() string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.OuterHTML(chromedp.CSS("body")))
	if err != nil {
		p.t.Fatalf("reading the page: %v", err)
	}
	return s
}

// open navigates to a console path and waits for its main element.
func (p *page) open(path string) {
	p.t.Helper()
	p.do("open "+path, chromedp.Navigate(p.f.srv.URL+"/console"+path), chromedp.WaitVisible(chromedp.CSS("main")))
}

// click clicks sel, which loads a new page, waits for that page to load
// and then for its wait selector.
func (p *page) click(sel, wait string) {
	p.t.Helper()
	if _, err := chromedp.RunResponse(p.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("click %s: %v", sel, err)
	}
	p.do("wait for "+wait, chromedp.WaitVisible(chromedp.CSS(wait)))
}

// shot saves a screenshot of the viewport as name.png in screenshotDir.
func (p *page) shot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if img, err := stdpng.Decode(bytes.NewReader(png)); err != nil || img.Bounds().Dx() < 100 {
		p.t.Fatalf("screenshot %s is not a picture of the page: %v", name, err)
	}
	if p.shots == "" {
		p.shots = screenshotDir(p.t)
	}
	if err := os.MkdirAll(p.shots, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// scroll brings sel into view, for a screenshot of it.
func (p *page) scroll(sel string) {
	p.t.Helper()
	p.do("scroll to "+sel, chromedp.ScrollIntoView(chromedp.CSS(sel)))
}

// signIn signs in with a token and waits for the start page.
func (p *page) signIn(tok, wait string) {
	p.t.Helper()
	p.open("/signin")
	p.do("type the token", chromedp.SendKeys(chromedp.CSS("#token"), tok))
	p.click("#signin", wait)
}

// TestBrowserJourney drives the whole customer journey in chromium
// against kvemu: sign-in, Create key, Test configuration failing (no role)
// then passing (role granted in kvemu), Proceed with a confirmation,
// enforcement (fake clock and Tick), rotation to a new key version with
// its progress bar at 100 % and the old version safe to retire, a re-key
// whose live progress bar reaches 100 %, a revocation in the vault shown
// on the status page and its restoration, Disable BYOK, the audit log, and
// the operator page.
func TestBrowserJourney(t *testing.T) {
	f := newFixture(t, false)
	p := &page{t: t, ctx: browser(t), f: f}

	p.signIn(f.tokens[contoso], "#state")
	if got := p.text("#state"); got != "none" {
		t.Fatalf("state after sign-in: %q, want none", got)
	}

	// Create key.
	p.open("/t/contoso/setup")
	p.do("fill in the key settings",
		chromedp.SendKeys(chromedp.CSS("#key_id"), keyID),
		chromedp.SendKeys(chromedp.CSS("#directory_id"), directory),
		chromedp.Click(chromedp.CSS("#cred-secret")),
		chromedp.SendKeys(chromedp.CSS("#client_id"), f.app.ClientID),
		chromedp.SendKeys(chromedp.CSS("#secret"), f.secret))
	p.click("#save", "#flash")
	if got := p.text("#state"); got != "draft" {
		t.Fatalf("state after saving: %q (%s), want draft", got, p.text("#flash"))
	}

	// Without a role the vault refuses to list its keys.
	p.click("#browse-keys", "#keys-error")
	mustContain(t, "key list without a role", p.text("#keys-error"), "access-denied")

	// Test configuration fails: the app has no role on the vault. The
	// report streams in; its result comes last.
	p.open("/t/contoso/setup")
	p.click("#test", "#test-result")
	if got := p.text("#test-result"); got != "failed" {
		t.Fatalf("first test: %q, want failed", got)
	}
	if fails := p.text("#checks tr.check-fail th"); fails == "" {
		t.Fatal("the failed test shows no failing check")
	}
	mustContain(t, "failed report", p.html(), "Key Vault Crypto")
	p.scroll("#checks tr.check-fail")
	p.shot("test-configuration-failed")
	p.click("#back-to-setup", "#test")
	mustContain(t, "setup after a failed test", p.text("#checks"), "key-read")

	// The customer grants the role in the vault and makes a second version
	// of the key; the admin picks the key (versionless) from the vault's
	// list, saves, and the test passes.
	roleID := f.grantRole()
	second, err := f.emu.RotateKey(vaultName, keyName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`(document.getElementById("key_id").value = "") === ""`)); err != nil {
		t.Fatalf("clear the key identifier: %v", err)
	}
	p.click("#browse-keys", "#vault-keys")
	mustContain(t, "key list", p.text("#vault-keys"), keyName, second.Version, "RSA 3072-bit", "usable")
	p.shot("key-picker")
	p.click("#pick-"+keyName, "#picked")
	if v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("key_id").value`)); err != nil || v != keyID {
		t.Fatalf("key identifier after picking: %q (%v), want %s", v, err, keyID)
	}
	p.click("#save", "#flash")
	p.click("#test", "#test-result")
	if got := p.text("#test-result"); got != "passed" {
		t.Fatalf("second test: %q, want passed\n%s", got, p.text("#checks"))
	}
	p.scroll("#report")
	p.shot("test-configuration-passed")
	p.click("#back-to-setup", "#enforce_at")

	// Enforcement date an hour ahead of the lifecycle's clock, all apps.
	enforceAt := f.clock.Now().Add(time.Hour).UTC()
	p.do("set the enforcement date", chromedp.SetValue(chromedp.CSS("#enforce_at"), enforceAt.Format("2006-01-02T15:04")))
	for _, sc := range scopes {
		checked, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`document.getElementById("scope-`+sc+`").checked`))
		if err != nil || !checked {
			t.Errorf("scope %s is not selected by default (%v)", sc, err)
		}
	}
	p.scroll("#proceed")
	p.shot("enforcement-date")
	p.click("#proceed-button", "#confirm")
	mustContain(t, "proceed confirmation", p.html(), "all, including future ones", enforceAt.Truncate(time.Minute).Format("2006-01-02 15:04"))
	p.shot("proceed-confirmation")
	p.click("#confirm", "#state")
	if got := p.text("#state"); got != "scheduled" {
		t.Fatalf("state after proceed: %q, want scheduled", got)
	}

	// Data written before activation moves onto the customer's key.
	for i := range 20 {
		if _, err := f.lc.Keyring().Encrypt(f.ctx, contoso, scopes[i%len(scopes)], []byte("hello"), nil); err != nil {
			t.Fatal(err)
		}
	}

	// The enforcement date passes; the scheduler activates the key.
	f.clock.Advance(2 * time.Hour)
	f.tick()
	p.open("/t/contoso/")
	if got := p.text("#state"); got != "active" {
		t.Fatalf("state after the enforcement date: %q, want active", got)
	}
	firstVersion := p.text("#key-version")
	if firstVersion == "" || firstVersion == "—" {
		t.Fatalf("no key version shown after activation")
	}
	p.shot("status-active")

	// Rotation: the customer makes a new key version; the admin rotates.
	if _, err := f.emu.RotateKey(vaultName, keyName); err != nil {
		t.Fatal(err)
	}
	p.click("#rotate", "#confirm")
	mustContain(t, "rotate confirmation", p.html(), "not re-encrypted")
	p.click("#confirm", "#job-progress")
	if got := p.text("#job-percent"); got != "100%" {
		t.Errorf("rotation progress: %s, want 100%%", got)
	}
	if got := p.text("#key-version"); got == firstVersion {
		t.Errorf("key version after rotation is still %s", got)
	}
	mustContain(t, "inventory after rotation", p.text("#inventory"), firstVersion, "safe to retire", "current")
	p.scroll("#jobs")
	p.shot("rotation-done")

	// Re-key: the bar follows the job, polled by the page, to 100 %.
	p.click("#rekey", "#confirm")
	p.click("#confirm", "#job-progress")
	if got := p.text("#state"); got != "rotating" {
		t.Errorf("state while the re-key job waits: %q, want rotating", got)
	}
	if got := p.text("#job-percent"); got == "100%" {
		t.Errorf("re-key progress before Tick ran it: %s, want below 100%%", got)
	}
	f.tick()
	p.do("wait for the progress bar to reach 100%", chromedp.WaitVisible(chromedp.CSS("#job-state.ok")))
	if got := p.text("#job-percent"); got != "100%" {
		t.Errorf("re-key progress after Tick: %s, want 100%%", got)
	}
	p.scroll("#jobs")
	p.shot("rekey-progress-100")

	// Revocation: the customer removes the role; the next check fails
	// closed and the status page shows it.
	if err := f.emu.RevokeRole(vaultName, roleID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	f.tick()
	p.open("/t/contoso/")
	if got := p.text("#state"); got != "revoked" {
		t.Fatalf("state after the role was removed: %q, want revoked", got)
	}
	mustContain(t, "timeline after revocation", p.text("#timeline"), "revoked")
	mustContain(t, "health after revocation", p.text("#health"), "revoked")
	mustContain(t, "last check after revocation", p.text("#last-check"), "failed: access to the key was refused, detected")
	mustContain(t, "why Disable is off after revocation", p.text("#actions-h")+p.html(), "turning BYOK off needs your key one last time")
	p.shot("status-revoked")
	p.scroll("#timeline")
	p.shot("revocation-timeline")

	// Access comes back; service resumes by itself.
	if err := f.emu.RestoreRole(vaultName, roleID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	f.tick()
	p.open("/t/contoso/")
	if got := p.text("#state"); got != "active" {
		t.Fatalf("state after access was restored: %q, want active", got)
	}
	mustContain(t, "timeline after restoration", p.text("#timeline"), "restored", "revoked")
	p.scroll("#chart")
	p.shot("status-chart")

	// Disable BYOK, with its confirmation.
	p.click("#disable", "#confirm")
	mustContain(t, "disable confirmation", p.html(), "platform-managed keys", "before")
	p.shot("disable-confirmation")
	p.click("#confirm", "#state")
	if got := p.text("#state"); got != "disabled" {
		t.Fatalf("state after disable: %q (%s), want disabled", got, p.text("#flash"))
	}
	f.tick()
	p.open("/t/contoso/")
	p.shot("status-disabled")

	// The audit log with a filter.
	p.open("/t/contoso/audit?action=key.")
	audit := p.text("#audit")
	mustContain(t, "audit log", audit, "key.configure", "key.test", "key.proceed", "key.activate", "key.rotate", "key.revoked", "key.disable")
	if strings.Contains(audit, "vault.unwrapkey") {
		t.Error("the key.* filter shows vault calls")
	}
	p.shot("audit-log")

	// The operator sees every tenant.
	p.click(".signout button", "#token")
	p.signIn(f.tokens["operator"], "#tenants")
	mustContain(t, "operator page", p.text("#tenants"), "contoso", "fabrikam", "disabled", "none")
	p.shot("operator")
}

// TestBrowserCertificateJourney: the recommended credential end to end in
// chromium. The admin generates a certificate, downloads the .cer through
// the browser, the customer uploads it to its app in kvemu and grants the
// role; the settings are saved with the certificate, Test configuration
// passes, Proceed, enforcement, and data is encrypted and decrypted under
// the key reached with the certificate.
func TestBrowserCertificateJourney(t *testing.T) {
	f := newFixture(t, false)
	p := &page{t: t, ctx: browser(t), f: f}
	p.signIn(f.tokens[contoso], "#state")

	p.open("/t/contoso/setup")
	p.click("#generate-cert", "#download-cer")
	b64, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](
		`fetch(document.getElementById("download-cer").href).then(r => r.arrayBuffer()).then(b => btoa(String.fromCharCode(...new Uint8Array(b))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("downloading the .cer: %v", err)
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("the downloaded .cer is not a DER certificate: %v", err)
	}
	mustContain(t, "certificate subject", cert.Subject.CommonName, contoso)
	if _, err := f.emu.AddCertificate(f.app.ClientID, der); err != nil {
		t.Fatal(err)
	}
	f.grantRole()

	p.do("fill in the key settings",
		chromedp.SendKeys(chromedp.CSS("#key_id"), keyID),
		chromedp.SendKeys(chromedp.CSS("#directory_id"), directory),
		chromedp.Click(chromedp.CSS("#cred-cert")),
		chromedp.SendKeys(chromedp.CSS("#client_id"), f.app.ClientID))
	p.click("#save", "#flash")
	if got := p.text("#flash"); !strings.Contains(got, "Settings saved") {
		t.Fatalf("saving with the certificate: %q", got)
	}
	p.scroll("#credential")
	p.shot("certificate-credential")
	p.click("#test", "#test-result")
	if got := p.text("#test-result"); got != "passed" {
		t.Fatalf("test with the certificate: %q\n%s", got, p.text("#checks"))
	}
	mustContain(t, "certificate report", p.text("#checks"), "certificate", "expires")
	p.click("#back-to-setup", "#enforce_at")
	p.do("set the enforcement date", chromedp.SetValue(chromedp.CSS("#enforce_at"), f.clock.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")))
	p.click("#proceed-button", "#confirm")
	p.click("#confirm", "#state")
	if got := p.text("#state"); got != "scheduled" {
		t.Fatalf("state after proceed: %q, want scheduled", got)
	}
	f.clock.Advance(2 * time.Hour)
	f.tick()
	p.open("/t/contoso/")
	if got := p.text("#state"); got != "active" {
		t.Fatalf("state after the enforcement date: %q, want active", got)
	}
	ct, err := f.lc.Keyring().Encrypt(f.ctx, contoso, "chat", []byte("signed in with a certificate"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.lc.Keyring().Forget(contoso) // the next decrypt unwraps from the vault again
	if pt, err := f.lc.Keyring().Decrypt(f.ctx, contoso, "chat", ct, nil); err != nil || string(pt) != "signed in with a certificate" {
		t.Fatalf("decrypt under the certificate credential: %q, %v", pt, err)
	}
}
