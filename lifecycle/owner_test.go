package lifecycle_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// TestSettingsRefusePlatformKey: the platform root key, or a version of
// it, cannot be a tenant's customer key, whatever its case.
func TestSettingsRefusePlatformKey(t *testing.T) {
	var prk string
	f := newFixture(t, func(c *lifecycle.Config) { prk = c.PlatformKeyID })
	f.createTenant()
	ctx := context.Background()
	for _, id := range []string{prk, prk + "/", prk + "/v1", strings.ToUpper(prk)} {
		s := f.settings()
		s.KeyID = id
		_, err := f.svc.Configure(ctx, admin, "t1", s)
		var fe *lifecycle.FieldError
		if !errors.As(err, &fe) || fe.Field != "key_id" || !strings.Contains(fe.Reason, "platform's own root key") {
			t.Errorf("Configure with key id %q: %v, want a key_id field error", id, err)
		}
	}
	s := f.settings()
	s.KeyID = prk + "x" // another key whose name starts alike
	if _, err := f.svc.Configure(ctx, admin, "t1", s); err != nil {
		t.Errorf("Configure with key id %q: %v", s.KeyID, err)
	}

	active := newFixture(t, func(c *lifecycle.Config) { prk = c.PlatformKeyID })
	active.activate(nil)
	next := active.settings()
	next.KeyID = prk + "/v2"
	if _, err := active.svc.Rotate(ctx, admin, "t1", lifecycle.RotateRequest{Settings: &next}); !errors.As(err, new(*lifecycle.FieldError)) {
		t.Errorf("Rotate onto the platform key: %v, want a field error", err)
	}
}

// TestConnectorGetsTenant: the connector sees the record's tenant in the
// settings, never one the caller put there, and it is not stored.
func TestConnectorGetsTenant(t *testing.T) {
	f := newFixture(t, nil)
	f.createTenant()
	ctx := context.Background()
	s := f.settings()
	s.Tenant = "t2" // a caller cannot choose it
	f.must(f.svc.Configure(ctx, admin, "t1", s))
	if _, err := f.svc.Test(ctx, admin, "t1"); err != nil {
		t.Fatal(err)
	}
	f.conn.mu.Lock()
	seen := slices.Clone(f.conn.tenants)
	f.conn.mu.Unlock()
	if len(seen) < 2 || slices.ContainsFunc(seen, func(s string) bool { return s != "t1" }) {
		t.Errorf("the connector saw tenants %q, want t1 on every call", seen)
	}
	if got := f.status().Settings.Tenant; got != "" {
		t.Errorf("the status shows stored settings with tenant %q, want none stored", got)
	}
}

// crossEnv is a platform app in its own directory and Fabrikam's
// directory, which consented to it, with the vault fabrikam-byok whose key
// cmk is tagged for byok tenant "fab" and another key "plain" untagged.
type crossEnv struct {
	emu      *kvemu.Emulator
	platform kvemu.App
	secret   string
	dir      string
	vault    string
}

func newCrossEnv(t *testing.T) *crossEnv {
	t.Helper()
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	e := &crossEnv{emu: emu, vault: "https://fabrikam-byok.vault.azure.net"}
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	plat, err := emu.CreateTenant(kvemu.Tenant{Name: "platform"})
	step(err)
	e.platform, err = emu.CreateApp(kvemu.App{TenantID: plat.ID, DisplayName: "byok platform", MultiTenant: true})
	step(err)
	sec, err := emu.AddSecret(e.platform.ClientID, kvemu.Secret{})
	step(err)
	e.secret = sec.Value
	fab, err := emu.CreateTenant(kvemu.Tenant{Name: "Fabrikam"})
	step(err)
	e.dir = fab.ID
	sp, err := emu.Consent(e.dir, e.platform.ClientID)
	step(err)
	step(emu.CreateVault(kvemu.VaultConfig{Name: "fabrikam-byok", TenantID: e.dir, PurgeProtection: true}))
	_, err = emu.CreateKey("fabrikam-byok", "cmk", kvemu.KeySpec{Tags: map[string]string{azurekv.OwnerTagName: "fab"}})
	step(err)
	_, err = emu.CreateKey("fabrikam-byok", "plain", kvemu.KeySpec{})
	step(err)
	_, err = emu.AssignRole("fabrikam-byok", kvemu.RoleAssignment{PrincipalID: sp, Role: "Key Vault Crypto User"})
	step(err)
	return e
}

