package azurekv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/kvemu"
)

func dump(r Report) string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "  %-18s %-4s %s | %s | %s\n", c.Name, c.Status, c.Value, c.Reason, c.Remedy)
	}
	return b.String()
}

// secretsSeen collects every secret and bearer token of a test run, to
// look for them in reports, errors and logs.
type secretsSeen struct {
	values []string
	rec    *recorder
}

func (s *secretsSeen) all() []string {
	out := slices.Clone(s.values)
	if s.rec != nil {
		s.rec.mu.Lock()
		for _, h := range s.rec.reqs {
			if a := h.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
				out = append(out, strings.TrimPrefix(a, "Bearer "))
			}
		}
		s.rec.mu.Unlock()
	}
	return out
}

// leakCheck fails t if any secret appears in text.
func leakCheck(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains a secret or token (%d characters)", what, len(s))
		}
	}
}

// dateShift rewrites the Date header of every answer, as a vault whose
// clock differs from ours would.
type dateShift struct {
	next  *http.Client
	shift time.Duration
}

func (d dateShift) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.next.Do(req)
	if err == nil {
		resp.Header.Set("Date", time.Now().Add(d.shift).UTC().Format(http.TimeFormat))
	}
	return resp, err
}

// dnsFail fails every request as a failed name lookup.
type dnsFail struct{}

func (dnsFail) Do(req *http.Request) (*http.Response, error) {
	return nil, &net.DNSError{Err: "no such host", Name: req.URL.Hostname(), IsNotFound: true}
}

type matrixCase struct {
	name   string
	setup  func(t *testing.T, e *env, cfg *Config)
	check  string // the check that must fail
	remedy string // a part of its remedy
}

