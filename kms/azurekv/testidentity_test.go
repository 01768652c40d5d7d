package azurekv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/kvemu"
)

// The platform's workload as customers' federated credentials name it.
const (
	wiIssuer  = "https://oidc.platform.example/byok"
	wiSubject = "system:serviceaccount:byok:byok"
)

// miConfig returns env's configuration of cmk reached with a new
// user-assigned managed identity of the customer's directory (standing in
// for the platform's, as in the managed-identity tenant mode), shared by
// byok tenants and holding role (none if empty) on the vault.
func (e *env) miConfig(t *testing.T, role string) (Config, kvemu.ManagedIdentity) {
	t.Helper()
	clearManagedIdentityEnv(t)
	mi := must(e.emu.CreateManagedIdentity(kvemu.ManagedIdentity{TenantID: e.customer, Name: "byok-" + strings.ReplaceAll(t.Name(), "/", "-")}))
	if role != "" {
		e.grant(t, "contoso", mi.ObjectID, kvemu.RoleAssignment{Role: role})
	}
	cfg := e.config(contoso + "/keys/cmk")
	cfg.Credential = ManagedIdentity{ClientID: mi.ClientID}
	cfg.SharedIdentity, cfg.IdentityTenant = true, e.customer
	return cfg, mi
}

// wiConfig returns env's configuration of cmk reached with the customer's
// app trusting the platform's workload (a federated credential for
// wiIssuer and subject), the token file holding a token for wiSubject.
func (e *env) wiConfig(t *testing.T, subject string) Config {
	t.Helper()
	if err := e.emu.AddFederatedIssuer(wiIssuer); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.AddFederatedCredential(e.app.ClientID, kvemu.FederatedCredential{Issuer: wiIssuer, Subject: subject}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(must(e.emu.FederatedToken(wiIssuer, wiSubject, ""))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(contoso + "/keys/cmk")
	cfg.Credential = WorkloadIdentity{ClientID: e.app.ClientID, TokenFile: file}
	cfg.SharedIdentity = true
	return cfg
}

// TestIdentityHappy: with the platform's managed identity (same
// directory) or workload identity, shared by tenants, every check passes,
// ownership included, and token-audience names the principal.
func TestIdentityHappy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   func(t *testing.T, e *env) (Config, string)
		extra []string
	}{
		{"managed identity", func(t *testing.T, e *env) (Config, string) {
			cfg, mi := e.miConfig(t, "Key Vault Crypto Service Encryption User")
			return cfg, mi.ObjectID
		}, []string{CheckIdentityDirectory, CheckTokenAudience}},
		{"workload identity", func(t *testing.T, e *env) (Config, string) {
			return e.wiConfig(t, wiSubject), e.app.ObjectID
		}, []string{CheckFederatedToken, CheckTokenAudience}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg, principal := tc.cfg(t, e)
			r := TestConfiguration(bg, cfg)
			for _, c := range r.Checks {
				if c.Status != Pass {
					t.Errorf("check %s: %s, want pass\n%s", c.Name, c.Status, dump(r))
				}
			}
			for _, name := range append(tc.extra, CheckOwnership) {
				if _, ok := r.Check(name); !ok {
					t.Errorf("no %s check\n%s", name, dump(r))
				}
			}
			if c, _ := r.Check(CheckTokenAudience); !strings.Contains(c.Value, "principal (object id) "+principal) {
				t.Errorf("token-audience %q does not name the principal %s", c.Value, principal)
			}
		})
	}
}

// TestIdentityFailures: each way the platform's identities fail gets its
// check, a reason and the remedy to paste.
func TestIdentityFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, e *env) Config
		check  string
		remedy []string
	}{
		{"managed identity, no role", func(t *testing.T, e *env) Config {
			cfg, _ := e.miConfig(t, "")
			return cfg
		}, CheckKeyRead, []string{"Access control (IAM)", "Key Vault Crypto Service Encryption User"}},
		{"managed identity not assigned to the host", func(t *testing.T, e *env) Config {
			cfg, _ := e.miConfig(t, "")
			cfg.Credential = ManagedIdentity{ClientID: "0a0b0c0d-1111-2222-3333-444455556666"}
			return cfg
		}, CheckAuthentication, []string{"assigns it to the host running byok", "azure.managed_identity"}},
		{"managed identity, key not tagged for the tenant", func(t *testing.T, e *env) Config {
			cfg, _ := e.miConfig(t, "Key Vault Crypto Service Encryption User")
			cfg.OwnerTag = "fabrikam-tenant"
			return cfg
		}, CheckOwnership, []string{"--tags byok-tenant=fabrikam-tenant"}},
		{"workload identity, token file missing", func(t *testing.T, e *env) Config {
			cfg := e.wiConfig(t, wiSubject)
			cfg.Credential = WorkloadIdentity{ClientID: e.app.ClientID, TokenFile: filepath.Join(t.TempDir(), "absent")}
			return cfg
		}, CheckFederatedToken, []string{"azure.workload_identity.token_file"}},
		{"workload identity, token expired", func(t *testing.T, e *env) Config {
			cfg := e.wiConfig(t, wiSubject)
			e.clk.Advance(-2 * time.Hour) // a token minted two hours ago
			tok := must(e.emu.FederatedToken(wiIssuer, wiSubject, ""))
			e.clk.Advance(2 * time.Hour)
			if err := os.WriteFile(cfg.Credential.(WorkloadIdentity).TokenFile, []byte(tok), 0o600); err != nil {
				t.Fatal(err)
			}
			return cfg
		}, CheckFederatedToken, []string{"kubelet rewrites a projected service account token"}},
		{"workload identity, token file not a token", func(t *testing.T, e *env) Config {
			cfg := e.wiConfig(t, wiSubject)
			if err := os.WriteFile(cfg.Credential.(WorkloadIdentity).TokenFile, []byte("not a token"), 0o600); err != nil {
				t.Fatal(err)
			}
			return cfg
		}, CheckFederatedToken, []string{"mounts the workload's federated token"}},
		{"workload identity, no federated credential for byok's subject", func(t *testing.T, e *env) Config {
			return e.wiConfig(t, "system:serviceaccount:other:other")
		}, CheckAuthentication, []string{"Federated credentials > Add credential", "Issuer " + wiIssuer, "Subject identifier " + wiSubject,
			"Audience " + FederatedAudience, `az ad app federated-credential create --id `}},
		{"workload identity, app not in the directory", func(t *testing.T, e *env) Config {
			cfg := e.wiConfig(t, wiSubject)
			cfg.Credential = WorkloadIdentity{ClientID: "0a0b0c0d-1111-2222-3333-444455556666", TokenFile: cfg.Credential.(WorkloadIdentity).TokenFile}
			return cfg
		}, CheckAuthentication, []string{"register your own app in the vault's directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := tc.setup(t, e)
			r := TestConfiguration(bg, cfg)
			c, ok := r.Check(tc.check)
			if !ok || c.Status != Fail {
				t.Fatalf("check %s: %+v, want fail\n%s", tc.check, c, dump(r))
			}
			if c.Reason == "" {
				t.Errorf("check %s failed without a reason", tc.check)
			}
			for _, want := range tc.remedy {
				if !strings.Contains(c.Remedy, want) {
					t.Errorf("remedy of %s = %q, want it to contain %q", tc.check, c.Remedy, want)
				}
			}
			if r.OK() {
				t.Error("Report.OK() with a failed check")
			}
		})
	}
}