// TestCrossTenantPlatformApp: tenant t1 names Fabrikam's directory and key
// with the platform's app, which Fabrikam consented to for its own byok
// tenant "fab". t1's Test fails at ownership, Proceed is refused, the key
// picker shows none of Fabrikam's keys, and nothing is ever wrapped under
// Fabrikam's key; "fab" itself passes.
func TestCrossTenantPlatformApp(t *testing.T) {
	ctx := context.Background()
	e := newCrossEnv(t)
	conn := azure.NewConnector(azurekv.PlatformApp{ClientID: e.platform.ClientID, Secret: e.secret})
	conn.Transport = e.emu.HTTPClient()
	f := newFixture(t, func(c *lifecycle.Config) { c.Connectors = []lifecycle.Connector{conn} })
	f.clock.Set(time.Now().UTC())
	f.createTenant()
	if err := f.svc.CreateTenant(ctx, operator, "fab", byok.Grace, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	settings := azure.Settings(e.vault+"/keys/cmk", azure.Options{DirectoryID: e.dir, ClientID: e.platform.ClientID, Credential: azure.CredentialPlatformApp}, lifecycle.Secret{})

	f.must(f.svc.Configure(ctx, admin, "t1", settings))
	r, err := f.svc.Test(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	own := checkOf(r, azurekv.CheckOwnership)
	if r.Passed() || own.Outcome != lifecycle.Fail || !strings.Contains(own.Remedy, "--tags byok-tenant=t1") || strings.Contains(own.Detail+own.Remedy, "fab ") {
		t.Fatalf("t1's Test: passed %v, ownership %+v", r.Passed(), own)
	}
	if rt := checkOf(r, azurekv.CheckRoundTrip); rt.Outcome != lifecycle.Outcome(azurekv.Skip) {
		t.Errorf("round-trip after a failed ownership check: %+v", rt)
	}
	if _, err := f.svc.Proceed(ctx, admin, "t1", f.clock.Now().Add(time.Hour), nil); err == nil {
		t.Fatal("Proceed after a failed ownership check succeeded")
	}
	f.wantState(lifecycle.StateDraft)
	keys, err := f.svc.ListVaultKeys(ctx, admin, "t1", e.vault)
	if err != nil || len(keys) != 0 {
		t.Fatalf("t1 lists Fabrikam's vault: %+v, %v; want no key", keys, err)
	}
	if n := e.emu.CallCount("fabrikam-byok", kvemu.OpWrapKey, 0); n != 0 {
		t.Fatalf("%d wrapKey calls on Fabrikam's vault for t1, want 0", n)
	}

	// Fabrikam's own byok tenant passes and sees its tagged key only.
	f.must(f.svc.Configure(ctx, admin, "fab", settings))
	if r, err := f.svc.Test(ctx, admin, "fab"); err != nil || !r.Passed() || checkOf(r, azurekv.CheckOwnership).Outcome != lifecycle.Pass {
		t.Fatalf("fab's Test: %v\n%+v", err, r.Checks)
	}
	keys, err = f.svc.ListVaultKeys(ctx, admin, "fab", e.vault)
	if err != nil || len(keys) != 1 || keys[0].Name != "cmk" {
		t.Fatalf("fab lists %+v, %v; want cmk only", keys, err)
	}
	if n := e.emu.CallCount("fabrikam-byok", kvemu.OpWrapKey, 0); n == 0 {
		t.Error("fab's passing Test made no wrapKey call")
	}
}
