package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openbyok/byok/kms/gcpkms"
)

// TestBrowserGCPJourney drives a Google Cloud tenant's journey in
// chromium against gcpkmsemu, with the real Cloud KMS connector on a
// platform that offers Azure and GCP: the choice of provider, the key's
// resource name, Test configuration failing with the gcloud line (nothing
// granted yet), the two gcloud lines copied from the page run in the
// emulator, the test passing, Proceed, activation, and the status page
// naming the provider and key.
func TestBrowserGCPJourney(t *testing.T) {
	f := newGCPFixture(t)
	p := &page{t: t, ctx: browser(t), f: f.fixture}
	p.signIn(f.tokens[contoso], "#state")

	p.open("/t/contoso/setup")
	p.do("choose Google Cloud KMS", chromedp.WaitVisible(chromedp.CSS("#provider-form")), chromedp.Click(chromedp.CSS("#provider-gcp-kms")))
	p.click("#choose-provider", "#gcp-key-name")
	if got := p.text("#gcp-service-account"); got != f.platform {
		t.Errorf("platform service account shown: %q, want %s", got, f.platform)
	}
	p.do("the gcloud lines and their copy buttons", chromedp.WaitVisible(chromedp.CSS("#gcp-grant-encrypter")), chromedp.WaitVisible(chromedp.CSS(`button[data-copy="gcp-grant-encrypter"]`)),
		chromedp.WaitVisible(chromedp.CSS("#gcp-grant-viewer")), chromedp.WaitVisible(chromedp.CSS(`button[data-copy="gcp-grant-viewer"]`)))
	mustContain(t, "gcloud line before a key is saved", p.text("#gcp-grant-encrypter"), "--keyring RING", "serviceAccount:"+f.platform)
	p.do("copy the first line", chromedp.Click(chromedp.CSS(`button[data-copy="gcp-grant-encrypter"]`)))
	copied, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`new Promise(r => {
		const b = document.querySelector('button[data-copy="gcp-grant-encrypter"]'), t0 = Date.now();
		(function poll() { if (b.textContent === "Copied" || Date.now() - t0 > 1500) r(b.textContent); else setTimeout(poll, 20); })();
	})`, chromedp.EvalAwaitPromise))
	if err != nil || copied != "Copied" {
		t.Errorf("copy button after a click: %q (%v), want Copied", copied, err)
	}
	p.do("enter the key name", chromedp.SendKeys(chromedp.CSS("#gcp-key-name"), gcpKey))
	p.scroll("#gcp-access")
	p.shot("gcp-create-key")
	p.click("#save", "#flash")
	if got := p.text("#flash"); !strings.Contains(got, "Settings saved") {
		t.Fatalf("saving the GCP settings: %q", got)
	}
	if got := p.text("#state"); got != "draft" {
		t.Fatalf("state after saving: %q, want draft", got)
	}
	// The form came back with the lines naming the key.
	name, _ := gcpkms.ParseKeyName(gcpKey)
	encrypter, viewer := p.text("#gcp-grant-encrypter"), p.text("#gcp-grant-viewer")
	if want := gcpkms.GrantCommand(name, f.platform, gcpkms.RoleEncrypterDecrypter); encrypter != want {
		t.Errorf("first gcloud line after saving:\n%s\nwant\n%s", encrypter, want)
	}
	if want := gcpkms.GrantCommand(name, f.platform, gcpkms.RoleViewer); viewer != want {
		t.Errorf("second gcloud line after saving:\n%s\nwant\n%s", viewer, want)
	}

	// Test configuration fails: nothing is granted; the failing check
	// prints the gcloud line.
	p.click("#test", "#test-result")
	if got := p.text("#test-result"); got != "failed" {
		t.Fatalf("first test: %q, want failed\n%s", got, p.text("#checks"))
	}
	mustContain(t, "failing check", p.text("#checks tr.check-fail"), encrypter)
	p.scroll("#checks tr.check-fail")
	p.shot("gcp-test-configuration-failed")

	// The customer runs the two lines shown on the setup page; the test
	// passes.
	p.click("#back-to-setup", "#test")
	f.grant(encrypter, viewer)
	p.click("#test", "#test-result")
	if got := p.text("#test-result"); got != "passed" {
		t.Fatalf("test after the grant: %q\n%s", got, p.text("#checks"))
	}
	p.click("#back-to-setup", "#enforce_at")

	// Proceed, the enforcement date passes, the key is active.
	p.do("set the enforcement date", chromedp.SetValue(chromedp.CSS("#enforce_at"), f.clock.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")))
	p.click("#proceed-button", "#confirm")
	p.click("#confirm", "#state")
	if got := p.text("#state"); got != "scheduled" {
		t.Fatalf("state after proceed: %q (%s), want scheduled", got, p.text("#flash"))
	}
	f.clock.Advance(2 * time.Hour)
	f.tick()
	p.open("/t/contoso/")
	if got := p.text("#state"); got != "active" {
		t.Fatalf("state after the enforcement date: %q, want active", got)
	}
	if got := p.text("#provider"); got != "Google Cloud KMS" {
		t.Errorf("provider on the status page: %q", got)
	}
	if got := p.text("#key-id"); got != gcpKey {
		t.Errorf("key on the status page: %q, want %s", got, gcpKey)
	}
	mustContain(t, "key in use", p.text("#key-version"), gcpKey+"/cryptoKeyVersions/1")
	p.shot("gcp-status-active")

	// Data is encrypted and decrypted under the customer's Cloud KMS key.
	ct, err := f.lc.Keyring().Encrypt(f.ctx, contoso, "chat", []byte("under Cloud KMS"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.lc.Keyring().Forget(contoso)
	if pt, err := f.lc.Keyring().Decrypt(f.ctx, contoso, "chat", ct, nil); err != nil || string(pt) != "under Cloud KMS" {
		t.Fatalf("decrypt under the Cloud KMS key: %q, %v", pt, err)
	}
}
