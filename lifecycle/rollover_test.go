package lifecycle_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// activeWithCertificate returns e's lifecycle with tenant t1 active under
// a certificate credential that is uploaded to the app, and that
// certificate.
func activeWithCertificate(t *testing.T, e *azureEnv) (*fixture, *azurekv.Certificate) {
	t.Helper()
	ctx := context.Background()
	f := e.fixture(t)
	cert, err := azurekv.GenerateCertificate(e.dir, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.emu.AddCertificate(e.app.ClientID, cert.CER()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.emu.AssignRole("contoso-byok", kvemu.RoleAssignment{PrincipalID: e.app.ObjectID, Role: "Key Vault Crypto Service Encryption User"}); err != nil {
		t.Fatal(err)
	}
	f.must(f.svc.Configure(ctx, admin, "t1", azure.Settings(e.cmk, azure.Options{DirectoryID: e.dir, ClientID: e.app.ClientID, Credential: azure.CredentialCertificate}, mustSecret(t, cert))))
	if r, err := f.svc.Test(ctx, admin, "t1"); err != nil || !r.Passed() {
		t.Fatalf("Test: %v\n%+v", err, r.Checks)
	}
	f.must(f.svc.Proceed(ctx, admin, "t1", f.clock.Now().Add(time.Hour), nil))
	f.clock.Advance(time.Hour)
	f.tick()
	f.wantState(lifecycle.StateActive)
	return f, cert
}

// TestCertificateRollover: after the enforcement date, a rollover adds a
// next certificate without breaking anything before the customer uploads
// it; once uploaded and the old one removed, byok signs in with the next
// one, and finishing (which tests the next certificate alone) leaves only
// it in the credential.
func TestCertificateRollover(t *testing.T) {
	ctx := context.Background()
	e := newAzureEnv(t)
	f, cert := activeWithCertificate(t, e)
	cts := f.encrypt("a", 2)

	next, err := startRollover(f)
	if err != nil {
		t.Fatal(err)
	}
	if next.Cert == nil || next.Cert.Equal(cert.Cert) {
		t.Fatalf("StartCredentialRollover returned %v, want a new certificate", next)
	}
	if _, err := x509.ParseCertificate(next.CER()); err != nil {
		t.Fatalf("the next certificate's .cer does not parse: %v", err)
	}
	f.wantState(lifecycle.StateActive)
	cc, err := certificates(f)
	if err != nil || !cc.Current.Equal(cert.Cert) || cc.Next == nil || !cc.Next.Equal(next.Cert) {
		t.Fatalf("Certificates during the rollover: %+v, %v", cc, err)
	}
	if lt := f.status().LastTest; lt != nil {
		t.Errorf("the last Test of the old credential still shows: %+v", lt)
	}

	// Not uploaded yet: byok still signs in with the current certificate.
	f.svc.Keyring().Forget("t1")
	f.decryptAll("a", cts)
	r, err := f.svc.Test(ctx, admin, "t1")
	if err != nil || !r.Passed() {
		t.Fatalf("Test before the upload: %v\n%+v", err, r.Checks)
	}
	if c := checkOf(r, "credential-expiry"); c.Outcome != lifecycle.Warn || !strings.Contains(c.Detail, "not yet accepted") {
		t.Errorf("credential-expiry before the upload: %+v", c)
	}
	var fe *lifecycle.FieldError
	if _, err := f.svc.FinishCredentialRollover(ctx, admin, "t1"); !errors.As(err, &fe) || !strings.Contains(fe.Reason, "authentication") {
		t.Fatalf("Finish before the upload: %v", err)
	}
	if cc, _ := certificates(f); cc.Next == nil || !cc.Current.Equal(cert.Cert) {
		t.Fatalf("a failed Finish changed the credential: %+v", cc)
	}
	if _, err := f.svc.StartCredentialRollover(ctx, admin, "t1"); !errors.As(err, &fe) || !strings.Contains(fe.Reason, next.ThumbprintSHA256()[:16]) {
		t.Fatalf("a second Start during a rollover: %v", err)
	}

	// Uploaded, the old one deleted: byok signs in with the next one.
	if _, err := e.emu.AddCertificate(e.app.ClientID, next.CER()); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.RemoveCertificate(e.app.ClientID, cert.ThumbprintSHA256()); err != nil {
		t.Fatal(err)
	}
	if r, err := f.svc.Test(ctx, admin, "t1"); err != nil || !r.Passed() {
		t.Fatalf("Test after the upload: %v\n%+v", err, r.Checks)
	}

	r, err = f.svc.FinishCredentialRollover(ctx, admin, "t1")
	if err != nil || !r.Passed() {
		t.Fatalf("Finish: %v\n%+v", err, r.Checks)
	}
	cc, err = certificates(f)
	if err != nil || !cc.Current.Equal(next.Cert) || cc.Next != nil {
		t.Fatalf("Certificates after Finish: %+v, %v", cc, err)
	}
	if lt := f.status().LastTest; lt == nil || !lt.Passed() {
		t.Errorf("the passing Test of Finish is not the last Test: %+v", lt)
	}
	f.svc.Keyring().Forget("t1")
	f.decryptAll("a", cts)
	f.decryptAll("a", f.encrypt("a", 1))
	if _, err := f.svc.FinishCredentialRollover(ctx, admin, "t1"); !errors.As(err, &fe) {
		t.Errorf("Finish outside a rollover: %v", err)
	}

	outcomes := map[string][]audit.Outcome{}
	for _, ev := range f.audit.events {
		outcomes[ev.Action] = append(outcomes[ev.Action], ev.Outcome)
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), "PRIVATE KEY") || strings.Contains(string(b), "BEGIN CERTIFICATE") {
			t.Fatalf("audit event %s holds credential material", ev.Action)
		}
	}
	if o := outcomes["key.certificate.rollover"]; len(o) != 2 || o[0] != audit.Success || o[1] != audit.Denied {
		t.Errorf("key.certificate.rollover events: %v", o)
	}
	if o := outcomes["key.certificate.rollover.finish"]; len(o) != 2 || o[0] != audit.Success || o[1] != audit.Denied {
		t.Errorf("key.certificate.rollover.finish events: %v", o)
	}
}

