package lifecycle_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// identityEnv is kvemu with the platform's directory, holding the
// platform's user-assigned managed identity and the vault bu-vault of a
// business unit (key cmk tagged for byok tenant t1, no role yet), and
// Contoso's directory with its own app and the vault contoso-byok (key
// cmk tagged for t1, the app Key Vault Crypto Service Encryption User).
type identityEnv struct {
	emu      *kvemu.Emulator
	home     string // the platform's directory
	mi       kvemu.ManagedIdentity
	buVault  string
	contoso  string // Contoso's directory
	app      kvemu.App
	conVault string
}

// The platform's workload, as Contoso's federated credential names it.
const (
	platformIssuer  = "https://oidc.platform.example/cluster"
	platformSubject = "system:serviceaccount:byok:byok"
)

func newIdentityEnv(t *testing.T) *identityEnv {
	t.Helper()
	// azidentity picks App Service's endpoint from these; unset, it asks
	// IMDS, which the emulator's transport reaches.
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	e := &identityEnv{emu: emu, buVault: "https://bu-vault.vault.azure.net", conVault: "https://contoso-byok.vault.azure.net"}
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	home, err := emu.CreateTenant(kvemu.Tenant{Name: "Platform"})
	step(err)
	e.home = home.ID
	e.mi, err = emu.CreateManagedIdentity(kvemu.ManagedIdentity{TenantID: e.home, Name: "byok-" + strings.ReplaceAll(t.Name(), "/", "-")})
	step(err)
	step(emu.CreateVault(kvemu.VaultConfig{Name: "bu-vault", TenantID: e.home, PurgeProtection: true}))
	_, err = emu.CreateKey("bu-vault", "cmk", kvemu.KeySpec{Tags: map[string]string{azurekv.OwnerTagName: "t1"}})
	step(err)

	con, err := emu.CreateTenant(kvemu.Tenant{Name: "Contoso"})
	step(err)
	e.contoso = con.ID
	e.app, err = emu.CreateApp(kvemu.App{TenantID: e.contoso, DisplayName: "contoso byok"})
	step(err)
	step(emu.CreateVault(kvemu.VaultConfig{Name: "contoso-byok", TenantID: e.contoso, PurgeProtection: true}))
	_, err = emu.CreateKey("contoso-byok", "cmk", kvemu.KeySpec{Tags: map[string]string{azurekv.OwnerTagName: "t1"}})
	step(err)
	_, err = emu.AssignRole("contoso-byok", kvemu.RoleAssignment{PrincipalID: e.app.ObjectID, Role: "Key Vault Crypto Service Encryption User"})
	step(err)
	step(emu.AddFederatedIssuer(platformIssuer))
	return e
}

// connector returns the Azure connector offering the platform's managed
// identity and its workload identity (token file tokenFile).
func (e *identityEnv) connector(tokenFile string) *azure.Connector {
	c := azure.NewConnector(azurekv.PlatformApp{})
	c.ManagedIdentity = &azurekv.ManagedIdentity{ClientID: e.mi.ClientID}
	c.HomeTenant = e.home
	c.Workload = &azure.WorkloadFederation{TokenFile: tokenFile, Issuer: platformIssuer, Subject: platformSubject}
	c.Transport = e.emu.HTTPClient()
	return c
}