// TestIdentityOtherDirectory: a managed identity cannot reach a vault of
// another directory, and the report says so before any network call; the
// later checks are skipped, each naming the failed one.
func TestIdentityOtherDirectory(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{next: e.emu.HTTPClient()}
	cfg, _ := e.miConfig(t, "Key Vault Crypto Service Encryption User")
	cfg.IdentityTenant = "99999999-8888-7777-6666-555555555555" // the platform's directory, not the vault's
	cfg.Transport = rec
	r := TestConfiguration(bg, cfg)
	c, _ := r.Check(CheckIdentityDirectory)
	if c.Status != Fail || !strings.Contains(c.Remedy, "a managed identity only reaches vaults in its own directory; use platform-app consent or workload identity") {
		t.Fatalf("identity-directory: %+v\n%s", c, dump(r))
	}
	if len(rec.urls) != 0 {
		t.Errorf("the test made %d requests before saying the directory is wrong: %v", len(rec.urls), rec.urls)
	}
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name)
		if c.Name != CheckKeyURI && c.Name != CheckSettings && c.Name != CheckIdentityDirectory &&
			(c.Status != Skip || c.Reason != "not run: the identity-directory check did not pass") {
			t.Errorf("check %s after the failed directory: %s %q", c.Name, c.Status, c.Reason)
		}
	}
	want := slices.Concat([]string{CheckKeyURI, CheckSettings, CheckIdentityDirectory}, afterIdentity)
	if !slices.Equal(names, want) {
		t.Errorf("checks %v, want %v", names, want)
	}
	// afterIdentity is every check a full report has after settings.
	full := TestConfiguration(bg, e.config(contoso+"/keys/cmk"))
	var fullNames []string
	for _, c := range full.Checks[2:] {
		fullNames = append(fullNames, c.Name)
	}
	if !slices.Equal(fullNames, afterIdentity) {
		t.Errorf("afterIdentity = %v, a full report has %v", afterIdentity, fullNames)
	}
}

func TestFederatedCredentialCommand(t *testing.T) {
	got := FederatedCredentialCommand("11111111-2222-3333-4444-555555555555", wiIssuer, wiSubject, "")
	want := `az ad app federated-credential create --id 11111111-2222-3333-4444-555555555555 --parameters '{"audiences":["api://AzureADTokenExchange"],"issuer":"https://oidc.platform.example/byok","name":"byok","subject":"system:serviceaccount:byok:byok"}'`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestRoleAssignmentCommand(t *testing.T) {
	for _, tc := range []struct {
		key, principal string
		objectID       bool
		want           string
	}{
		{contoso + "/keys/cmk", "0a0b0c0d-1111-2222-3333-444455556666", true,
			`az role assignment create --role "Key Vault Crypto Service Encryption User" --assignee-object-id 0a0b0c0d-1111-2222-3333-444455556666 --assignee-principal-type ServicePrincipal --scope "$(az keyvault show --name contoso --query id -o tsv)/keys/cmk"`},
		{"https://hsm1.managedhsm.azure.net/keys/cmk/0123456789abcdef0123456789abcdef", "app-id", false,
			`az keyvault role assignment create --hsm-name hsm1 --role "Managed HSM Crypto Service Encryption User" --assignee app-id --scope /keys/cmk`},
	} {
		if got := RoleAssignmentCommand(must(ParseKeyID(tc.key)), tc.principal, tc.objectID); got != tc.want {
			t.Errorf("RoleAssignmentCommand(%s)\n got %s\nwant %s", tc.key, got, tc.want)
		}
	}
}
