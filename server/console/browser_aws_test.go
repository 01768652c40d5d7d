package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAWSJourney drives an AWS tenant's journey in chromium
// against awsemu, with the real AWS KMS connector on a platform that
// offers Azure and AWS: the choice of provider, the key ARN, Test
// configuration failing with the key policy statement to paste (the key
// policy names only Contoso's account), the statement copied from the page
// into the key's policy in awsemu, the test passing, Proceed, activation,
// the status page naming the provider, key and access, and a revocation
// (the key disabled in KMS) shown there and its restoration.
func TestBrowserAWSJourney(t *testing.T) {
	f := newAWSFixture(t)
	p := &page{t: t, ctx: browser(t), f: f.fixture}
	p.signIn(f.tokens[contoso], "#state")

	// Create key starts with the choice of provider.
	p.open("/t/contoso/setup")
	p.do("choose AWS KMS", chromedp.WaitVisible(chromedp.CSS("#provider-form")), chromedp.Click(chromedp.CSS("#provider-aws-kms")))
	p.shot("aws-provider-choice")
	p.click("#choose-provider", "#aws-key-arn")
	if got := p.text("#aws-principal"); got != awsPlatform {
		t.Errorf("platform principal shown: %q, want %s", got, awsPlatform)
	}
	// The key policy steps are shown (access by the key policy is the
	// default), the role's are hidden, and the copy button is offered.
	p.do("the key policy steps", chromedp.WaitVisible(chromedp.CSS("#aws-key-policy")), chromedp.WaitVisible(chromedp.CSS(`button[data-copy="aws-key-policy"]`)),
		chromedp.WaitNotVisible(chromedp.CSS("#aws-trust-policy")))
	statements := p.text("#aws-key-policy")
	mustContain(t, "key policy statement", statements, awsPlatform, "kms:Encrypt", `"kms:EncryptionContext:byok:tenant": "contoso"`)
	// The copy button puts the statements on the clipboard (its promise
	// resolved: the button says so; reading the clipboard back needs a
	// permission headless chromium does not give).
	p.do("copy the statements", chromedp.Click(chromedp.CSS(`button[data-copy="aws-key-policy"]`)))
	copied, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`new Promise(r => {
		const b = document.querySelector('button[data-copy="aws-key-policy"]'), t0 = Date.now();
		(function poll() { if (b.textContent === "Copied" || Date.now() - t0 > 1500) r(b.textContent); else setTimeout(poll, 20); })();
	})`, chromedp.EvalAwaitPromise))
	if err != nil || copied != "Copied" {
		t.Errorf("copy button after a click: %q (%v), want Copied", copied, err)
	}
	// Choosing AssumeRole shows the role's steps: the trust policy with
	// the external id, which cannot be edited.
	p.do("look at AssumeRole", chromedp.Click(chromedp.CSS("#access-assume-role")), chromedp.WaitVisible(chromedp.CSS("#aws-trust-policy")),
		chromedp.WaitVisible(chromedp.CSS("#aws-role-arn")), chromedp.WaitNotVisible(chromedp.CSS("#aws-key-policy")))
	ext, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("aws-external-id").readOnly ? document.getElementById("aws-external-id").value : "editable"`))
	if err != nil || !strings.HasPrefix(ext, "byok-") {
		t.Errorf("external id field: %q (%v), want a read-only byok-… id", ext, err)
	}
	mustContain(t, "trust policy", p.text("#aws-trust-policy"), ext, awsPlatform)
	p.do("back to the key policy", chromedp.Click(chromedp.CSS("#access-key-policy")), chromedp.WaitVisible(chromedp.CSS("#aws-key-policy")))
	p.do("enter the key ARN", chromedp.SendKeys(chromedp.CSS("#aws-key-arn"), f.key.ARN))
	p.scroll("#aws-access")
	p.shot("aws-create-key")
	p.click("#save", "#flash")
	if got := p.text("#flash"); !strings.Contains(got, "Settings saved") {
		t.Fatalf("saving the AWS settings: %q", got)
	}
	if got := p.text("#state"); got != "draft" {
		t.Fatalf("state after saving: %q, want draft", got)
	}

	// Test configuration fails: the key policy does not name the platform;
	// the failing line says what to paste.
	p.click("#test", "#test-result")
	if got := p.text("#test-result"); got != "failed" {
		t.Fatalf("first test: %q, want failed\n%s", got, p.text("#checks"))
	}
	fail := p.text("#checks tr.check-fail")
	mustContain(t, "failing check", fail, "AccessDenied", "Key policy", "kms:DescribeKey", awsPlatform)
	p.scroll("#checks tr.check-fail")
	p.shot("aws-test-configuration-failed")

	// The customer pastes the statements shown on the setup page into the
	// key's policy; the test passes.
	p.click("#back-to-setup", "#test")
	f.grantPolicy(statements)
	p.click("#test", "#test-result")
	if got := p.text("#test-result"); got != "passed" {
		t.Fatalf("test after the key policy names the platform: %q\n%s", got, p.text("#checks"))
	}
	mustContain(t, "passing report", p.text("#checks"), f.key.ARN)
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
	if got := p.text("#provider"); got != "AWS KMS" {
		t.Errorf("provider on the status page: %q", got)
	}
	if got := p.text("#key-id"); got != f.key.ARN {
		t.Errorf("key on the status page: %q, want %s", got, f.key.ARN)
	}
	mustContain(t, "access on the status page", p.text("#aws-access"), "the platform's own principal, which your key policy names")
	mustContain(t, "key in use", p.text("#key-version"), f.key.ARN)
	p.shot("aws-status-active")

	// Data is encrypted and decrypted under the customer's AWS key.
	ct, err := f.lc.Keyring().Encrypt(f.ctx, contoso, "chat", []byte("under AWS KMS"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.lc.Keyring().Forget(contoso)
	if pt, err := f.lc.Keyring().Decrypt(f.ctx, contoso, "chat", ct, nil); err != nil || string(pt) != "under AWS KMS" {
		t.Fatalf("decrypt under the AWS key: %q, %v", pt, err)
	}

	// The customer disables the key in KMS: the next check fails closed
	// and the status page says so; enabling it again restores service.
	if err := f.emu.DisableKey(f.key.ARN); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	f.tick()
	p.open("/t/contoso/")
	if got := p.text("#state"); got != "revoked" {
		t.Fatalf("state after the key was disabled in KMS: %q, want revoked", got)
	}
	mustContain(t, "health after the key was disabled", p.text("#health"), "revoked")
	mustContain(t, "timeline after the key was disabled", p.text("#timeline"), "revoked")
	p.shot("aws-status-revoked")
	if err := f.emu.EnableKey(f.key.ARN); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	f.tick()
	p.open("/t/contoso/")
	if got := p.text("#state"); got != "active" {
		t.Fatalf("state after the key was enabled again: %q, want active", got)
	}
	mustContain(t, "timeline after the key was enabled", p.text("#timeline"), "restored")
}