var matrixCases = []matrixCase{
	{"secret id instead of key id", func(t *testing.T, e *env, cfg *Config) {
		cfg.KeyID = contoso + "/secrets/cmk"
	}, CheckKeyURI, "Keys blade"},
	{"key name with an underscore", func(t *testing.T, e *env, cfg *Config) {
		cfg.KeyID = contoso + "/keys/my_key"
	}, CheckKeyURI, "e.g. https://contoso.vault.azure.net/keys/"},
	{"secret id pasted as the secret", func(t *testing.T, e *env, cfg *Config) {
		cfg.Credential = ClientSecret{ClientID: e.app.ClientID, Secret: "11111111-2222-3333-4444-555555555555"}
	}, CheckSettings, "correct the settings"},
	{"vault name does not resolve", func(t *testing.T, e *env, cfg *Config) {
		cfg.Transport = dnsFail{}
	}, CheckDNS, "check the vault name"},
	{"connection refused", func(t *testing.T, e *env, cfg *Config) {
		cfg.Transport = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:1")
		}}}
	}, CheckTCP, "allow outbound HTTPS (TCP 443)"},
	{"untrusted certificate", func(t *testing.T, e *env, cfg *Config) {
		addr := e.emu.Addr()
		cfg.Transport = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		}}
	}, CheckTLS, "intercepting TLS"},
	{"vault of another tenant", func(t *testing.T, e *env, cfg *Config) {
		other := must(e.emu.CreateTenant(kvemu.Tenant{Name: "fabrikam"}))
		cfg.TenantID = other.ID
	}, CheckVaultTenant, "set the Directory (tenant) ID to "},
	{"wrong client secret", func(t *testing.T, e *env, cfg *Config) {
		cfg.Credential = ClientSecret{ClientID: e.app.ClientID, Secret: "not-the-secret"}
	}, CheckAuthentication, "create a new client secret"},
	{"expired client secret", func(t *testing.T, e *env, cfg *Config) {
		s := must(e.emu.AddSecret(e.app.ClientID, kvemu.Secret{ExpiresAt: e.clk.Now().Add(time.Hour)}))
		e.clk.Advance(2 * time.Hour)
		cfg.Credential = ClientSecret{ClientID: e.app.ClientID, Secret: s.Value}
	}, CheckAuthentication, "create a new client secret"},
	{"platform app not consented", func(t *testing.T, e *env, cfg *Config) {
		cfg.Credential = PlatformApp{ClientID: e.platform.ClientID, Secret: e.platSec}
	}, CheckAuthentication, "/adminconsent?client_id="},
	{"consent withdrawn", func(t *testing.T, e *env, cfg *Config) {
		oid := must(e.emu.Consent(e.customer, e.platform.ClientID))
		e.grant(t, "contoso", oid, kvemu.RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})
		if err := e.emu.RevokeConsent(e.customer, e.platform.ClientID); err != nil {
			t.Fatal(err)
		}
		cfg.Credential = PlatformApp{ClientID: e.platform.ClientID, Secret: e.platSec}
	}, CheckAuthentication, "az ad sp create --id "},
	{"platform app, key not tagged", func(t *testing.T, e *env, cfg *Config) {
		e.consentPlatform(t)
		must(0, e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{Tags: map[string]string{}}))
		cfg.Credential = PlatformApp{ClientID: e.platform.ClientID, Secret: e.platSec}
	}, CheckOwnership, "az keyvault key set-attributes --vault-name contoso --name cmk --tags byok-tenant=" + owner},
	{"platform app, key tagged for another tenant", func(t *testing.T, e *env, cfg *Config) {
		e.consentPlatform(t)
		cfg.Credential = PlatformApp{ClientID: e.platform.ClientID, Secret: e.platSec}
		cfg.OwnerTag = "fabrikam-tenant"
	}, CheckOwnership, "Key vault > Keys > cmk > the version in use > Tags"},
	{"certificate not uploaded", func(t *testing.T, e *env, cfg *Config) {
		cert := must(GenerateCertificate(e.customer, 90*24*time.Hour))
		cfg.Credential = ClientCertificate{ClientID: e.app.ClientID, Certificates: CertificateSet{Current: cert}}
	}, CheckAuthentication, "Upload certificate"},
	{"no role", func(t *testing.T, e *env, cfg *Config) {
		app := must(e.emu.CreateApp(kvemu.App{TenantID: e.customer}))
		s := must(e.emu.AddSecret(app.ClientID, kvemu.Secret{}))
		cfg.Credential = ClientSecret{ClientID: app.ClientID, Secret: s.Value}
	}, CheckKeyRead, "assign app "},
	{"role removed", func(t *testing.T, e *env, cfg *Config) {
		for _, a := range must(e.emu.RoleAssignments("contoso")) {
			if err := e.emu.RevokeRole("contoso", a.ID); err != nil {
				t.Fatal(err)
			}
		}
	}, CheckKeyRead, "Key Vault Crypto Service Encryption User"},
	{"firewall", func(t *testing.T, e *env, cfg *Config) {
		if err := e.emu.SetNetwork("contoso", kvemu.NetworkRules{DefaultAction: "Deny", AllowedIPs: []string{"203.0.113.0/24"}}); err != nil {
			t.Fatal(err)
		}
	}, CheckKeyRead, "Networking blade"},
	{"key does not exist", func(t *testing.T, e *env, cfg *Config) {
		cfg.KeyID = contoso + "/keys/nokey"
	}, CheckKeyRead, "Manage deleted keys"},
	{"key deleted", func(t *testing.T, e *env, cfg *Config) {
		if err := e.emu.DeleteKey("contoso", "cmk"); err != nil {
			t.Fatal(err)
		}
	}, CheckKeyRead, "az keyvault key recover"},
	{"version does not exist", func(t *testing.T, e *env, cfg *Config) {
		cfg.KeyID = contoso + "/keys/cmk/" + strings.Repeat("0", 32)
	}, CheckKeyRead, "Keys blade"},
	{"EC key", func(t *testing.T, e *env, cfg *Config) {
		must(e.emu.CreateKey("contoso", "ec", kvemu.KeySpec{Type: "EC"}))
		cfg.KeyID = contoso + "/keys/ec"
	}, CheckKeyType, "create an RSA key"},
	{"key without wrapKey and unwrapKey", func(t *testing.T, e *env, cfg *Config) {
		must(e.emu.CreateKey("contoso", "enconly", kvemu.KeySpec{Ops: []string{"encrypt", "decrypt"}}))
		cfg.KeyID = contoso + "/keys/enconly"
	}, CheckKeyOperations, "az keyvault key set-attributes --ops wrapKey unwrapKey"},
	{"key disabled", func(t *testing.T, e *env, cfg *Config) {
		if err := e.emu.DisableKey("contoso", "cmk"); err != nil {
			t.Fatal(err)
		}
	}, CheckKeyEnabled, "--enabled true"},
	{"key expired", func(t *testing.T, e *env, cfg *Config) {
		exp := time.Now().Add(-time.Hour)
		if err := e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{Expires: &exp}); err != nil {
			t.Fatal(err)
		}
	}, CheckKeyValidity, "Expiration date"},
	{"key not yet valid", func(t *testing.T, e *env, cfg *Config) {
		nbf := time.Now().Add(24 * time.Hour)
		if err := e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{NotBefore: &nbf}); err != nil {
			t.Fatal(err)
		}
	}, CheckKeyValidity, "Activation date"},
	{"no purge protection", func(t *testing.T, e *env, cfg *Config) {
		if err := e.emu.CreateVault(kvemu.VaultConfig{Name: "nopp", TenantID: e.customer}); err != nil {
			t.Fatal(err)
		}
		must(e.emu.CreateKey("nopp", "cmk", kvemu.KeySpec{}))
		e.grant(t, "nopp", e.app.ObjectID, kvemu.RoleAssignment{Role: "Key Vault Crypto User"})
		cfg.KeyID = "https://nopp.vault.azure.net/keys/cmk"
	}, CheckSoftDelete, "--enable-purge-protection true"},
	{"custom role without unwrap", func(t *testing.T, e *env, cfg *Config) {
		app := must(e.emu.CreateApp(kvemu.App{TenantID: e.customer}))
		s := must(e.emu.AddSecret(app.ClientID, kvemu.Secret{}))
		e.grant(t, "contoso", app.ObjectID, kvemu.RoleAssignment{DataActions: []string{
			"Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/wrap/action"}})
		cfg.Credential = ClientSecret{ClientID: app.ClientID, Secret: s.Value}
	}, CheckPermissions, "Microsoft.KeyVault/vaults/keys/unwrap/action"},
	{"access policy without unwrapKey", func(t *testing.T, e *env, cfg *Config) {
		if err := e.emu.CreateVault(kvemu.VaultConfig{Name: "legacy", TenantID: e.customer, PurgeProtection: true, AccessPolicies: true}); err != nil {
			t.Fatal(err)
		}
		must(e.emu.CreateKey("legacy", "cmk", kvemu.KeySpec{}))
		if err := e.emu.SetAccessPolicy("legacy", e.app.ObjectID, "get", "wrapKey"); err != nil {
			t.Fatal(err)
		}
		cfg.KeyID = "https://legacy.vault.azure.net/keys/cmk"
	}, CheckPermissions, "Access policies blade"},
	{"encrypt/decrypt-only role in wrap mode", func(t *testing.T, e *env, cfg *Config) {
		cfg.Credential = e.encryptOnlyApp(t)
	}, CheckPermissions, `switch the key's mode to "encrypt"`},
	{"clock ten minutes behind", func(t *testing.T, e *env, cfg *Config) {
		cfg.Transport = dateShift{next: e.emu.HTTPClient(), shift: 10 * time.Minute}
	}, CheckClockSkew, "NTP"},
}

