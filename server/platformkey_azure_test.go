package server

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kvemu"
)

// TestPlatformKeyRecoveryLevel: GET /v1/platform-key shows the recovery
// level Key Vault reports for an Azure platform key (kms.KeyInfo has no
// such field: it reaches the route through the provider's RecoveryLevel),
// with and without the metrics' instrumented wrapper, and leaves it out for
// a provider that has none.
func TestPlatformKeyRecoveryLevel(t *testing.T) {
	e := newEnv(t)
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	dir, err := emu.CreateTenant(kvemu.Tenant{Name: "platform"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := emu.CreateApp(kvemu.App{TenantID: dir.ID, DisplayName: "byok"})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := emu.AddSecret(app.ClientID, kvemu.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	keyIn := func(vault string, purgeProtection bool) string {
		if err := emu.CreateVault(kvemu.VaultConfig{Name: vault, TenantID: dir.ID, PurgeProtection: purgeProtection}); err != nil {
			t.Fatal(err)
		}
		if _, err := emu.CreateKey(vault, "root", kvemu.KeySpec{Type: "RSA-HSM", Size: 3072}); err != nil {
			t.Fatal(err)
		}
		if _, err := emu.AssignRole(vault, kvemu.RoleAssignment{PrincipalID: app.ObjectID, Role: "Key Vault Crypto Service Encryption User"}); err != nil {
			t.Fatal(err)
		}
		return "https://" + vault + ".vault.azure.net/keys/root"
	}
	azure := func(keyID string) kms.Provider {
		p, err := azurekv.New(azurekv.Config{KeyID: keyID, TenantID: dir.ID, Transport: emu.HTTPClient(), MaxRetries: -1,
			Credential: azurekv.ClientSecret{ClientID: app.ClientID, Secret: secret.Value}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	protected, purgeable := keyIn("platform-keys", true), keyIn("platform-loose", false)
	m := NewMetrics(nil)
	for _, tc := range []struct {
		name     string
		provider kms.Provider
		keyID    string
		want     string
		calls    int64 // instrumented provider calls of one GET
	}{
		{"azure, purge protection", azure(protected), protected, "Recoverable", 0},
		{"azure, purge protection, instrumented", m.InstrumentProvider("platform", azure(protected)), protected, "Recoverable", 2},
		{"azure, no purge protection, instrumented", m.InstrumentProvider("platform", azure(purgeable)), purgeable, "Recoverable+Purgeable", 2},
		{"fake", e.platform, "fake:prk", "", 0},
		{"fake, instrumented", m.InstrumentProvider("platform", e.platform), "fake:prk", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Config{Lifecycle: e.lc, Store: e.db, Audit: e.log, PlatformKMS: tc.provider, PlatformKeyID: tc.keyID, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			before := m.providerCalls()
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/v1/platform-key", nil)
			req.Header.Set("Authorization", "Bearer "+e.operator)
			h.ServeHTTP(rec, req)
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != 200 || err != nil {
				t.Fatalf("GET /v1/platform-key = %d %s", rec.Code, rec.Body)
			}
			level, present := got["recovery_level"]
			if tc.want == "" && present || tc.want != "" && level != tc.want {
				t.Errorf("recovery_level = %v (present %v), want %q: %s", level, present, tc.want, rec.Body)
			}
			if got["key_id"] != tc.keyID || got["enabled"] != true {
				t.Errorf("the view: %s", rec.Body)
			}
			if n := m.providerCalls() - before; n != tc.calls {
				t.Errorf("%d instrumented provider calls, want %d (Describe, and RecoveryLevel if the provider has it)", n, tc.calls)
			}
		})
	}
}
