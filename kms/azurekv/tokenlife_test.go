package azurekv

import (
	"testing"
	"time"

	"github.com/openbyok/byok/kvemu"
)

// TestOneTokenRequestPerLifetime: calls reuse one token for as long as the
// SDK keeps it, and one more request fetches the next when the refresh
// window opens — never one per call. The emulator issues tokens that live
// five minutes and two seconds, so the SDK's refresh window (five minutes
// before expiry) opens two seconds after issue; azcore then refreshes at
// most once per 30 s (sdk/internal/temporal), which is why this test waits
// about half a minute of real time: the SDK reads its own clock, which no
// fake clock reaches.
func TestOneTokenRequestPerLifetime(t *testing.T) {
	emu := must(kvemu.Start(kvemu.Options{TokenLifetime: 5*time.Minute + 2*time.Second}))
	t.Cleanup(func() { _ = emu.Close() })
	dir := must(emu.CreateTenant(kvemu.Tenant{Name: "contoso"})).ID
	app := must(emu.CreateApp(kvemu.App{TenantID: dir}))
	secret := must(emu.AddSecret(app.ClientID, kvemu.Secret{})).Value
	must(0, emu.CreateVault(kvemu.VaultConfig{Name: "contoso", TenantID: dir, PurgeProtection: true}))
	must(emu.CreateKey("contoso", "cmk", kvemu.KeySpec{}))
	must(emu.AssignRole("contoso", kvemu.RoleAssignment{PrincipalID: app.ObjectID, Role: "Key Vault Crypto User"}))
	key := "https://contoso.vault.azure.net/keys/cmk"
	p := must(New(Config{KeyID: key, TenantID: dir, Credential: ClientSecret{ClientID: app.ClientID, Secret: secret}, Transport: emu.HTTPClient()}))
	requests := func() int { return emu.TokenCount(dir, app.ClientID).Requests }

	start := time.Now()
	calls := 0
	for requests() < 2 {
		if time.Since(start) > 90*time.Second {
			t.Fatalf("no second token request in %v (%d calls)", time.Since(start), calls)
		}
		must(p.Unwrap(bg, must(p.Wrap(bg, key, []byte("share")))))
		calls++
		if calls > 20 {
			time.Sleep(100 * time.Millisecond) // keep calling, gently, until the SDK renews
		}
	}
	renewed := time.Since(start)
	if renewed < 2*time.Second {
		t.Fatalf("a second token was requested %v after the first, before the refresh window opened", renewed)
	}
	for range 20 {
		must(p.Unwrap(bg, must(p.Wrap(bg, key, []byte("share")))))
	}
	if got := requests(); got != 2 {
		t.Fatalf("%d token requests after the renewal and 20 more round trips, want 2", got)
	}
	t.Logf("%d round trips over %v made 2 token requests; the second came %v after the first", calls+20, time.Since(start).Round(time.Second), renewed.Round(time.Second))
}