// encryptOnlyApp makes an app whose custom role grants keys/read,
// encrypt and decrypt only.
func (e *env) encryptOnlyApp(t *testing.T) ClientSecret {
	app := must(e.emu.CreateApp(kvemu.App{TenantID: e.customer}))
	s := must(e.emu.AddSecret(app.ClientID, kvemu.Secret{}))
	e.grant(t, "contoso", app.ObjectID, kvemu.RoleAssignment{DataActions: []string{
		"Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/encrypt/action", "Microsoft.KeyVault/vaults/keys/decrypt/action"}})
	return ClientSecret{ClientID: app.ClientID, Secret: s.Value, ExpiresAt: time.Now().Add(365 * 24 * time.Hour)}
}

// TestConfigurationMatrix runs Test configuration on a broken setup per
// case and checks which check fails, its remedy, that the checks after it
// that depend on it are skipped, and that no secret or token appears in
// the report or the logs.
func TestConfigurationMatrix(t *testing.T) {
	if len(matrixCases) < 15 {
		t.Fatalf("the matrix has %d cases, want at least 15", len(matrixCases))
	}
	for _, tc := range matrixCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rec := &recorder{next: e.emu.HTTPClient()}
			cfg := e.config(contoso + "/keys/cmk")
			cfg.Transport = rec
			tc.setup(t, e, &cfg)
			r := TestConfiguration(bg, cfg)
			c, ok := r.Check(tc.check)
			if !ok || c.Status != Fail {
				t.Fatalf("check %s: %+v, want fail; report:\n%s", tc.check, c, dump(r))
			}
			if !strings.Contains(c.Remedy, tc.remedy) {
				t.Errorf("remedy of %s = %q, want it to contain %q", tc.check, c.Remedy, tc.remedy)
			}
			if c.Reason == "" {
				t.Errorf("check %s failed without a reason", tc.check)
			}
			if r.OK() {
				t.Error("Report.OK() with a failed check")
			}
			if len(r.Checks) != len(allChecks) {
				t.Errorf("report has %d checks, want %d:\n%s", len(r.Checks), len(allChecks), dump(r))
			}
			for i, c := range r.Checks {
				if i < len(allChecks) && c.Name != allChecks[i] {
					t.Errorf("check %d is %s, want %s", i, c.Name, allChecks[i])
				}
				if c.Status == Skip && !strings.HasPrefix(c.Reason, "not run: the ") && c.Name != CheckPermissions &&
					!(c.Name == CheckOwnership && strings.HasPrefix(c.Reason, "not needed: ")) {
					t.Errorf("skipped check %s gives no reason naming its prerequisite: %q", c.Name, c.Reason)
				}
			}
			secrets := secretsSeen{values: []string{e.secret, e.platSec}, rec: rec}
			if cs, ok := cfg.Credential.(ClientSecret); ok {
				secrets.values = append(secrets.values, cs.Secret)
			}
			leakCheck(t, "the report", dump(r), secrets.all())
			leakCheck(t, "the logs", e.logs.String(), secrets.all())
		})
	}
}