// tokenFile writes the platform's workload token and returns its path.
func (e *identityEnv) tokenFile(t *testing.T) string {
	t.Helper()
	tok, err := e.emu.FederatedToken(platformIssuer, platformSubject, "")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestManagedIdentityJourney: a business unit in the platform's directory
// grants the platform's managed identity a role on its vault. configure →
// test (fails: no role) → grant → test passes → proceed → active →
// encrypt/decrypt → role removed: fails closed → role back: restored →
// disable.
func TestManagedIdentityJourney(t *testing.T) {
	ctx := context.Background()
	e := newIdentityEnv(t)
	conn := e.connector(e.tokenFile(t))
	f := newFixture(t, func(c *lifecycle.Config) { c.Connectors = []lifecycle.Connector{conn} })
	f.clock.Set(time.Now().UTC())
	f.createTenant()

	ids := azure.IdentitiesOf(ctx, f.svc)
	if mi := ids.ManagedIdentity; mi == nil || mi.TenantID != e.home || mi.ObjectID != e.mi.ObjectID || mi.ClientID != e.mi.ClientID || mi.Assignee() != e.mi.ObjectID {
		t.Fatalf("PlatformIdentities().ManagedIdentity = %+v, want the identity %+v of directory %s", ids.ManagedIdentity, e.mi, e.home)
	}

	// The directory may be left out: it can only be the platform's.
	settings := azure.Settings(e.buVault+"/keys/cmk", azure.Options{Credential: azure.CredentialManagedIdentity}, lifecycle.Secret{})
	k := f.must(f.svc.Configure(ctx, admin, "t1", settings))
	if options(k.Settings).Credential != azure.CredentialManagedIdentity || k.SecretSet || options(k.Settings).ClientID != "" || options(k.Settings).DirectoryID != e.home {
		t.Fatalf("status after Configure: %+v", k.Settings)
	}
	// Stored and read back through the store: the mode needs no migration.
	if rec, err := f.db.KeyRecord(ctx, "t1"); err != nil || options(lifecycle.KeySettings{Options: rec.Settings.Options}).Credential != azure.CredentialManagedIdentity {
		t.Fatalf("stored record: %+v, %v", rec.Settings, err)
	}

	// No role yet: the report says which principal needs one.
	r, err := f.svc.Test(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if c := checkOf(r, azurekv.CheckKeyRead); r.Passed() || c.Outcome != lifecycle.Fail || !strings.Contains(c.Remedy, "Key Vault Crypto Service Encryption User") || !strings.Contains(c.Remedy, e.mi.ClientID) {
		t.Fatalf("Test without a role: key-read %+v\n%+v", c, r.Checks)
	}
	if c := checkOf(r, azurekv.CheckTokenAudience); c.Outcome != lifecycle.Pass || !strings.Contains(c.Detail, e.mi.ObjectID) {
		t.Errorf("token-audience %+v, want a pass naming %s", c, e.mi.ObjectID)
	}
	if _, err := f.svc.Proceed(ctx, admin, "t1", f.clock.Now().Add(time.Hour), nil); err == nil {
		t.Fatal("Proceed after a failed Test succeeded")
	}

	grant := func() string {
		t.Helper()
		id, err := e.emu.AssignRole("bu-vault", kvemu.RoleAssignment{PrincipalID: e.mi.ObjectID, Role: "Key Vault Crypto Service Encryption User"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	role := grant()
	if r, err = f.svc.Test(ctx, admin, "t1"); err != nil || !r.Passed() {
		t.Fatalf("Test with the role: %v\n%+v", err, r.Checks)
	}
	for _, name := range []string{azurekv.CheckIdentityDirectory, azurekv.CheckOwnership, azurekv.CheckRoundTrip} {
		if c := checkOf(r, name); c.Outcome != lifecycle.Pass {
			t.Errorf("check %s: %+v, want pass", name, c)
		}
	}
	// The key picker lists the vault with the managed identity: the
	// tagged key only.
	if _, err := e.emu.CreateKey("bu-vault", "untagged", kvemu.KeySpec{}); err != nil {
		t.Fatal(err)
	}
	if keys, err := f.svc.ListVaultKeys(ctx, admin, "t1", ""); err != nil || len(keys) != 1 || keys[0].Name != "cmk" {
		t.Fatalf("ListVaultKeys with the managed identity: %+v, %v; want cmk only", keys, err)
	}

	f.must(f.svc.Proceed(ctx, admin, "t1", f.clock.Now().Add(time.Hour), nil))
	f.clock.Advance(time.Hour)
	f.tick()
	f.wantState(lifecycle.StateActive)
	if k := f.status(); !strings.HasPrefix(k.CurrentKeyID, e.buVault+"/keys/cmk/") {
		t.Fatalf("current key %q", k.CurrentKeyID)
	}
	a := f.encrypt("a", 3)
	f.svc.Keyring().Forget("t1")
	f.decryptAll("a", a) // unwrapped again from the vault by the managed identity

	// The role is removed: the next check fails the tenant closed.
	if err := e.emu.RevokeRole("bu-vault", role); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	f.tick()
	f.wantState(lifecycle.StateRevoked)
	if _, err := f.svc.Keyring().Encrypt(ctx, "t1", "a", []byte("x"), nil); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Encrypt after the role was removed: %v, want ErrKeyRevoked", err)
	}

	// The role is back: service comes back by itself.
	grant()
	f.clock.Advance(2 * time.Minute)
	f.tick()
	f.wantState(lifecycle.StateActive)
	f.decryptAll("a", a)

	// Disable: the data goes back to platform-managed keys.
	if _, err := f.svc.Disable(ctx, admin, "t1"); err != nil {
		t.Fatal(err)
	}
	f.tick()
	f.wantState(lifecycle.StateDisabled)
	if kinds := f.scopeKinds(); kinds["a"] != byok.PlatformManaged {
		t.Fatalf("scope a after Disable: %s", kinds["a"])
	}
	f.decryptAll("a", a)
}

// TestWorkloadIdentityJourney: Contoso's own app trusts the platform's
// workload. configure → test (fails: no federated credential, and the
// remedy gives what to enter) → federated credential added → test passes
// → proceed → active → encrypt/decrypt, with no secret anywhere.
func TestWorkloadIdentityJourney(t *testing.T) {
	ctx := context.Background()
	e := newIdentityEnv(t)
	conn := e.connector(e.tokenFile(t))
	f := newFixture(t, func(c *lifecycle.Config) { c.Connectors = []lifecycle.Connector{conn} })
	f.clock.Set(time.Now().UTC())
	f.createTenant()

	if w := azure.IdentitiesOf(ctx, f.svc).Workload; w == nil || *w != (azure.WorkloadInfo{Issuer: platformIssuer, Subject: platformSubject, Audience: azurekv.FederatedAudience}) {
		t.Fatalf("PlatformIdentities().Workload = %+v", w)
	}
	f.must(f.svc.Configure(ctx, admin, "t1", azure.Settings(e.conVault+"/keys/cmk", azure.Options{DirectoryID: e.contoso, ClientID: e.app.ClientID, Credential: azure.CredentialWorkloadIdentity}, lifecycle.Secret{})))

	r, err := f.svc.Test(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	c := checkOf(r, azurekv.CheckAuthentication)
	for _, want := range []string{"Issuer " + platformIssuer, "Subject identifier " + platformSubject, "Audience api://AzureADTokenExchange", "az ad app federated-credential create --id " + e.app.ClientID} {
		if r.Passed() || c.Outcome != lifecycle.Fail || !strings.Contains(c.Remedy, want) {
			t.Fatalf("Test without a federated credential: authentication %+v, want a remedy with %q", c, want)
		}
	}

	if err := e.emu.AddFederatedCredential(e.app.ClientID, kvemu.FederatedCredential{Issuer: platformIssuer, Subject: platformSubject}); err != nil {
		t.Fatal(err)
	}
	if r, err = f.svc.Test(ctx, admin, "t1"); err != nil || !r.Passed() {
		t.Fatalf("Test with the federated credential: %v\n%+v", err, r.Checks)
	}
	if c := checkOf(r, azurekv.CheckFederatedToken); c.Outcome != lifecycle.Pass || !strings.Contains(c.Detail, platformSubject) {
		t.Errorf("federated-token: %+v", c)
	}
	f.must(f.svc.Proceed(ctx, admin, "t1", f.clock.Now().Add(time.Hour), nil))
	f.clock.Advance(time.Hour)
	f.tick()
	f.wantState(lifecycle.StateActive)
	a := f.encrypt("a", 2)
	f.svc.Keyring().Forget("t1")
	f.decryptAll("a", a)
	if rec, err := f.db.KeyRecord(ctx, "t1"); err != nil || rec.SealedSecret.KeyID != "" {
		t.Fatalf("a workload-identity record holds a sealed secret: %+v, %v", rec.SealedSecret, err)
	}
}

// TestIdentitySettingsRefused: the fields the two modes forbid or need,
// the managed identity's directory, and a mode the platform does not
// offer, each as a field error that changes nothing.
func TestIdentitySettingsRefused(t *testing.T) {
	ctx := context.Background()
	e := newIdentityEnv(t)
	full := e.connector(e.tokenFile(t))
	bare := azure.NewConnector(azurekv.PlatformApp{})
	mi := azure.Settings(e.buVault+"/keys/cmk", azure.Options{DirectoryID: e.home, Credential: azure.CredentialManagedIdentity}, lifecycle.Secret{})
	wi := azure.Settings(e.conVault+"/keys/cmk", azure.Options{DirectoryID: e.contoso, ClientID: e.app.ClientID, Credential: azure.CredentialWorkloadIdentity}, lifecycle.Secret{})
	with := func(s lifecycle.KeySettings, mod func(*lifecycle.KeySettings)) lifecycle.KeySettings {
		mod(&s)
		return s
	}
	for _, tc := range []struct {
		name     string
		conn     *azure.Connector
		settings lifecycle.KeySettings
		field    string
		reason   string
	}{
		{"managed identity not configured", bare, mi, "credential",
			"managed-identity is not offered by this platform: its operator has not configured azure.managed_identity"},
		{"workload identity not configured", bare, wi, "credential",
			"workload-identity is not offered by this platform: its operator has not configured azure.workload_identity"},
		{"managed identity, vault of another directory", full, with(mi, func(s *lifecycle.KeySettings) {
			*s = withOptions(*s, func(o *azure.Options) { o.DirectoryID = e.contoso })
		}), "directory_id",
			"a managed identity only reaches vaults in its own directory; use platform-app consent or workload identity"},
		{"managed identity with a client id", full, with(mi, func(s *lifecycle.KeySettings) {
			*s = withOptions(*s, func(o *azure.Options) { o.ClientID = e.app.ClientID })
		}), "client_id", "must be empty"},
		{"managed identity with a secret", full, with(mi, func(s *lifecycle.KeySettings) { s.Secret = lifecycle.NewSecret("s3cret") }), "secret", "must be empty"},
		{"workload identity without a client id", full, with(wi, func(s *lifecycle.KeySettings) { *s = withOptions(*s, func(o *azure.Options) { o.ClientID = "" }) }), "client_id", "is empty"},
		{"workload identity with a secret", full, with(wi, func(s *lifecycle.KeySettings) { s.Secret = lifecycle.NewSecret("s3cret") }), "secret", "must be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *lifecycle.Config) { c.Connectors = []lifecycle.Connector{tc.conn} })
			f.createTenant()
			_, err := f.svc.Configure(ctx, admin, "t1", tc.settings)
			var fe *lifecycle.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) || !errors.Is(err, byok.ErrInvalidInput) {
				t.Fatalf("Configure: %v, want a %s field error with %q", err, tc.field, tc.reason)
			}
			if strings.Count(err.Error(), "is not offered") > 1 {
				t.Errorf("the error repeats itself: %v", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error quotes the secret: %v", err)
			}
			f.wantState(lifecycle.StateNone)
		})
	}
}

// TestSettingsHashCoversCredential: the same fields in another credential
// mode hash differently, so a passing Test of one mode never lets another
// go live.
func TestSettingsHashCoversCredential(t *testing.T) {
	seen := map[string]azure.CredentialMode{}
	for _, m := range azure.CredentialModes {
		h := azure.Settings("https://v.vault.azure.net/keys/k", azure.Options{DirectoryID: "d", Credential: m}, lifecycle.Secret{}).Hash()
		if prev, ok := seen[h]; ok {
			t.Errorf("modes %s and %s hash alike", prev, m)
		}
		seen[h] = m
	}
}

// TestIdentityOtherTenantsKey: the platform's identities reach every key
// that let them in, whichever tenant names it; tenant t2 naming t1's keys
// (tagged byok-tenant=t1) fails at ownership and nothing is wrapped.
func TestIdentityOtherTenantsKey(t *testing.T) {
	ctx := context.Background()
	e := newIdentityEnv(t)
	conn := e.connector(e.tokenFile(t))
	if _, err := e.emu.AssignRole("bu-vault", kvemu.RoleAssignment{PrincipalID: e.mi.ObjectID, Role: "Key Vault Crypto Service Encryption User"}); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.AddFederatedCredential(e.app.ClientID, kvemu.FederatedCredential{Issuer: platformIssuer, Subject: platformSubject}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *lifecycle.Config) { c.Connectors = []lifecycle.Connector{conn} })
	f.clock.Set(time.Now().UTC())
	if err := f.svc.CreateTenant(ctx, operator, "t2", byok.Grace, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []lifecycle.KeySettings{
		azure.Settings(e.buVault+"/keys/cmk", azure.Options{Credential: azure.CredentialManagedIdentity}, lifecycle.Secret{}),
		azure.Settings(e.conVault+"/keys/cmk", azure.Options{DirectoryID: e.contoso, ClientID: e.app.ClientID, Credential: azure.CredentialWorkloadIdentity}, lifecycle.Secret{}),
	} {
		f.must(f.svc.Configure(ctx, admin, "t2", s))
		r, err := f.svc.Test(ctx, admin, "t2")
		if err != nil {
			t.Fatal(err)
		}
		own := checkOf(r, azurekv.CheckOwnership)
		if r.Passed() || own.Outcome != lifecycle.Fail || !strings.Contains(own.Remedy, "byok-tenant=t2") || !strings.Contains(own.Detail, "other byok tenants use too") {
			t.Fatalf("%s: t2's Test passed %v, ownership %+v", options(s).Credential, r.Passed(), own)
		}
	}
	for _, v := range []string{"bu-vault", "contoso-byok"} {
		if n := e.emu.CallCount(v, kvemu.OpWrapKey, 0); n != 0 {
			t.Errorf("%d wrapKey calls on %s for t2, want 0", n, v)
		}
	}
}
