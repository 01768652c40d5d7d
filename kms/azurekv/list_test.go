package azurekv

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kvemu"
)

// TestListKeys lists a vault's keys by name with their versions newest
// first, each with its type, size and enabled state.
func TestListKeys(t *testing.T) {
	e := newEnv(t)
	first := must(e.emu.Key("contoso", "cmk", ""))
	e.clk.Advance(time.Minute)
	second := must(e.emu.RotateKey("contoso", "cmk"))
	off := false
	if err := e.emu.UpdateKey("contoso", "cmk", first.Version, kvemu.KeyUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	must(e.emu.CreateKey("contoso", "archive", kvemu.KeySpec{Type: "RSA-HSM", Size: 3072}))
	must(e.emu.CreateKey("contoso", "signing", kvemu.KeySpec{Type: "EC"}))

	keys, err := ListKeys(bg, e.config(""), contoso)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	if len(keys) != 3 || names[0] != "archive" || names[1] != "cmk" || names[2] != "signing" {
		t.Fatalf("keys %v, want archive, cmk, signing", names)
	}
	cmk := keys[1]
	if cmk.KeyID != contoso+"/keys/cmk" || len(cmk.Versions) != 2 || cmk.MoreVersions {
		t.Fatalf("cmk: %+v", cmk)
	}
	newest, oldest := cmk.Versions[0], cmk.Versions[1]
	if newest.Version != second.Version || newest.KeyID != contoso+"/keys/cmk/"+second.Version ||
		!newest.Enabled || newest.Type != "RSA" || newest.Size != 2048 || !newest.Usable(time.Now()) {
		t.Errorf("newest version: %+v, want enabled RSA 2048 %s", newest, second.Version)
	}
	if oldest.Version != first.Version || oldest.Enabled || oldest.Usable(time.Now()) {
		t.Errorf("oldest version: %+v, want disabled %s", oldest, first.Version)
	}
	if v := keys[0].Versions; len(v) != 1 || v[0].Type != "RSA-HSM" || v[0].Size != 3072 || !v[0].Usable(time.Now()) {
		t.Errorf("archive: %+v", v)
	}
	if v := keys[2].Versions; len(v) != 1 || v[0].Type != "EC" || v[0].Usable(time.Now()) {
		t.Errorf("signing (EC, not usable): %+v", v)
	}

	// A key identifier names its vault too.
	again, err := ListKeys(bg, e.config(""), contoso+"/keys/cmk/"+second.Version)
	if err != nil || len(again) != 3 {
		t.Errorf("ListKeys by key id: %d keys, %v", len(again), err)
	}
}

// TestListKeysVersionLimit keeps the newest MaxListedVersions versions.
func TestListKeysVersionLimit(t *testing.T) {
	e := newEnv(t)
	var newest kvemu.KeyInfo
	for range MaxListedVersions + 1 {
		e.clk.Advance(time.Minute)
		newest = must(e.emu.RotateKey("contoso", "cmk"))
	}
	keys, err := ListKeys(bg, e.config(""), contoso)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || len(keys[0].Versions) != MaxListedVersions || !keys[0].MoreVersions || keys[0].Versions[0].Version != newest.Version {
		t.Fatalf("listing: %+v", keys)
	}
}

// TestListKeysErrors: each failure is a classified *kms.Error.
func TestListKeysErrors(t *testing.T) {
	e := newEnv(t)
	noRole := must(e.emu.CreateApp(kvemu.App{TenantID: e.customer, DisplayName: "no role"}))
	noRoleSecret := must(e.emu.AddSecret(noRole.ClientID, kvemu.Secret{})).Value
	for name, tc := range map[string]struct {
		cfg    func(Config) Config
		vault  string
		class  kms.Class
		reason kms.Reason
	}{
		"no role": {cfg: func(c Config) Config {
			c.Credential = ClientSecret{ClientID: noRole.ClientID, Secret: noRoleSecret}
			return c
		}, vault: contoso, class: kms.Authoritative, reason: kms.ReasonDenied},
		"wrong secret": {cfg: func(c Config) Config {
			c.Credential = ClientSecret{ClientID: e.app.ClientID, Secret: "not-the-secret"}
			return c
		}, vault: contoso, class: kms.Authoritative, reason: kms.ReasonUnauthenticated},
		"unknown vault": {vault: "https://nowhere.vault.azure.net", class: kms.Authoritative, reason: kms.ReasonNotFound},
		"malformed url": {vault: "https://contoso.example.com", class: kms.Invalid, reason: kms.ReasonBadRequest},
		"a path":        {vault: contoso + "/secrets/x", class: kms.Invalid, reason: kms.ReasonBadRequest},
		"empty":         {vault: "", class: kms.Invalid, reason: kms.ReasonBadRequest},
		"no credential": {cfg: func(c Config) Config { c.Credential = nil; return c }, vault: contoso, class: kms.Invalid, reason: kms.ReasonBadRequest},
		"cancelled ctx": {cfg: func(c Config) Config { return c }, vault: "cancel", class: kms.Transient, reason: kms.ReasonCanceled},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := e.config("")
			if tc.cfg != nil {
				cfg = tc.cfg(cfg)
			}
			ctx, vault := bg, tc.vault
			if vault == "cancel" {
				c, cancel := context.WithCancel(bg)
				cancel()
				ctx, vault = c, contoso
			}
			keys, err := ListKeys(ctx, cfg, vault)
			var ke *kms.Error
			if !errors.As(err, &ke) || ke.Class != tc.class || ke.Reason != tc.reason || keys != nil {
				t.Fatalf("ListKeys: %v (%T), want %v/%v", err, err, tc.class, tc.reason)
			}
			if strings.Contains(err.Error(), "not-the-secret") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestParseVaultURL accepts vault URLs and key identifiers, nothing else.
func TestParseVaultURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://contoso.vault.azure.net":                 "contoso.vault.azure.net",
		"https://Contoso.vault.azure.net/":                "contoso.vault.azure.net",
		"https://contoso.vault.azure.net/keys/cmk":        "contoso.vault.azure.net",
		"https://hsm1.managedhsm.azure.net":               "hsm1.managedhsm.azure.net",
		"https://contoso.privatelink.vaultcore.azure.net": "contoso.privatelink.vaultcore.azure.net",
	} {
		id, err := ParseVaultURL(in)
		if err != nil || id.Host != want || id.Name != "" || id.VaultURL() != "https://"+want {
			t.Errorf("ParseVaultURL(%q) = %+v, %v; want host %s", in, id, err, want)
		}
	}
	for _, in := range []string{"", "contoso", "http://contoso.vault.azure.net", "https://contoso.vault.azure.net/keys",
		"https://contoso.vault.azure.net/certificates/c", "https://contoso.example.com", "https://a.vault.azure.net"} {
		var ke *KeyIDError
		if _, err := ParseVaultURL(in); !errors.As(err, &ke) {
			t.Errorf("ParseVaultURL(%q): %v, want a *KeyIDError", in, err)
		}
	}
}