var allChecks = []string{CheckKeyURI, CheckSettings, CheckDNS, CheckTCP, CheckTLS, CheckVaultTenant, CheckAuthentication,
	CheckCredentialLife, CheckKeyRead, CheckOwnership, CheckPermissions, CheckKeyType, CheckKeyOperations, CheckKeyEnabled, CheckKeyValidity,
	CheckSoftDelete, CheckRoundTrip, CheckLatency, CheckThrottle, CheckClockSkew}

func TestConfigurationEncryptOnlyRole(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(contoso + "/keys/cmk")
	cfg.Credential = e.encryptOnlyApp(t)
	r := TestConfiguration(bg, cfg)
	if r.SuggestedMode != ModeEncrypt || !slices.Equal(r.Operations, []string{"encrypt", "decrypt"}) {
		t.Fatalf("wrap mode: suggested %q, operations %v; want encrypt and [encrypt decrypt]\n%s", r.SuggestedMode, r.Operations, dump(r))
	}
	cfg.Mode = ModeEncrypt
	r = TestConfiguration(bg, cfg)
	if !r.OK() || r.SuggestedMode != "" {
		t.Fatalf("encrypt mode with an encrypt/decrypt-only role: ok %v, suggested %q\n%s", r.OK(), r.SuggestedMode, dump(r))
	}
}

