package vault

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestControlErrors(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	s := f.s
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"short vault name", s.CreateVault(VaultConfig{Name: "ab", TenantID: tenantA}), ErrInvalid},
		{"vault name with --", s.CreateVault(VaultConfig{Name: "a--b", TenantID: tenantA}), ErrInvalid},
		{"vault name starting with a digit", s.CreateVault(VaultConfig{Name: "1abc", TenantID: tenantA}), ErrInvalid},
		{"vault without tenant", s.CreateVault(VaultConfig{Name: "abc"}), ErrInvalid},
		{"retention 5 days", s.CreateVault(VaultConfig{Name: "abc", TenantID: tenantA, RetentionDays: 5}), ErrInvalid},
		{"duplicate vault", s.CreateVault(VaultConfig{Name: "CONTOSO", TenantID: tenantA}), ErrConflict},
		{"unknown vault", s.SetOffline("nope", true), ErrNotFound},
		{"delete unknown vault", s.DeleteVault("nope"), ErrNotFound},
		{"unknown key", s.DeleteKey("contoso", "nope"), ErrNotFound},
		{"purge unknown key", s.PurgeKey("contoso", "nope"), ErrNotFound},
		{"recover a key that is not deleted", s.RecoverKey("contoso", "nope"), ErrNotFound},
		{"revoke unknown assignment", s.RevokeRole("contoso", "ra-999"), ErrNotFound},
		{"remove unknown assignment", s.RemoveRole("contoso", "ra-999"), ErrNotFound},
		{"update unknown version", s.UpdateKey("contoso", "nope", "v", KeyUpdate{}), ErrNotFound},
	}
	_, err := s.CreateKey("contoso", "bad name", KeySpec{})
	tests = append(tests, struct {
		name      string
		err, want error
	}{"bad key name", err, ErrInvalid})
	_, err = s.CreateKey("contoso", "k", KeySpec{Type: "oct"})
	tests = append(tests, struct {
		name      string
		err, want error
	}{"oct key", err, ErrInvalid})
	_, err = s.CreateKey("contoso", "k", KeySpec{Ops: []string{"fly"}})
	tests = append(tests, struct {
		name      string
		err, want error
	}{"unknown key op", err, ErrInvalid})
	for _, a := range []RoleAssignment{{Role: "Key Vault Crypto User"}, {PrincipalID: "x"}, {PrincipalID: "x", Role: "Owner"}, {PrincipalID: "x", Role: "Key Vault Reader", DataActions: []string{"a"}}} {
		_, err := s.AssignRole("contoso", a)
		tests = append(tests, struct {
			name      string
			err, want error
		}{"role " + a.Role, err, ErrInvalid})
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func TestControlKeys(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	s := f.s
	k, err := s.CreateKey("contoso", "cmk", KeySpec{Type: "EC", Curve: "P-521", Tags: map[string]string{"a": "b"}})
	if err != nil || k.Size != 521 || k.Type != "EC" || !strings.HasPrefix(k.ID, "https://contoso.vault.azure.net/keys/cmk/") {
		t.Fatalf("CreateKey %+v %v", k, err)
	}
	if err := s.SetKeyEnabled("contoso", "cmk", false); err != nil {
		t.Fatal(err)
	}
	exp := f.clk.Now().Add(time.Hour)
	if err := s.UpdateKey("contoso", "cmk", k.Version, KeyUpdate{Expires: &exp, Ops: []string{"SIGN"}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Key("contoso", "cmk", "")
	if err != nil || got.Enabled || !got.Expires.Equal(exp) || strings.Join(got.Ops, ",") != "sign" || got.Tags["a"] != "b" {
		t.Fatalf("Key %+v %v", got, err)
	}
	if err := s.UpdateKey("contoso", "cmk", "", KeyUpdate{Tags: map[string]string{"byok-tenant": "acme"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Key("contoso", "cmk", k.Version); err != nil || len(got.Tags) != 1 || got.Tags["byok-tenant"] != "acme" {
		t.Fatalf("tags after UpdateKey %+v %v", got.Tags, err)
	}
	if err := s.UpdateKey("contoso", "cmk", "", KeyUpdate{Tags: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Key("contoso", "cmk", ""); len(got.Tags) != 0 {
		t.Fatalf("an empty Tags map left %v", got.Tags)
	}
	if err := s.DeleteKey("contoso", "cmk"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateKey("contoso", "cmk", KeySpec{}); !errors.Is(err, ErrConflict) {
		t.Errorf("create over a deleted key: %v", err)
	}
	if err := s.RecoverKey("contoso", "cmk"); err != nil {
		t.Fatal(err)
	}
	id, err := s.AssignRole("contoso", RoleAssignment{PrincipalID: "p", DataActions: []string{"Microsoft.KeyVault/vaults/keys/read"}, Key: "cmk"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeRole("contoso", id); err != nil {
		t.Fatal(err)
	}
	ras, _ := s.RoleAssignments("contoso")
	if len(ras) != 2 || !ras[1].Revoked || ras[1].ID != id {
		t.Fatalf("assignments %+v", ras)
	}
	if err := s.RemoveRole("contoso", id); err != nil {
		t.Fatal(err)
	}
	if vs := s.Vaults(); len(vs) != 1 || vs[0].Name != "contoso" || vs[0].Network.DefaultAction != "Allow" {
		t.Fatalf("Vaults %+v", vs)
	}
	if err := s.DeleteVault("contoso"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Vault("contoso"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted vault: %v", err)
	}
}

func TestSnapshotRestore(t *testing.T) {
	f := newFixture(t, VaultConfig{PurgeProtection: true, Network: NetworkRules{DefaultAction: "Deny", AllowedIPs: []string{"192.0.2.0/24"}}})
	b := f.createKey("cmk", `{"kty":"RSA","tags":{"t":"v"}}`)
	f.createKey("ec", `{"kty":"EC-HSM","crv":"P-384"}`)
	f.createKey("gone", `{"kty":"RSA"}`)
	expect(t, f.do("DELETE", "/keys/gone", ""), 200, "", "", nil)
	expect(t, f.do("PUT", "/keys/cmk/rotationpolicy", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P60D"},"action":{"type":"Rotate"}}]}`), 200, "", "", nil)
	if err := f.s.CreateVault(VaultConfig{Name: "legacy", TenantID: tenantB, AccessPolicies: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetAccessPolicy("legacy", "p", []string{"get"}); err != nil {
		t.Fatal(err)
	}
	var ct struct{ Value string }
	expect(t, f.do("POST", "/keys/cmk/wrapkey", `{"alg":"RSA-OAEP-256","value":"c2hhcmU"}`), 200, "", "", &ct)
	snap, err := f.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}

	g := newFixture(t, VaultConfig{Name: "other"})
	if err := g.s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	g.clk.t = f.clk.Now()
	var pt struct{ Value string }
	expect(t, g.do("POST", "/keys/cmk/"+version(b.Key.Kid)+"/unwrapkey", `{"alg":"RSA-OAEP-256","value":"`+ct.Value+`"}`), 200, "", "", &pt)
	if pt.Value != "c2hhcmU" {
		t.Errorf("unwrapped %q after restore", pt.Value)
	}
	expect(t, g.do("GET", "/deletedkeys/gone", ""), 200, "", "", nil)
	expect(t, g.do("DELETE", "/deletedkeys/gone", ""), 403, "Forbidden", "", nil)
	if _, err := g.s.Vault("other"); !errors.Is(err, ErrNotFound) {
		t.Error("Restore kept a vault the snapshot does not have")
	}
	cfg, err := g.s.Vault("legacy")
	if err != nil || !cfg.AccessPolicies || cfg.TenantID != tenantB {
		t.Fatalf("legacy vault %+v %v", cfg, err)
	}
	// New role assignments do not reuse restored ids.
	id, err := g.s.AssignRole("contoso", RoleAssignment{PrincipalID: "q", Role: "Key Vault Reader"})
	if err != nil || id == "ra-1" {
		t.Fatalf("AssignRole after restore: %s %v", id, err)
	}
	again, err := g.s.Snapshot()
	if err != nil || len(again) < len(snap) {
		t.Fatalf("second snapshot: %d bytes, %v", len(again), err)
	}
	for _, bad := range []string{`not json`, `{"version":2}`, `{"version":1,"vaults":[{"config":{"name":"x"}}]}`,
		`{"version":1,"vaults":[{"config":{"name":"abc","tenantId":"t"},"keys":[{"name":"k","versions":[{"pkcs8":"AAAA"}]}]}]}`} {
		if err := g.s.Restore([]byte(bad)); err == nil {
			t.Errorf("Restore(%s) succeeded", bad)
		}
	}
	expect(t, g.do("GET", "/keys/cmk", ""), 200, "", "", nil) // a failed Restore changes nothing
}
