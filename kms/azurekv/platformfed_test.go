package azurekv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/kvemu"
)

// assertionTap records the client assertions sent to Entra ID and the
// access tokens it and the managed identity endpoint answer, to look for
// them in errors, reports and logs. It can also make the managed identity
// endpoint unreachable.
type assertionTap struct {
	next      *http.Client
	blockIMDS bool

	mu     sync.Mutex
	tokens []string
}

func (a *assertionTap) Do(req *http.Request) (*http.Response, error) {
	if a.blockIMDS && req.URL.Hostname() == "169.254.169.254" {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: no route to host")}
	}
	if req.Body != nil && req.Method == http.MethodPost {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		if v, err := url.ParseQuery(string(b)); err == nil && v.Get("client_assertion") != "" {
			a.add(v.Get("client_assertion"))
		}
	}
	resp, err := a.next.Do(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if i := bytes.Index(b, []byte(`"access_token":"`)); i >= 0 {
		rest := b[i+len(`"access_token":"`):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			a.add(string(rest[:j]))
		}
	}
	return resp, nil
}

func (a *assertionTap) add(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens = append(a.tokens, tok)
}

func (a *assertionTap) all() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := append([]string(nil), a.tokens...)
	for _, t := range a.tokens { // a JWT's signature alone is a secret too
		if p := strings.Split(t, "."); len(p) == 3 {
			out = append(out, p[2])
		}
	}
	return out
}

// ficEnv is env plus the platform's user-assigned managed identity, which
// the platform's multi-tenant app trusts through a federated credential;
// the customer consented to the app and made it Key Vault Crypto Service
// Encryption User on contoso.
type ficEnv struct {
	*env
	platformTenant string
	mi             kvemu.ManagedIdentity
	tap            *assertionTap
}

func newFICEnv(t *testing.T) *ficEnv {
	t.Helper()
	clearManagedIdentityEnv(t)
	e := newEnv(t)
	f := &ficEnv{env: e, platformTenant: e.platform.TenantID, tap: &assertionTap{next: e.emu.HTTPClient()}}
	// A fresh user-assigned identity: MSAL-Go caches managed identity
	// tokens process-wide by identity.
	f.mi = must(e.emu.CreateManagedIdentity(kvemu.ManagedIdentity{TenantID: f.platformTenant, Name: "byok-platform"}))
	must(e.emu.TrustManagedIdentity(e.platform.ClientID, f.mi.Name))
	e.consentPlatform(t)
	return f
}

// appFor registers another multi-tenant app in home with the federated
// credentials fcs, consented in the customer's directory (if consent) with
// the role on contoso; it returns the app's client id.
func (f *ficEnv) appFor(t *testing.T, home string, consent bool, fcs ...kvemu.FederatedCredential) string {
	t.Helper()
	a := must(f.emu.CreateApp(kvemu.App{TenantID: home, MultiTenant: true}))
	for _, fc := range fcs {
		if err := f.emu.AddFederatedCredential(a.ClientID, fc); err != nil {
			t.Fatal(err)
		}
	}
	if consent {
		f.grant(t, "contoso", must(f.emu.Consent(f.customer, a.ClientID)), kvemu.RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})
	}
	return a.ClientID
}

// miConfig is the configuration of cmk with app's credential being the
// managed identity mi (by client id) as a federated credential.
func (f *ficEnv) miConfig(app, miClientID string) Config {
	cfg := f.config(contoso + "/keys/cmk")
	cfg.Credential = PlatformApp{ClientID: app, ManagedIdentity: &ManagedIdentity{ClientID: miClientID}}
	cfg.Transport = f.tap
	return cfg
}