// TestCertificateRolloverRefused: no rollover without a configured
// certificate credential.
func TestCertificateRolloverRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.createTenant()
	var se *lifecycle.StateError
	if _, err := f.svc.StartCredentialRollover(ctx, admin, "t1"); !errors.As(err, &se) || se.State != lifecycle.StateNone {
		t.Errorf("Start before configure: %v", err)
	}
	if _, err := certificates(f); !errors.As(err, &se) {
		t.Errorf("Certificates before configure: %v", err)
	}
	f.must(f.svc.Configure(ctx, admin, "t1", f.settings()))
	var fe *lifecycle.FieldError
	if _, err := f.svc.StartCredentialRollover(ctx, admin, "t1"); !errors.As(err, &fe) || fe.Field != "credential" {
		t.Errorf("Start with a %s credential: %v", options(f.settings()).Credential, err)
	}
	if _, err := f.svc.FinishCredentialRollover(ctx, admin, "t1"); !errors.As(err, &fe) || fe.Field != "credential" {
		t.Errorf("Finish with a %s credential: %v", options(f.settings()).Credential, err)
	}
}

// TestCertificateSetSecret: the two-certificate form round-trips through
// the connector, a one-certificate secret still decodes, and a next
// certificate without its key, or with another's, is refused without
// quoting the secret.
func TestCertificateSetSecret(t *testing.T) {
	cur, err := azurekv.GenerateCertificate("contoso", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	set, err := azurekv.CertificateSet{Current: cur}.StartRollover("contoso", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	both, err := azure.CertificateSetSecret(set)
	if err != nil {
		t.Fatal(err)
	}
	one, err := azure.CertificateSetSecret(azurekv.CertificateSet{Current: cur})
	if err != nil {
		t.Fatal(err)
	}
	if one.Reveal() != mustSecret(t, cur).Reveal() {
		t.Error("CertificateSetSecret without Next differs from CertificateSecret")
	}
	if _, err := azure.CertificateSetSecret(azurekv.CertificateSet{Current: cur, Next: &azurekv.Certificate{Cert: set.Next.Cert}}); err == nil {
		t.Error("CertificateSetSecret of a next certificate without its key succeeded")
	}
	c := azure.NewConnector(azurekv.PlatformApp{})
	s := withTenant(azure.Settings("https://myvault.vault.azure.net/keys/k1", azure.Options{DirectoryID: "00000000-0000-0000-0000-0000000000aa", ClientID: "00000000-0000-0000-0000-000000000002", Credential: azure.CredentialCertificate}, lifecycle.Secret{}), "t1")
	nextBlocks := strings.TrimPrefix(both.Reveal(), one.Reveal())
	nextKey, nextCert, _ := strings.Cut(nextBlocks, "-----END PRIVATE KEY-----\n")
	nextKey += "-----END PRIVATE KEY-----\n"
	for name, sec := range map[string]string{
		"one certificate":  one.Reveal(),
		"two certificates": both.Reveal(),
	} {
		s.Secret = lifecycle.NewSecret(sec)
		if _, err := c.Provider(context.Background(), s); err != nil {
			t.Errorf("%s: Provider: %v", name, err)
		}
	}
	for name, sec := range map[string]string{
		"next key without its certificate": one.Reveal() + nextKey,
		"next certificate without its key": one.Reveal() + nextCert,
		"next key of the current cert":     one.Reveal() + nextKey + strings.Replace(string(cur.PEM()), "-----\n", "-----\nByok-Rollover: next\n\n", 1),
		"unknown rollover header":          one.Reveal() + strings.ReplaceAll(nextBlocks, "Byok-Rollover: next", "Byok-Rollover: later"),
		"two next certificates":            both.Reveal() + nextCert,
	} {
		s.Secret = lifecycle.NewSecret(sec)
		_, err := c.Provider(context.Background(), s)
		if err == nil {
			t.Errorf("%s: Provider succeeded", name)
		} else if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), sec[40:60]) {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
	}
}

// TestCertificateNearExpiryNamesRollover: Test configuration warns about a
// certificate that expires within 30 days and says to start a rollover.
func TestCertificateNearExpiryNamesRollover(t *testing.T) {
	ctx := context.Background()
	e := newAzureEnv(t)
	f := e.fixture(t)
	cert, err := azurekv.GenerateCertificate(e.dir, 10*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.emu.AddCertificate(e.app.ClientID, cert.CER()); err != nil {
		t.Fatal(err)
	}
	f.must(f.svc.Configure(ctx, admin, "t1", azure.Settings(e.cmk, azure.Options{DirectoryID: e.dir, ClientID: e.app.ClientID, Credential: azure.CredentialCertificate}, mustSecret(t, cert))))
	r, err := f.svc.Test(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if c := checkOf(r, "credential-expiry"); c.Outcome != lifecycle.Warn || !strings.Contains(c.Remedy, "start a certificate rollover in the console") {
		t.Errorf("credential-expiry of a certificate with 10 days left: %+v", c)
	}
}

// certificates returns the certificates of t1's credential.
func certificates(f *fixture) (azure.CertificateCredential, error) {
	v, err := f.svc.Credential(context.Background(), "t1")
	cc, _ := v.(azure.CertificateCredential)
	return cc, err
}

// startRollover starts a rollover of t1's credential and returns the next
// certificate, without its key: the key never leaves the lifecycle.
func startRollover(f *fixture) (*azurekv.Certificate, error) {
	v, err := f.svc.StartCredentialRollover(context.Background(), admin, "t1")
	if err != nil {
		return nil, err
	}
	return &azurekv.Certificate{Cert: v.(azure.CertificateCredential).Next}, nil
}
