package azurekv

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
)

func TestGenerateCertificate(t *testing.T) {
	c, err := GenerateCertificate("contoso-tenant", 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(c.PEM())
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 || !bytes.Equal(block.Bytes, c.CER()) {
		t.Fatal("PEM is not exactly one CERTIFICATE block holding the CER bytes")
	}
	parsed, err := x509.ParseCertificate(c.CER())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Key.PublicKey.Equal(parsed.PublicKey) || c.Key.N.BitLen() != CertificateKeyBits {
		t.Error("the certificate's key is not the returned RSA key of the documented size")
	}
	if err := parsed.CheckSignature(parsed.SignatureAlgorithm, parsed.RawTBSCertificate, parsed.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if !strings.Contains(parsed.Subject.CommonName, "contoso-tenant") {
		t.Errorf("subject %q does not name the tenant", parsed.Subject)
	}
	if d := parsed.NotAfter.Sub(parsed.NotBefore); d < 90*24*time.Hour || d > 90*24*time.Hour+2*time.Minute {
		t.Errorf("validity %v, want 90 days", d)
	}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", ClientCertificate{Certificates: CertificateSet{Current: c}})} {
		if strings.Contains(s, c.Key.D.String()) || strings.Contains(s, c.Key.Primes[0].String()) {
			t.Errorf("a printed form shows the private key: %.80s", s)
		}
	}
	for _, tc := range []struct {
		tenant   string
		validity time.Duration
	}{{"", 24 * time.Hour}, {"t", time.Hour}, {"t", 4 * 365 * 24 * time.Hour}} {
		if _, err := GenerateCertificate(tc.tenant, tc.validity); err == nil {
			t.Errorf("GenerateCertificate(%q, %v) succeeded", tc.tenant, tc.validity)
		}
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	const secret = "very-secret-value"
	for _, v := range []any{ClientSecret{ClientID: "id", Secret: secret}, PlatformApp{ClientID: "id", Secret: secret},
		Config{Credential: ClientSecret{ClientID: "id", Secret: secret}}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, secret) {
				t.Errorf("%s of %T shows the secret: %s", verb, v, s)
			}
		}
	}
}

// TestCertificateRollover: both certificates are on the app during the
// rollover; the credential uses Next once Entra ID accepts it, Current
// before, and Next alone after.
func TestCertificateRollover(t *testing.T) {
	e := newEnv(t)
	cur := must(GenerateCertificate(e.customer, 60*24*time.Hour))
	curInfo := must(e.emu.AddCertificate(e.app.ClientID, cur.CER()))
	set, err := CertificateSet{Current: cur}.StartRollover(e.customer, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wrapWith := func(set CertificateSet) (*certCredential, error) {
		cfg := e.config(contoso + "/keys/cmk")
		cfg.Credential = ClientCertificate{ClientID: e.app.ClientID, Certificates: set}
		p := e.provider(t, cfg)
		_, err := p.Wrap(bg, contoso+"/keys/cmk", []byte("share"))
		return p.cred.(*certCredential), err
	}
	// Next not uploaded yet: Current works.
	cc, err := wrapWith(set)
	if err != nil || cc.inUse() != cur {
		t.Fatalf("before the upload: %v, in use %v; want Current", err, cc.inUse())
	}
	// The customer uploads Next: it is used.
	must(e.emu.AddCertificate(e.app.ClientID, set.Next.CER()))
	if cc, err = wrapWith(set); err != nil || cc.inUse() != set.Next {
		t.Fatalf("after the upload: %v, in use %v; want Next", err, cc.inUse())
	}
	// Each certificate alone authenticates while both are on the app.
	for _, c := range []*Certificate{cur, set.Next} {
		if _, err := wrapWith(CertificateSet{Current: c}); err != nil {
			t.Errorf("%v alone: %v", c, err)
		}
	}
	// The rollover ends; the customer removes the old certificate.
	done, err := set.FinishRollover()
	if err != nil || done.Current != set.Next || done.Next != nil {
		t.Fatalf("FinishRollover = %+v, %v", done, err)
	}
	must(0, e.emu.RemoveCertificate(e.app.ClientID, curInfo.ThumbprintSHA256))
	if _, err := wrapWith(done); err != nil {
		t.Errorf("after the rollover: %v", err)
	}
	_, err = wrapWith(CertificateSet{Current: cur})
	if kms.ClassOf(err) != kms.Authoritative || kms.ReasonOf(err) != kms.ReasonUnauthenticated {
		t.Errorf("the removed certificate: %v, want authoritative authentication-failed", err)
	}
	if _, err := done.FinishRollover(); err == nil {
		t.Error("FinishRollover outside a rollover succeeded")
	}
}

func TestCertificateSetValidate(t *testing.T) {
	a := must(GenerateCertificate("t", 30*24*time.Hour))
	b := must(GenerateCertificate("t", 30*24*time.Hour))
	for _, tc := range []struct {
		set  CertificateSet
		want string
	}{
		{CertificateSet{}, "no Current"},
		{CertificateSet{Current: &Certificate{Cert: a.Cert}}, "lacks"},
		{CertificateSet{Current: &Certificate{Cert: a.Cert, Key: b.Key}}, "does not match"},
		{CertificateSet{Current: a, Next: &Certificate{Cert: b.Cert, Key: a.Key}}, "Next certificate's private key does not match"},
	} {
		if err := tc.set.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate() = %v, want %q", err, tc.want)
		}
	}
}

func TestConsentHelpers(t *testing.T) {
	const tenant, app = "22222222-2222-2222-2222-222222222222", "11111111-1111-1111-1111-111111111111"
	if got, want := AdminConsentURL(tenant, app), "https://login.microsoftonline.com/"+tenant+"/adminconsent?client_id="+app; got != want {
		t.Errorf("AdminConsentURL = %s, want %s", got, want)
	}
	if got := CreateServicePrincipalCommand(app); got != "az ad sp create --id "+app {
		t.Errorf("CreateServicePrincipalCommand = %s", got)
	}
	// The URL works against the emulator's login host.
	e := newEnv(t)
	hc := *e.emu.HTTPClient()
	resp, err := hc.Get(AdminConsentURL(e.customer, e.platform.ClientID))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := e.emu.ServicePrincipal(e.customer, e.platform.ClientID); err != nil {
		t.Errorf("no service principal after opening the admin-consent URL (status %d): %v", resp.StatusCode, err)
	}
}