// TestPlatformAppManagedIdentityFIC: the platform's multi-tenant app signs
// in to the customer's directory with the platform's managed identity's
// token as its client assertion, and wraps and unwraps on the customer's
// vault; Test configuration passes.
func TestPlatformAppManagedIdentityFIC(t *testing.T) {
	f := newFICEnv(t)
	cfg := f.miConfig(f.platform.ClientID, f.mi.ClientID)
	p := f.provider(t, cfg)
	w, err := p.Wrap(bg, contoso+"/keys/cmk", []byte("tenant share"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Unwrap(bg, w); err != nil || string(got) != "tenant share" {
		t.Fatalf("Unwrap = %q, %v", got, err)
	}
	if got := f.emu.TokenCount(f.customer, f.platform.ClientID); got.Issued != 1 {
		t.Errorf("platform app tokens in the customer's directory: %+v, want 1 issued", got)
	}
	if got := f.emu.TokenCount(f.platformTenant, f.mi.ClientID); got.Issued != 1 {
		t.Errorf("managed identity tokens: %+v, want 1 issued", got)
	}
	// A second customer directory: the same managed identity token is the
	// assertion there too (MSAL caches it per identity), so the host's
	// identity endpoint is asked once for every directory.
	fabrikam := must(f.emu.CreateTenant(kvemu.Tenant{Name: "fabrikam"})).ID
	if err := f.emu.CreateVault(kvemu.VaultConfig{Name: "fabrikam", TenantID: fabrikam, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	must(f.emu.CreateKey("fabrikam", "cmk", kvemu.KeySpec{Tags: map[string]string{OwnerTagName: "fabrikam-tenant"}}))
	f.grant(t, "fabrikam", must(f.emu.Consent(fabrikam, f.platform.ClientID)), kvemu.RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})
	cfg2 := f.miConfig(f.platform.ClientID, f.mi.ClientID)
	cfg2.KeyID, cfg2.TenantID, cfg2.OwnerTag = "https://fabrikam.vault.azure.net/keys/cmk", fabrikam, "fabrikam-tenant"
	p2 := f.provider(t, cfg2)
	w2, err := p2.Wrap(bg, cfg2.KeyID, []byte("fabrikam share"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p2.Unwrap(bg, w2); err != nil || string(got) != "fabrikam share" {
		t.Fatalf("Unwrap in fabrikam = %q, %v", got, err)
	}
	if got := f.emu.TokenCount(f.platformTenant, f.mi.ClientID); got.Issued != 1 {
		t.Errorf("managed identity tokens after two directories: %+v, want 1 issued", got)
	}
	if got := f.emu.TokenCount(fabrikam, f.platform.ClientID); got.Issued != 1 {
		t.Errorf("platform app tokens in fabrikam: %+v, want 1 issued", got)
	}

	r := TestConfiguration(bg, cfg)
	if !r.OK() {
		t.Fatalf("Test configuration fails:\n%s", dump(r))
	}
	c, _ := r.Check(CheckAuthentication)
	if !strings.Contains(c.Value, "managed identity "+f.mi.ClientID) {
		t.Errorf("authentication value %q does not name the managed identity", c.Value)
	}
	leakCheck(t, "report", dump(r), f.tap.all())
	leakCheck(t, "logs", f.logs.String(), f.tap.all())
	if len(f.tap.all()) == 0 {
		t.Fatal("the tap saw no token; the leak checks checked nothing")
	}
}

// TestPlatformAppManagedIdentityFICConformance runs the provider suite with
// the managed identity as the platform app's federated credential.
func TestPlatformAppManagedIdentityFICConformance(t *testing.T) {
	f := newFICEnv(t)
	must(f.emu.CreateKey("contoso", "other", kvemu.KeySpec{Size: 3072, Tags: map[string]string{OwnerTagName: owner}}))
	f.grant(t, "contoso", must(f.emu.ServicePrincipal(f.customer, f.platform.ClientID)), kvemu.RoleAssignment{Role: "Key Vault Crypto User"})
	kmstest.RunConformance(t, kmstest.Harness{
		Provider:         f.provider(t, f.miConfig(f.platform.ClientID, f.mi.ClientID)),
		KeyID:            contoso + "/keys/cmk",
		OtherKeyID:       contoso + "/keys/other",
		UnknownKeyID:     contoso + "/keys/missing",
		UnknownVersionID: contoso + "/keys/cmk/" + strings.Repeat("ab", 16),
		NewVersion: func(t testing.TB) string {
			return must(f.emu.RotateKey("contoso", "cmk")).ID
		},
	})
}

// TestPlatformAppManagedIdentityFICErrors: every way the platform app's
// federated credential can miss the managed identity is an authoritative
// authentication failure, and Test configuration names the platform
// operator's fix, with no token anywhere.
func TestPlatformAppManagedIdentityFICErrors(t *testing.T) {
	f := newFICEnv(t)
	iss := kvemu.EntraIssuer(f.platformTenant)
	oid := f.mi.ObjectID
	for _, tc := range []struct {
		name   string
		cfg    func() Config
		reason []string // in the authentication check's reason
		remedy []string // in its remedy
	}{
		{"wrong issuer", func() Config {
			return f.miConfig(f.appFor(t, f.platformTenant, true, kvemu.FederatedCredential{Issuer: kvemu.EntraIssuer(f.customer), Subject: oid}), f.mi.ClientID)
		}, []string{"AADSTS700211", "does not match the managed identity", "issuer " + iss}, []string{"platform's operator", "issuer " + iss, "subject " + oid, "audience api://AzureADTokenExchange", "az ad app federated-credential create"}},
		{"wrong subject", func() Config {
			return f.miConfig(f.appFor(t, f.platformTenant, true, kvemu.FederatedCredential{Issuer: iss, Subject: "00000000-0000-0000-0000-000000000000"}), f.mi.ClientID)
		}, []string{"AADSTS700213", "subject " + oid}, []string{"platform's operator", "subject " + oid + " (the managed identity's Object (principal) ID)"}},
		{"wrong audience", func() Config {
			return f.miConfig(f.appFor(t, f.platformTenant, true, kvemu.FederatedCredential{Issuer: iss, Subject: oid, Audiences: []string{"api://byok"}}), f.mi.ClientID)
		}, []string{"AADSTS700212", "audience api://AzureADTokenExchange"}, []string{"platform's operator", "audience api://AzureADTokenExchange"}},
		{"no federated credential", func() Config {
			return f.miConfig(f.appFor(t, f.platformTenant, true), f.mi.ClientID)
		}, []string{"AADSTS70021"}, []string{"platform's operator", "issuer " + iss}},
		{"app registered in the customer's directory", func() Config {
			return f.miConfig(f.appFor(t, f.customer, true, kvemu.FederatedCredential{Issuer: iss, Subject: oid}), f.mi.ClientID)
		}, []string{"AADSTS700236"}, []string{"platform's operator", "managed identity's own directory"}},
		{"managed identity not assigned", func() Config {
			return f.miConfig(f.platform.ClientID, "99999999-9999-4999-8999-999999999999")
		}, []string{"not assigned to the host", "Identity not found"}, []string{"platform's operator", "Identity blade"}},
		{"app not consented in the customer's directory", func() Config {
			return f.miConfig(f.appFor(t, f.platformTenant, false, kvemu.FederatedCredential{Issuer: iss, Subject: oid}), f.mi.ClientID)
		}, []string{"AADSTS700016", "not consented"}, []string{"adminconsent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg()
			_, err := f.provider(t, cfg).Wrap(bg, contoso+"/keys/cmk", []byte("share"))
			var ke *kms.Error
			if !errors.As(err, &ke) || ke.Class != kms.Authoritative || ke.Reason != kms.ReasonUnauthenticated {
				t.Fatalf("Wrap: %v, want an authoritative authentication failure", err)
			}
			r := TestConfiguration(bg, cfg)
			c, _ := r.Check(CheckAuthentication)
			if c.Status != Fail {
				t.Fatalf("authentication %s, want fail\n%s", c.Status, dump(r))
			}
			t.Logf("reason: %s\nremedy: %s", c.Reason, c.Remedy)
			for _, want := range tc.reason {
				if !strings.Contains(c.Reason, want) {
					t.Errorf("reason %q lacks %q", c.Reason, want)
				}
			}
			for _, want := range tc.remedy {
				if !strings.Contains(c.Remedy, want) {
					t.Errorf("remedy %q lacks %q", c.Remedy, want)
				}
			}
			leakCheck(t, "error", err.Error(), f.tap.all())
			leakCheck(t, "report", dump(r), f.tap.all())
		})
	}
	leakCheck(t, "logs", f.logs.String(), f.tap.all())
	if len(f.tap.all()) == 0 {
		t.Fatal("the tap saw no token; the leak checks checked nothing")
	}
}

// TestPlatformAppManagedIdentityUnreachable: without a managed identity
// endpoint the failure is transient, and Test configuration says where the
// identity must come from.
func TestPlatformAppManagedIdentityUnreachable(t *testing.T) {
	f := newFICEnv(t)
	f.tap.blockIMDS = true
	cfg := f.miConfig(f.platform.ClientID, f.mi.ClientID)
	_, err := f.provider(t, cfg).Wrap(bg, contoso+"/keys/cmk", []byte("share"))
	var ke *kms.Error
	if !errors.As(err, &ke) || ke.Class != kms.Transient || !strings.Contains(err.Error(), "ManagedIdentityCredential") {
		t.Fatalf("Wrap: %v, want a transient failure of the managed identity", err)
	}
	r := TestConfiguration(bg, cfg)
	c, _ := r.Check(CheckAuthentication)
	if c.Status != Fail || !strings.Contains(c.Reason, "could not get a token of the user-assigned managed identity "+f.mi.ClientID) ||
		!strings.Contains(c.Remedy, "169.254.169.254") || !strings.Contains(c.Remedy, "platform's operator") {
		t.Fatalf("authentication check %+v", c)
	}
}

// TestPlatformAppTokenFile: the platform app's client assertion is a
// workload identity token file, read again for every assertion.
func TestPlatformAppTokenFile(t *testing.T) {
	e := newEnv(t)
	e.consentPlatform(t)
	const issuer, subject = "https://oidc.aks.example/platform", "system:serviceaccount:byok:byok"
	if err := e.emu.AddFederatedIssuer(issuer); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.AddFederatedCredential(e.platform.ClientID, kvemu.FederatedCredential{Issuer: issuer, Subject: subject}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	write := func(subject string) string {
		tok := must(e.emu.FederatedToken(issuer, subject, ""))
		if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	var tokens []string
	tokens = append(tokens, write("system:serviceaccount:byok:other"))
	cfg := e.config(contoso + "/keys/cmk")
	cfg.Credential = PlatformApp{ClientID: e.platform.ClientID, FederatedTokenFile: file}
	p := e.provider(t, cfg)

	_, err := p.Wrap(bg, contoso+"/keys/cmk", []byte("share"))
	var ke *kms.Error
	if !errors.As(err, &ke) || ke.Class != kms.Authoritative || !strings.Contains(err.Error(), "AADSTS700213") {
		t.Fatalf("Wrap with the token of another subject: %v", err)
	}
	r := TestConfiguration(bg, cfg)
	c, _ := r.Check(CheckAuthentication)
	for _, want := range []string{"AADSTS700213", "does not match the workload's token", "subject system:serviceaccount:byok:other"} {
		if !strings.Contains(c.Reason, want) {
			t.Errorf("reason %q lacks %q", c.Reason, want)
		}
	}
	if !strings.Contains(c.Remedy, "platform's operator") || !strings.Contains(c.Remedy, "issuer "+issuer) {
		t.Errorf("remedy %q", c.Remedy)
	}

	// The same provider reads the file again: the right token now works.
	tokens = append(tokens, write(subject))
	w, err := p.Wrap(bg, contoso+"/keys/cmk", []byte("share"))
	if err != nil {
		t.Fatalf("Wrap after the token file was renewed: %v", err)
	}
	if _, err := p.Unwrap(bg, w); err != nil {
		t.Fatal(err)
	}
	if r := TestConfiguration(bg, cfg); !r.OK() {
		t.Fatalf("Test configuration:\n%s", dump(r))
	}

	// No file: the assertion cannot be made.
	cfg.Credential = PlatformApp{ClientID: e.platform.ClientID, FederatedTokenFile: filepath.Join(t.TempDir(), "missing")}
	_, err = e.provider(t, cfg).Wrap(bg, contoso+"/keys/cmk", []byte("share"))
	var ae *AssertionError
	if !errors.As(err, &ae) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Wrap without the token file: %v, want an AssertionError for a missing file", err)
	}
	r = TestConfiguration(bg, cfg)
	c, _ = r.Check(CheckAuthentication)
	if !strings.Contains(c.Reason, "cannot read the workload identity token file") || !strings.Contains(c.Remedy, "azure.workload.identity/use") {
		t.Errorf("missing file: %+v", c)
	}
	leakCheck(t, "report", dump(r), tokens)
	leakCheck(t, "logs", e.logs.String(), tokens)
}

// TestPlatformAppCredentialChoice: exactly one credential, and none of
// them shows its secret.
func TestPlatformAppCredentialChoice(t *testing.T) {
	const app = "11111111-2222-3333-4444-555555555555"
	set, err := GenerateCertificate("t", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certs := &CertificateSet{Current: set}
	for _, tc := range []struct {
		name string
		c    PlatformApp
		want string // "" = valid
	}{
		{"none", PlatformApp{ClientID: app}, "has no credential; give one of Secret, Certificates, ManagedIdentity"},
		{"secret and managed identity", PlatformApp{ClientID: app, Secret: "s3cr3t-value", ManagedIdentity: &ManagedIdentity{}}, "has a client secret and a managed identity; give one of"},
		{"certificates and token file", PlatformApp{ClientID: app, Certificates: certs, FederatedTokenFile: "/var/run/token"}, "has certificates and a workload identity token file"},
		{"managed identity by client and resource id", PlatformApp{ClientID: app, ManagedIdentity: &ManagedIdentity{ClientID: app, ResourceID: "/subscriptions/x"}}, "not both"},
		{"system-assigned", PlatformApp{ClientID: app, ManagedIdentity: &ManagedIdentity{}}, ""},
		{"user-assigned", PlatformApp{ClientID: app, ManagedIdentity: &ManagedIdentity{ClientID: app}}, ""},
		{"token file", PlatformApp{ClientID: app, FederatedTokenFile: "/var/run/secrets/azure/tokens/azure-identity-token"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("validate: %v, want %q", err, tc.want)
			}
			var logs bytes.Buffer
			slog.New(slog.NewTextHandler(&logs, nil)).Info("cred", "c", tc.c)
			for _, s := range []string{tc.c.String(), fmt.Sprintf("%v %+v %#v", tc.c, tc.c, tc.c), logs.String()} {
				if strings.Contains(s, "s3cr3t-value") || strings.Contains(s, "PRIVATE") {
					t.Errorf("shows a secret: %s", s)
				}
			}
		})
	}
	if s := (PlatformApp{ClientID: app, ManagedIdentity: &ManagedIdentity{}}).String(); !strings.Contains(s, "system-assigned managed identity") {
		t.Errorf("String = %q", s)
	}
}

// TestTokenExchangeAudienceByCloud: the managed identity asks for the
// token exchange audience of the key's cloud.
func TestTokenExchangeAudienceByCloud(t *testing.T) {
	for key, want := range map[string]string{
		"https://contoso.vault.azure.net/keys/cmk":         "api://AzureADTokenExchange",
		"https://contoso.vault.usgovcloudapi.net/keys/cmk": "api://AzureADTokenExchangeUSGov",
		"https://contoso.vault.azure.cn/keys/cmk":          "api://AzureADTokenExchangeChina",
	} {
		if got := tokenExchangeAudience(Config{KeyID: key}.clientOptions()); got != want {
			t.Errorf("%s: %s, want %s", key, got, want)
		}
	}
}

// TestPlatformAppManagedIdentityTokenExpired: Entra ID refuses a managed
// identity token past its expiry (here: Entra's clock is two hours ahead of
// the host, which still holds the token); Test configuration points at the
// host's clock.
func TestPlatformAppManagedIdentityTokenExpired(t *testing.T) {
	f := newFICEnv(t)
	cfg := f.miConfig(f.platform.ClientID, f.mi.ClientID)
	if _, err := f.provider(t, cfg).Wrap(bg, contoso+"/keys/cmk", []byte("share")); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(2 * time.Hour)
	_, err := f.provider(t, cfg).Wrap(bg, contoso+"/keys/cmk", []byte("share"))
	var ke *kms.Error
	if !errors.As(err, &ke) || ke.Class != kms.Authoritative || !strings.Contains(err.Error(), "AADSTS700024") {
		t.Fatalf("Wrap with an expired managed identity token: %v", err)
	}
	r := TestConfiguration(bg, cfg)
	c, _ := r.Check(CheckAuthentication)
	if c.Status != Fail || !strings.Contains(c.Reason, "AADSTS700024") || !strings.Contains(c.Remedy, "clock") || !strings.Contains(c.Remedy, "platform's operator") {
		t.Fatalf("authentication check %+v", c)
	}
	leakCheck(t, "report", dump(r), f.tap.all())
}