// TestConfigurationHappy runs the report for every credential mode.
func TestConfigurationHappy(t *testing.T) {
	e := newEnv(t)
	platformOID := must(e.emu.Consent(e.customer, e.platform.ClientID))
	e.grant(t, "contoso", platformOID, kvemu.RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})
	platCert := must(GenerateCertificate("platform", 365*24*time.Hour))
	must(e.emu.AddCertificate(e.platform.ClientID, platCert.CER()))
	cert := must(GenerateCertificate(e.customer, 365*24*time.Hour))
	must(e.emu.AddCertificate(e.app.ClientID, cert.CER()))

	// A user-assigned managed identity in the customer's tenant (a vault in
	// the platform's own tenant, as managed identities need).
	clearManagedIdentityEnv(t)
	mi := must(e.emu.CreateManagedIdentity(kvemu.ManagedIdentity{TenantID: e.customer, Name: "byok-" + t.Name()}))
	e.grant(t, "contoso", mi.ObjectID, kvemu.RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})

	const issuer, subject = "https://oidc.cluster.example/byok", "system:serviceaccount:byok:byok"
	if err := e.emu.AddFederatedIssuer(issuer); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.AddFederatedCredential(e.app.ClientID, kvemu.FederatedCredential{Issuer: issuer, Subject: subject}); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(must(e.emu.FederatedToken(issuer, subject, ""))), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, cred := range []Credential{
		PlatformApp{ClientID: e.platform.ClientID, Secret: e.platSec},
		PlatformApp{ClientID: e.platform.ClientID, Certificates: &CertificateSet{Current: platCert}},
		ClientSecret{ClientID: e.app.ClientID, Secret: e.secret, ExpiresAt: time.Now().Add(200 * 24 * time.Hour)},
		ClientCertificate{ClientID: e.app.ClientID, Certificates: CertificateSet{Current: cert}},
		ManagedIdentity{ClientID: mi.ClientID},
		WorkloadIdentity{ClientID: e.app.ClientID, TokenFile: tokenFile},
	} {
		t.Run(cred.Kind(), func(t *testing.T) {
			cfg := e.config(contoso + "/keys/cmk")
			cfg.Credential = cred
			r := TestConfiguration(bg, cfg)
			for _, c := range r.Checks {
				want := Pass
				if c.Name == CheckOwnership && cred.Kind() != (PlatformApp{}).Kind() {
					want = Skip // the customer's own credential proves control
				}
				if c.Status != want {
					t.Errorf("check %s: %s, want %s\n%s", c.Name, c.Status, want, dump(r))
				}
			}
			if !slices.Equal(r.Operations, []string{"wrapKey", "unwrapKey"}) || r.SuggestedMode != "" {
				t.Errorf("operations %v, suggested mode %q", r.Operations, r.SuggestedMode)
			}
		})
	}
}

// clearManagedIdentityEnv unsets what selects a managed identity source,
// so that azidentity uses IMDS (reached through the emulator's dialer).
func clearManagedIdentityEnv(t *testing.T) {
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
}

// The tcp check names the vault's host and port once, and the address
// dialled only as the route: the emulator dials every name to its own
// port, which must not read as a second port of the vault.
func TestConfigurationTCPLine(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(contoso + "/keys/cmk")
	r := TestConfiguration(bg, cfg)
	host := strings.TrimPrefix(contoso, "https://")
	for _, c := range r.Checks {
		if c.Name != CheckTCP {
			continue
		}
		if c.Status != Pass || c.Value != host+":443" {
			t.Fatalf("tcp check: %s %q, want pass with value %s:443\n%s", c.Status, c.Value, host, dump(r))
		}
		_, emuPort, _ := net.SplitHostPort(e.emu.Addr())
		if want := "reached (via 127.0.0.1:" + emuPort + ")"; c.Reason != want {
			t.Fatalf("tcp check reason %q, want %q", c.Reason, want)
		}
		return
	}
	t.Fatalf("no tcp check:\n%s", dump(r))
}
