package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

// productionConfig is the configuration of docs/operations.md's
// "Production" section: the platform root key in a Managed HSM reached
// with a managed identity, the multi-tenant app signed in with the same
// managed identity as a federated credential, and that identity offered
// to tenants of the platform's own directory. No secret in the file, and
// none in any variable.
const productionConfig = `version: v1
listen: 127.0.0.1:0
store:
  sqlite: %[1]s
platform_key:
  azure:
    key_id: https://contoso-byok.managedhsm.azure.net/keys/platform-root
    tenant_id: %[2]s
    credential:
      managed_identity: {client_id: %[3]s}
azure:
  tenant_id: %[2]s
  client_id: %[4]s
  credential:
    managed_identity: {client_id: %[3]s}
  managed_identity: {client_id: %[3]s}
keyring:
  check_interval: 1s
  max_staleness: 1m
`

// platformSide is the platform's own Azure estate in the emulator.
type platformSide struct {
	dir string                // the platform's directory
	mi  kvemu.ManagedIdentity // byok's user-assigned managed identity
	app kvemu.App             // the multi-tenant app customers consent to

	misApp      string // an app whose federated credential a misconfiguration case sets
	expiredCert string // a PEM file of an expired certificate of app
}

// newPlatformSide creates the platform's directory, its managed identity
// with a role on a Managed HSM holding an oct-HSM root key, and its
// multi-tenant app trusting that identity as a federated credential.
func newPlatformSide(t *testing.T, emu *kvemu.Emulator) platformSide {
	t.Helper()
	p := platformSide{dir: "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := emu.CreateTenant(kvemu.Tenant{ID: p.dir, Name: "Contoso SaaS"})
	must(err)
	p.mi, err = emu.CreateManagedIdentity(kvemu.ManagedIdentity{Name: "byok", TenantID: p.dir})
	must(err)
	must(emu.CreateVault(kvemu.VaultConfig{Name: "contoso-byok", TenantID: p.dir, ManagedHSM: true, PurgeProtection: true}))
	_, err = emu.CreateKey("contoso-byok", "platform-root", kvemu.KeySpec{Type: "oct-HSM", Size: 256})
	must(err)
	_, err = emu.AssignRole("contoso-byok", kvemu.RoleAssignment{PrincipalID: p.mi.ObjectID, Role: "Managed HSM Crypto Service Encryption User"})
	must(err)
	p.app, err = emu.CreateApp(kvemu.App{TenantID: p.dir, MultiTenant: true, DisplayName: "Contoso BYOK"})
	must(err)
	_, err = emu.TrustManagedIdentity(p.app.ClientID, p.mi.ClientID)
	must(err)
	return p
}

// clearIdentityEnv makes azidentity reach the managed identity through
// IMDS, which kvemu's transport serves.
func clearIdentityEnv(t *testing.T) {
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
		"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
}

// TestProductionConfiguration runs byok serve's wiring with the production
// configuration of docs/operations.md against kvemu, with no secret in any
// file or variable, and walks the journey through the API for a tenant
// that consented to the platform's app and for a tenant whose vault
// trusts the platform's managed identity; then it rotates the platform
// root key and moves every share onto the new version.
func TestProductionConfiguration(t *testing.T) {
	clearIdentityEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	plat := newPlatformSide(t, emu)

	// A customer in another directory consents to the platform's app and
	// gives its service principal a role on a key tagged for its tenant.
	acmeDir := "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
	if _, err := emu.CreateTenant(kvemu.Tenant{ID: acmeDir, Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	sp, err := emu.Consent(acmeDir, plat.app.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.CreateVault(kvemu.VaultConfig{Name: "acme-keys", TenantID: acmeDir, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.CreateKey("acme-keys", "cmk", kvemu.KeySpec{Tags: map[string]string{"byok-tenant": "acme"}}); err != nil {
		t.Fatal(err)
	}
	acmeRole, err := emu.AssignRole("acme-keys", kvemu.RoleAssignment{PrincipalID: sp, Role: "Key Vault Crypto Service Encryption User"})
	if err != nil {
		t.Fatal(err)
	}
	// A business unit in the platform's own directory grants the
	// platform's managed identity a role on its vault.
	if err := emu.CreateVault(kvemu.VaultConfig{Name: "internal-keys", TenantID: plat.dir, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.CreateKey("internal-keys", "cmk", kvemu.KeySpec{Tags: map[string]string{"byok-tenant": "internal"}}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	text := fmt.Sprintf(productionConfig, filepath.Join(dir, "byok.db"), plat.dir, plat.mi.ClientID, plat.app.ClientID)
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{b: &bytes.Buffer{}}
	noEnv := func(string) string { return "" } // no secret in any variable either
	start := func() (*app, string, func()) {
		a, err := openApp(ctx, cfg, appOptions{azureTransport: emu.HTTPClient(), getenv: noEnv}, slog.New(slog.NewTextHandler(logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.run(runCtx, ln, "", "") }()
		return a, "http://" + ln.Addr().String(), func() { stop(); <-done; a.close() }
	}
	a, base, stop := start()
	defer func() { stop() }()
	c := api{t: t, base: base}
	operator, _, err := server.IssueToken(ctx, a.db, token.Operator, nil, "production-test", 0)
	if err != nil {
		t.Fatal(err)
	}

	var rootBefore struct {
		Version string
		Type    string
	}
	c.must(operator, "GET", "/v1/platform-key", nil, &rootBefore)
	if rootBefore.Type != "oct-HSM" || !strings.HasPrefix(rootBefore.Version, "https://contoso-byok.managedhsm.azure.net/keys/platform-root/") {
		t.Fatalf("the platform key is %+v, want the Managed HSM's oct-HSM key", rootBefore)
	}

	type journeyCase struct {
		tenant, vault string
		settings      map[string]any
		revoke        func() error
		restore       func() error
	}
	var miRole string
	cases := []journeyCase{
		{"acme", "acme-keys", map[string]any{"key_id": "https://acme-keys.vault.azure.net/keys/cmk", "directory_id": acmeDir, "client_id": plat.app.ClientID, "credential": "platform-app"},
			func() error { return emu.RevokeRole("acme-keys", acmeRole) }, func() error { return emu.RestoreRole("acme-keys", acmeRole) }},
		{"internal", "internal-keys", map[string]any{"key_id": "https://internal-keys.vault.azure.net/keys/cmk", "directory_id": plat.dir, "credential": "managed-identity"},
			func() error { return emu.RevokeRole("internal-keys", miRole) }, func() error { return emu.RestoreRole("internal-keys", miRole) }},
	}
	cts := map[string]string{}
	for _, jc := range cases {
		t.Run(jc.tenant, func(t *testing.T) {
			c := api{t: t, base: base, tenant: jc.tenant}
			c.must(operator, "POST", "/v1/tenants", map[string]any{"id": jc.tenant, "policy": "grace", "scopes": []string{"chat"}}, nil)
			var adminTok, serviceTok struct{ Token string }
			c.must(operator, "POST", "/v1/tokens", map[string]any{"kind": "tenant-admin", "tenants": []string{jc.tenant}}, &adminTok)
			c.must(operator, "POST", "/v1/tokens", map[string]any{"kind": "service", "tenants": []string{jc.tenant}}, &serviceTok)
			admin, service := adminTok.Token, serviceTok.Token
			c.must(admin, "PUT", "/v1/tenants/"+jc.tenant+"/key", jc.settings, nil)

			type report struct {
				Passed bool
				Checks []struct{ Name, Outcome, Detail, Remedy string }
			}
			var rep report
			if jc.tenant == "internal" {
				// The business unit has not granted the role yet: Test
				// says which principal needs which role.
				c.must(admin, "POST", "/v1/tenants/internal/key/test", nil, &rep)
				if rep.Passed {
					t.Fatal("Test configuration passed without a role for the managed identity")
				}
				if miRole, err = emu.AssignRole("internal-keys", kvemu.RoleAssignment{PrincipalID: plat.mi.ObjectID, Role: "Key Vault Crypto Service Encryption User"}); err != nil {
					t.Fatal(err)
				}
			}
			c.must(admin, "POST", "/v1/tenants/"+jc.tenant+"/key/test", nil, &rep)
			if !rep.Passed {
				t.Fatalf("Test configuration fails: %+v", rep.Checks)
			}
			c.must(admin, "POST", "/v1/tenants/"+jc.tenant+"/key/proceed", map[string]any{"enforce_at": time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)}, nil)
			waitFor(t, "activation", 30*time.Second, func() bool { return c.status(admin).State == "active" })

			encrypt := func(msg string) string {
				var out struct{ Ciphertext string }
				c.must(service, "POST", "/v1/tenants/"+jc.tenant+"/encrypt", map[string]any{"scope": "chat", "plaintext": base64.StdEncoding.EncodeToString([]byte(msg))}, &out)
				return out.Ciphertext
			}
			decrypt := func(ct string) (string, int, string) {
				var out struct{ Plaintext string }
				status, code := c.call(service, "POST", "/v1/tenants/"+jc.tenant+"/decrypt", map[string]any{"scope": "chat", "ciphertext": ct}, &out)
				pt, _ := base64.StdEncoding.DecodeString(out.Plaintext)
				return string(pt), status, code
			}
			ct := encrypt("secret of " + jc.tenant)

			// The customer rotates its key; byok follows the new version.
			newKey, err := emu.RotateKey(jc.vault, "cmk")
			if err != nil {
				t.Fatal(err)
			}
			job := c.rotateTo(admin, newKey.ID)
			if job.State != "done" || c.status(admin).CurrentKeyID != newKey.ID {
				t.Fatalf("rotation: job %s, current %s, want done and %s", job.State, c.status(admin).CurrentKeyID, newKey.ID)
			}

			// Revoke: fails closed within the check interval + 5 s.
			if err := jc.revoke(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "fail closed after revocation", 6*time.Second, func() bool {
				_, status, code := decrypt(ct)
				return status == 403 && code == "key_revoked"
			})
			// Restore: back by itself.
			if err := jc.restore(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "service back after restoration", 6*time.Second, func() bool {
				pt, status, _ := decrypt(ct)
				return status == 200 && pt == "secret of "+jc.tenant
			})
			waitFor(t, "the monitor marks the key active again", 10*time.Second, func() bool { return c.status(admin).State == "active" })

			// Disable BYOK: the data goes back to platform-managed keys.
			c.must(admin, "POST", "/v1/tenants/"+jc.tenant+"/key/disable", nil, nil)
			waitFor(t, "disable", 30*time.Second, func() bool { return c.status(admin).State == "disabled" })
			if pt, status, code := decrypt(ct); status != 200 || pt != "secret of "+jc.tenant {
				t.Fatalf("decrypt after disable: %d %s %q", status, code, pt)
			}
			cts[jc.tenant] = ct + "\x00" + service
		})
		if t.Failed() {
			return
		}
	}

	// The platform rotates its root key in the Managed HSM and moves every
	// share onto the new version; the old one is then safe to retire.
	newRoot, err := emu.RotateKey("contoso-byok", "platform-root")
	if err != nil {
		t.Fatal(err)
	}
	var rk struct {
		Current   string
		Remaining int
		Run       *struct {
			ID, State   string
			Total, Done int
		}
	}
	c.must(operator, "POST", "/v1/platform-key/rekey", nil, &rk)
	if rk.Run == nil || rk.Current != newRoot.ID || rk.Run.Total == 0 {
		t.Fatalf("platform re-key started as %+v, want a run onto %s", rk, newRoot.ID)
	}
	started := time.Now()
	waitFor(t, "the platform re-key", time.Minute, func() bool {
		c.must(operator, "GET", "/v1/platform-key/rekey", nil, &rk)
		return rk.Run.State != "running"
	})
	if rk.Run.State != "done" || rk.Remaining != 0 || rk.Run.Done != rk.Run.Total {
		t.Fatalf("platform re-key ended as %+v %+v", rk, rk.Run)
	}
	t.Logf("platform re-key moved %d shares and credentials in %v", rk.Run.Done, time.Since(started).Round(time.Millisecond))
	var inv struct {
		Versions []struct {
			KeyID        string `json:"key_id"`
			Shares       int
			Current      bool
			SafeToRetire bool `json:"safe_to_retire"`
		}
	}
	c.must(operator, "GET", "/v1/platform-key/inventory", nil, &inv)
	retired := false
	for _, v := range inv.Versions {
		if v.KeyID == rootBefore.Version {
			retired = v.SafeToRetire && v.Shares == 0
		}
	}
	if !retired {
		t.Fatalf("the inventory does not show the old root key version %s safe to retire: %+v", rootBefore.Version, inv.Versions)
	}

	// Retire the old version in the HSM, start a replica cold: every
	// tenant's data still decrypts.
	oldVersion := rootBefore.Version[strings.LastIndex(rootBefore.Version, "/")+1:]
	enabled := false
	if err := emu.UpdateKey("contoso-byok", "platform-root", oldVersion, kvemu.KeyUpdate{Enabled: &enabled}); err != nil {
		t.Fatal(err)
	}
	stop()
	_, base, stop = start()
	for tenant, v := range cts {
		ct, service, _ := strings.Cut(v, "\x00")
		c := api{t: t, base: base, tenant: tenant}
		var out struct{ Plaintext string }
		c.must(service, "POST", "/v1/tenants/"+tenant+"/decrypt", map[string]any{"scope": "chat", "ciphertext": ct}, &out)
		if pt, _ := base64.StdEncoding.DecodeString(out.Plaintext); string(pt) != "secret of "+tenant {
			t.Fatalf("%s after the root key's old version was disabled: %q", tenant, pt)
		}
	}
	if strings.Contains(logs.String(), operator) {
		t.Fatal("a token appears in the server's logs")
	}
}
