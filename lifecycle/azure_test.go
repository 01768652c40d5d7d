package lifecycle_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// TestAzureConnectorRejects: settings that can never work fail without a
// network call, as invalid input or as a failing report line.
func TestAzureConnectorRejects(t *testing.T) {
	c := azure.NewConnector(azurekv.PlatformApp{ClientID: "00000000-0000-0000-0000-000000000001", Secret: "platform-secret"})
	good := withTenant(azure.Settings("https://myvault.vault.azure.net/keys/k1", azure.Options{DirectoryID: "00000000-0000-0000-0000-0000000000aa", ClientID: "00000000-0000-0000-0000-000000000001", Credential: azure.CredentialPlatformApp}, lifecycle.Secret{}), "t1")
	if _, err := c.Provider(context.Background(), good); err != nil {
		t.Fatalf("Provider of valid settings: %v", err)
	}
	cert, err := azurekv.GenerateCertificate("contoso", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := azurekv.GenerateCertificate("contoso", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := strings.TrimSuffix(mustSecret(t, cert).Reveal(), string(cert.PEM()))
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
	withCert := func(secret string) lifecycle.KeySettings {
		s := good
		s = withOptions(s, func(o *azure.Options) { o.Credential = azure.CredentialCertificate })
		s.Secret = lifecycle.NewSecret(secret)
		return s
	}
	for name, s := range map[string]lifecycle.KeySettings{
		"malformed key id": func() lifecycle.KeySettings {
			s := good
			s.KeyID = "https://myvault.vault.azure.net/secrets/k1"
			return s
		}(),
		"platform app without a byok tenant": func() lifecycle.KeySettings {
			s := good
			s.Tenant = "" // no owner tag to require
			return s
		}(),
		"certificate without a secret": withCert(""),
		"certificate secret not PEM":   withCert("a client secret pasted by mistake"),
		"certificate only":             withCert(string(cert.PEM())),
		"private key only":             withCert(keyPEM),
		"key of another certificate":   withCert(keyPEM + string(other.PEM())),
		"two certificates":             withCert(keyPEM + string(cert.PEM()) + string(other.PEM())),
		"EC private key":               withCert(ecPEM + string(cert.PEM())),
		"an RSA PRIVATE KEY (PKCS #1)": withCert(strings.ReplaceAll(keyPEM, "PRIVATE KEY", "RSA PRIVATE KEY") + string(cert.PEM())),
		"a corrupt PKCS #8 key":        withCert("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + string(cert.PEM())),
	} {
		if _, err := c.Provider(context.Background(), s); !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("%s: Provider: %v", name, err)
		} else if s.Secret.IsSet() && len(s.Secret.Reveal()) > 40 && strings.Contains(err.Error(), s.Secret.Reveal()[30:40]) {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
		r, err := c.Test(context.Background(), s)
		if err != nil || r.Passed() {
			t.Errorf("%s: Test: %+v, %v", name, r, err)
		}
	}
	if _, err := c.Provider(context.Background(), withCert(mustSecret(t, cert).Reveal())); err != nil {
		t.Errorf("Provider of a certificate credential: %v", err)
	}
	if _, err := azure.CertificateSecret(&azurekv.Certificate{Cert: cert.Cert}); err == nil {
		t.Error("CertificateSecret of a certificate without its key succeeded")
	}
}

func mustSecret(t *testing.T, c *azurekv.Certificate) lifecycle.Secret {
	t.Helper()
	s, err := azure.CertificateSecret(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// azureEnv is Contoso in kvemu: a directory, an app without credentials,
// and a vault with an RSA-3072 key "cmk" on which the app has no role yet.
type azureEnv struct {
	emu   *kvemu.Emulator
	dir   string
	app   kvemu.App
	cmk   string
	vault string
}

func newAzureEnv(t *testing.T) *azureEnv {
	t.Helper()
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	e := &azureEnv{emu: emu, vault: "https://contoso-byok.vault.azure.net"}
	dir, err := emu.CreateTenant(kvemu.Tenant{Name: "Contoso"})
	if err != nil {
		t.Fatal(err)
	}
	e.dir = dir.ID
	if e.app, err = emu.CreateApp(kvemu.App{TenantID: e.dir, DisplayName: "byok"}); err != nil {
		t.Fatal(err)
	}
	if err := emu.CreateVault(kvemu.VaultConfig{Name: "contoso-byok", TenantID: e.dir, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.CreateKey("contoso-byok", "cmk", kvemu.KeySpec{Size: 3072}); err != nil {
		t.Fatal(err)
	}
	e.cmk = e.vault + "/keys/cmk"
	return e
}

// fixture returns the lifecycle over e's vault through the Azure connector,
// on the real clock (kvemu's tokens and the certificate use it).
func (e *azureEnv) fixture(t *testing.T) *fixture {
	conn := azure.NewConnector(azurekv.PlatformApp{})
	conn.Transport = e.emu.HTTPClient()
	f := newFixture(t, func(c *lifecycle.Config) { c.Connectors = []lifecycle.Connector{conn} })
	f.clock.Set(time.Now().UTC())
	f.createTenant()
	return f
}

// TestAzureCertificateCredential: a certificate generated by byok, stored
// as the write-only secret, signs in once the customer uploads it to the
// app; Test passes once the role is granted, and the key goes live and
// serves data under it.
func TestAzureCertificateCredential(t *testing.T) {
	ctx := context.Background()
	e := newAzureEnv(t)
	f := e.fixture(t)
	cert, err := azurekv.GenerateCertificate(e.dir, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	settings := azure.Settings(e.cmk, azure.Options{DirectoryID: e.dir, ClientID: e.app.ClientID, Credential: azure.CredentialCertificate}, mustSecret(t, cert))
	if n := len(settings.Secret.Reveal()); n <= kms.MaxPlaintext {
		t.Fatalf("the certificate secret has %d bytes; the test wants one larger than a platform wrap", n)
	}
	if k := f.must(f.svc.Configure(ctx, admin, "t1", settings)); !k.SecretSet || k.Settings.Secret.IsSet() {
		t.Fatalf("Configure: secret set %v, secret in status %v", k.SecretSet, k.Settings.Secret.IsSet())
	}

	// Not uploaded yet: Entra ID refuses the certificate.
	r, err := f.svc.Test(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if c := checkOf(r, "authentication"); r.Passed() || c.Outcome != lifecycle.Fail || !strings.Contains(c.Detail, "AADSTS700027") {
		t.Fatalf("Test before the upload: authentication %+v", c)
	}

	// Uploaded, role granted: every check passes, seen one by one.
	if _, err := e.emu.AddCertificate(e.app.ClientID, cert.CER()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.emu.AssignRole("contoso-byok", kvemu.RoleAssignment{PrincipalID: e.app.ObjectID, Role: "Key Vault Crypto Service Encryption User"}); err != nil {
		t.Fatal(err)
	}
	var seen []lifecycle.Check
	r, err = f.svc.TestWithProgress(ctx, admin, "t1", func(c lifecycle.Check) { seen = append(seen, c) })
	if err != nil || !r.Passed() {
		t.Fatalf("Test after the upload: %v\n%+v", err, r.Checks)
	}
	if !slices.EqualFunc(seen, r.Checks, func(a, b lifecycle.Check) bool { return a.Name == b.Name && a.Outcome == b.Outcome }) {
		t.Errorf("progress saw %d checks, the report has %d", len(seen), len(r.Checks))
	}
	if c := checkOf(r, "credential-expiry"); !strings.Contains(c.Detail, "certificate "+cert.ThumbprintSHA256()[:16]) {
		t.Errorf("credential-expiry: %+v", c)
	}
	if lt := f.status().LastTest; lt == nil || !lt.Passed() {
		t.Fatalf("the passing report was not stored: %+v", lt)
	}

	f.must(f.svc.Proceed(ctx, admin, "t1", f.clock.Now().Add(time.Hour), nil))
	f.clock.Advance(time.Hour)
	f.tick()
	f.wantState(lifecycle.StateActive)
	if k := f.status(); !strings.HasPrefix(k.CurrentKeyID, e.cmk+"/") {
		t.Fatalf("current key %q, want a version of %s", k.CurrentKeyID, e.cmk)
	}
	f.decryptAll("a", f.encrypt("a", 3))
	f.svc.Keyring().Forget("t1")
	f.decryptAll("a", f.encrypt("a", 2)) // unwrapped again from the vault, signed in with the certificate

	// No audit event holds the key or the certificate.
	for _, ev := range f.audit.events {
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), "PRIVATE KEY") || strings.Contains(string(b), "BEGIN CERTIFICATE") {
			t.Fatalf("audit event %s holds credential material", ev.Action)
		}
	}
}

// TestAzureSealedCertificateTampered: an altered sealed credential fails to
// unseal instead of signing in with something else.
func TestAzureSealedCertificateTampered(t *testing.T) {
	ctx := context.Background()
	e := newAzureEnv(t)
	f := e.fixture(t)
	cert, err := azurekv.GenerateCertificate(e.dir, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.must(f.svc.Configure(ctx, admin, "t1", azure.Settings(e.cmk, azure.Options{DirectoryID: e.dir, ClientID: e.app.ClientID, Credential: azure.CredentialCertificate}, mustSecret(t, cert))))
	rec, err := f.db.KeyRecord(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	rec.SealedSecret.Ciphertext[len(rec.SealedSecret.Ciphertext)-1] ^= 1
	rec.Version++
	if err := f.db.PutKeyRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Test(ctx, admin, "t1"); err == nil || !strings.Contains(err.Error(), "failed authentication") {
		t.Fatalf("Test with an altered sealed credential: %v", err)
	}
}

func checkOf(r lifecycle.Report, name string) lifecycle.Check {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return lifecycle.Check{}
}

// TestListVaultKeys lists the vault with the saved credential, audited as a
// vault call, and refuses what it cannot do.
func TestListVaultKeys(t *testing.T) {
	ctx := context.Background()
	e := newAzureEnv(t)
	f := e.fixture(t)
	if _, err := f.svc.ListVaultKeys(ctx, admin, "t1", e.vault); !errors.Is(err, lifecycle.ErrState) {
		t.Fatalf("ListVaultKeys before any settings: %v", err)
	}
	secret, err := e.emu.AddSecret(e.app.ClientID, kvemu.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	f.must(f.svc.Configure(ctx, admin, "t1", azure.Settings(e.cmk, azure.Options{DirectoryID: e.dir, ClientID: e.app.ClientID, Credential: azure.CredentialClientSecret}, lifecycle.NewSecret(secret.Value))))

	// No role yet: the vault's refusal, classified.
	if _, err := f.svc.ListVaultKeys(ctx, admin, "t1", e.vault); kms.ReasonOf(err) != kms.ReasonDenied {
		t.Fatalf("ListVaultKeys without a role: %v", err)
	}
	if _, err := e.emu.AssignRole("contoso-byok", kvemu.RoleAssignment{PrincipalID: e.app.ObjectID, Role: "Key Vault Crypto User"}); err != nil {
		t.Fatal(err)
	}
	v2, err := e.emu.RotateKey("contoso-byok", "cmk")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := f.svc.ListVaultKeys(ctx, admin, "t1", "") // "": the saved key's vault
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KeyID != e.cmk || len(keys[0].Versions) != 2 {
		t.Fatalf("keys: %+v", keys)
	}
	if v := keys[0].Versions[0]; v.Version != v2.Version || v.KeyID != e.cmk+"/"+v2.Version || !v.Usable || v.Type != "RSA" || v.Size != 3072 {
		t.Errorf("newest version: %+v, want %s", v, v2.Version)
	}
	if _, err := f.svc.ListVaultKeys(ctx, admin, "t1", "https://contoso.example.com"); !errors.Is(err, byok.ErrInvalidInput) {
		t.Errorf("ListVaultKeys of a malformed URL: %v", err)
	}
	got := f.audit.actions()
	if got["vault.listkeys/"+string(audit.Success)] != 1 || got["vault.listkeys/"+string(audit.Failure)] != 2 {
		t.Errorf("audited list calls: %v", got)
	}
	for _, ev := range f.audit.events {
		if ev.Action == "vault.listkeys" && (ev.Vault == nil || ev.Vault.RequestID != ev.ID || ev.Vault.Purpose != audit.PurposeTenantRequest || ev.Actor != admin) {
			t.Errorf("list event: %+v", ev)
		}
	}
}

// TestListVaultKeysUnsupported: a connector that cannot list says so.
func TestListVaultKeysUnsupported(t *testing.T) {
	f := newFixture(t, nil)
	f.createTenant()
	f.must(f.svc.Configure(context.Background(), admin, "t1", f.settings()))
	if _, err := f.svc.ListVaultKeys(context.Background(), admin, "t1", ""); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("ListVaultKeys with a connector that cannot list: %v", err)
	}
}

// TestWithProgressFallback: with a connector that reports only at the end,
// progress still sees every check, and the report is stored as Test's.
func TestWithProgressFallback(t *testing.T) {
	f := newFixture(t, nil)
	f.createTenant()
	f.must(f.svc.Configure(context.Background(), admin, "t1", f.settings()))
	f.conn.setFail("no role")
	var names []string
	r, err := f.svc.TestWithProgress(context.Background(), admin, "t1", func(c lifecycle.Check) { names = append(names, c.Name) })
	if err != nil || r.Passed() {
		t.Fatalf("TestWithProgress: %+v, %v", r, err)
	}
	if !slices.Equal(names, []string{"uri", "permission"}) {
		t.Errorf("progress saw %v", names)
	}
	if lt := f.status().LastTest; lt == nil || lt.Passed() || len(lt.Checks) != 2 {
		t.Errorf("stored report: %+v", lt)
	}
}
