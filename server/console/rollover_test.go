package console_test

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// TestCertificateRolloverPages: with a certificate credential, the status
// and setup pages show its expiry and Start rollover; starting offers the
// next certificate for download and says both are accepted; Finish fails
// with the reason until the customer uploads it, and then succeeds.
func TestCertificateRolloverPages(t *testing.T) {
	f := newFixture(t, false)
	cert, err := azurekv.GenerateCertificate(contoso, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.emu.AddCertificate(f.app.ClientID, cert.CER()); err != nil {
		t.Fatal(err)
	}
	f.grantRole()
	sec, err := azure.CertificateSecret(cert)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.lc.Configure(f.ctx, audit.Actor{Kind: audit.TenantAdmin, ID: "test"}, contoso, azure.Settings(keyID, azure.Options{DirectoryID: directory, ClientID: f.app.ClientID, Credential: azure.CredentialCertificate}, sec)); err != nil {
		t.Fatal(err)
	}
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	thumb := cert.ThumbprintSHA256()[:16]
	for _, page := range []string{"/t/contoso/", "/t/contoso/setup"} {
		_, body := u.get(page)
		mustContain(t, page, body, `id="start-rollover"`, thumb, cert.Cert.NotAfter.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if code, _ := u.get("/t/contoso/certificate/pem?which=next"); code != http.StatusNotFound {
		t.Errorf("download of a next certificate outside a rollover: %d, want 404", code)
	}
	if res, _ := u.post("/t/contoso/certificate/rollover", url.Values{}); res.StatusCode != http.StatusForbidden {
		t.Errorf("Start rollover without the CSRF token: %d, want 403", res.StatusCode)
	}

	res, _ := u.post("/t/contoso/certificate/rollover", url.Values{"csrf": {u.csrf("/t/contoso/")}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("Start rollover: %d", res.StatusCode)
	}
	code, der := u.get("/t/contoso/certificate/cer?which=next")
	next, err := x509.ParseCertificate([]byte(der))
	if code != http.StatusOK || err != nil {
		t.Fatalf("download of the next .cer: %d, %v", code, err)
	}
	nextThumb := (&azurekv.Certificate{Cert: next}).ThumbprintSHA256()
	_, body := u.get("/t/contoso/")
	mustContain(t, "status page during the rollover", body, "Next certificate generated", `id="rollover-state"`,
		"Both certificates are accepted until you finish", `id="finish-rollover"`, nextThumb[:16], `id="download-next-pem"`)
	if strings.Contains(body, `id="start-rollover"`) {
		t.Error("the status page offers Start rollover during a rollover")
	}
	code, pem := u.get("/t/contoso/certificate/pem?which=current")
	if code != http.StatusOK || pem != string(cert.PEM()) {
		t.Errorf("download of the current .pem: %d, %.40q", code, pem)
	}
	if code, _ := u.get("/t/contoso/certificate/pem?which=old"); code != http.StatusNotFound {
		t.Errorf("download of which=old: %d, want 404", code)
	}

	// Not uploaded yet: Finish refuses and says why.
	u.post("/t/contoso/certificate/rollover/finish", url.Values{"csrf": {u.csrf("/t/contoso/")}})
	_, body = u.get("/t/contoso/")
	mustContain(t, "status page after an early Finish", body, "next credential alone failed", `id="finish-rollover"`)

	if _, err := f.emu.AddCertificate(f.app.ClientID, []byte(der)); err != nil {
		t.Fatal(err)
	}
	if err := f.emu.RemoveCertificate(f.app.ClientID, cert.ThumbprintSHA256()); err != nil {
		t.Fatal(err)
	}
	res, _ = u.post("/t/contoso/certificate/rollover/finish", url.Values{"csrf": {u.csrf("/t/contoso/")}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("Finish rollover: %d", res.StatusCode)
	}
	_, body = u.get("/t/contoso/")
	mustContain(t, "status page after Finish", body, "Rollover finished", `id="start-rollover"`, nextThumb[:16])
	if strings.Contains(body, thumb) {
		t.Error("the status page still shows the old certificate")
	}
	if k, _ := f.lc.Status(f.ctx, contoso); k.LastTest == nil || !k.LastTest.Passed() {
		t.Errorf("after Finish, the last Test is %+v; want the passing test with the new certificate", k.LastTest)
	}
}

// TestCertificateRolloverRefusedForClientSecret: a client-secret
// credential shows no rollover, and a forged Start is refused with the
// lifecycle's reason.
func TestCertificateRolloverRefusedForClientSecret(t *testing.T) {
	f := newFixture(t, false)
	if _, err := f.lc.Configure(f.ctx, audit.Actor{Kind: audit.TenantAdmin, ID: "test"}, contoso, azure.Settings(keyID, azure.Options{DirectoryID: directory, ClientID: f.app.ClientID, Credential: azure.CredentialClientSecret}, lifecycle.NewSecret(f.secret))); err != nil {
		t.Fatal(err)
	}
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	_, body := u.get("/t/contoso/")
	if strings.Contains(body, `id="certificate"`) {
		t.Error("the status page shows a certificate card for a client-secret credential")
	}
	u.post("/t/contoso/certificate/rollover", url.Values{"csrf": {u.csrf("/t/contoso/")}})
	_, body = u.get("/t/contoso/")
	mustContain(t, "status page after a refused Start", body, "only the &#34;certificate&#34; credential has certificates to roll over")
	if code, _ := u.get("/t/contoso/certificate/cer?which=current"); code != http.StatusNotFound {
		t.Errorf("download of the current certificate of a client-secret credential: %d, want 404", code)
	}
}
