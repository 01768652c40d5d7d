package azurekv

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/kvemu"
)

const phsm = "https://phsm.managedhsm.azure.net"

// hsmEnv adds to env the Managed HSM "phsm" (purge protection on), where
// the customer's app is Managed HSM Crypto Service Encryption User, with the
// 256-bit oct-HSM key "root".
func hsmEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	if err := e.emu.CreateVault(kvemu.VaultConfig{Name: "phsm", TenantID: e.customer, ManagedHSM: true, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	e.grant(t, "phsm", e.app.ObjectID, kvemu.RoleAssignment{Role: "Managed HSM Crypto Service Encryption User"})
	must(e.emu.CreateKey("phsm", "root", kvemu.KeySpec{Type: "oct-HSM", Size: 256}))
	return e
}

// TestOctConformance runs the provider suite against an oct-HSM key of a
// Managed HSM: AES key wrap is deterministic, the rest of the contract
// holds as for RSA.
func TestOctConformance(t *testing.T) {
	e := hsmEnv(t)
	must(e.emu.CreateKey("phsm", "other", kvemu.KeySpec{Type: "oct-HSM", Size: 256}))
	kmstest.RunConformance(t, kmstest.Harness{
		Provider:         e.provider(t, e.config(phsm+"/keys/root")),
		KeyID:            phsm + "/keys/root",
		OtherKeyID:       phsm + "/keys/other",
		UnknownKeyID:     phsm + "/keys/missing",
		UnknownVersionID: phsm + "/keys/root/" + strings.Repeat("cd", 16),
		NewVersion: func(t testing.TB) string {
			return must(e.emu.RotateKey("phsm", "root")).ID
		},
		Deterministic: true,
	})
}

// TestOctVersionless: a versionless id follows rotation, old values keep
// their version, the key type costs one Describe for the provider's life,
// and the algorithm follows the plaintext's length.
func TestOctVersionless(t *testing.T) {
	e := hsmEnv(t)
	p := e.provider(t, e.config(phsm+"/keys/root"))
	share := bytes.Repeat([]byte{7}, 32)
	w1 := must(p.Wrap(bg, phsm+"/keys/root", share))
	v1 := must(e.emu.Key("phsm", "root", "")).ID
	if w1.KeyID != v1 || w1.Algorithm != AlgorithmA256KW || len(w1.Ciphertext) != 40 {
		t.Fatalf("Wrap = %s %s %d bytes; want %s A256KW 40 bytes", w1.KeyID, w1.Algorithm, len(w1.Ciphertext), v1)
	}
	v2 := must(e.emu.RotateKey("phsm", "root")).ID
	w2 := must(p.Wrap(bg, phsm+"/keys/root", share))
	if w2.KeyID != v2 {
		t.Errorf("after rotation Wrap recorded %s, want %s", w2.KeyID, v2)
	}
	for _, w := range []kms.Wrapped{w1, w2} {
		if got := must(p.Unwrap(bg, w)); !bytes.Equal(got, share) {
			t.Errorf("Unwrap under %s returned other bytes", w.KeyID)
		}
	}
	odd := must(p.Wrap(bg, phsm+"/keys/root", []byte("seven b")))
	if odd.Algorithm != AlgorithmAESKeyWrapPad {
		t.Errorf("Wrap of 7 bytes used %s, want %s", odd.Algorithm, AlgorithmAESKeyWrapPad)
	}
	if got := must(p.Unwrap(bg, odd)); string(got) != "seven b" {
		t.Errorf("Unwrap of the padded wrap = %q", got)
	}
	for range 5 {
		must(p.Wrap(bg, phsm+"/keys/root", share))
	}
	if n := e.emu.CallCount("phsm", kvemu.OpGetKey, 200); n != 1 {
		t.Errorf("%d GetKey calls for 9 wraps; want 1 (the key type, once)", n)
	}

	// Seal (byok's sealed secrets) works under the AES key.
	sealed := must(kms.Seal(bg, p, phsm+"/keys/root", []byte("a certificate key"), []byte("tenant-1")))
	if got := must(kms.Open(bg, p, sealed, []byte("tenant-1"))); string(got) != "a certificate key" {
		t.Errorf("Open = %q", got)
	}

	// A provider that has not described the key unwraps by the recorded
	// algorithm alone.
	fresh := e.provider(t, e.config(phsm+"/keys/root"))
	if got := must(fresh.Unwrap(bg, w1)); !bytes.Equal(got, share) {
		t.Error("a fresh provider could not unwrap")
	}
}

// TestOctInPremiumVault: an oct-HSM key in a (premium) vault is taken for
// RSA until the vault refuses RSA-OAEP-256; then its type is learnt once.
func TestOctInPremiumVault(t *testing.T) {
	e := newEnv(t)
	must(e.emu.CreateKey("contoso", "aes", kvemu.KeySpec{Type: "oct-HSM"}))
	p := e.provider(t, e.config(contoso+"/keys/aes"))
	w := must(p.Wrap(bg, contoso+"/keys/aes", make([]byte, 32)))
	if w.Algorithm != AlgorithmA256KW {
		t.Errorf("algorithm %s", w.Algorithm)
	}
	must(p.Wrap(bg, contoso+"/keys/aes", make([]byte, 32)))
	if n := e.emu.CallCount("contoso", kvemu.OpWrapKey, 400); n != 1 {
		t.Errorf("%d refused wraps; want 1", n)
	}
}

func TestCheckRootKeyHappy(t *testing.T) {
	e := hsmEnv(t)
	must(e.emu.CreateKey("phsm", "rsa", kvemu.KeySpec{Type: "RSA-HSM", Size: 2048}))
	for _, tc := range []struct {
		key, typ, alg string
		size          int
		hsm           bool
	}{
		{phsm + "/keys/root", "oct-HSM", AlgorithmA256KW, 256, true},
		{phsm + "/keys/rsa", "RSA-HSM", AlgorithmRSAOAEP256, 2048, true},
		{contoso + "/keys/cmk", "RSA", AlgorithmRSAOAEP256, 2048, false},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			info, err := CheckRootKey(bg, e.config(tc.key))
			if err != nil {
				t.Fatalf("CheckRootKey: %v", err)
			}
			name := strings.TrimPrefix(tc.key[strings.LastIndex(tc.key, "/"):], "/")
			vault := "phsm"
			if !tc.hsm {
				vault = "contoso"
			}
			cur := must(e.emu.Key(vault, name, ""))
			if info.KeyID != cur.ID || info.Type != tc.typ || info.Size != tc.size || info.Algorithm != tc.alg ||
				info.ManagedHSM != tc.hsm || info.RecoveryLevel != "Recoverable" {
				t.Errorf("info %+v", info)
			}
		})
	}
}

func TestCheckRootKeyFailures(t *testing.T) {
	e := hsmEnv(t)
	past := e.clk.Now().Add(-time.Hour)
	must(e.emu.CreateKey("phsm", "aes128", kvemu.KeySpec{Type: "oct-HSM", Size: 128}))
	must(e.emu.CreateKey("phsm", "off", kvemu.KeySpec{Type: "oct-HSM", Disabled: true}))
	must(e.emu.CreateKey("phsm", "old", kvemu.KeySpec{Type: "oct-HSM", Expires: past}))
	must(e.emu.CreateKey("phsm", "wraponly", kvemu.KeySpec{Type: "oct-HSM", Ops: []string{"wrapKey"}}))
	must(e.emu.CreateKey("phsm", "ec", kvemu.KeySpec{Type: "EC-HSM"}))
	must(e.emu.CreateKey("contoso", "ec", kvemu.KeySpec{Type: "EC"}))
	if err := e.emu.CreateVault(kvemu.VaultConfig{Name: "loose", TenantID: e.customer}); err != nil {
		t.Fatal(err)
	}
	must(e.emu.CreateKey("loose", "k", kvemu.KeySpec{}))
	e.grant(t, "loose", e.app.ObjectID, kvemu.RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})
	if err := e.emu.CreateVault(kvemu.VaultConfig{Name: "loosehsm", TenantID: e.customer, ManagedHSM: true}); err != nil {
		t.Fatal(err)
	}
	must(e.emu.CreateKey("loosehsm", "k", kvemu.KeySpec{Type: "oct-HSM"}))
	e.grant(t, "loosehsm", e.app.ObjectID, kvemu.RoleAssignment{Role: "Managed HSM Crypto Service Encryption User"})
	if err := e.emu.CreateVault(kvemu.VaultConfig{Name: "down", TenantID: e.customer, ManagedHSM: true, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.SetOffline("down", true); err != nil {
		t.Fatal(err)
	}

	// An identity without any role, and one that may only read.
	stranger := must(e.emu.CreateApp(kvemu.App{TenantID: e.customer}))
	strangerSecret := must(e.emu.AddSecret(stranger.ClientID, kvemu.Secret{})).Value
	asStranger := func(key string) Config {
		c := e.config(key)
		c.Credential = ClientSecret{ClientID: stranger.ClientID, Secret: strangerSecret}
		return c
	}
	reader := must(e.emu.CreateApp(kvemu.App{TenantID: e.customer}))
	readerSecret := must(e.emu.AddSecret(reader.ClientID, kvemu.Secret{})).Value
	e.grant(t, "phsm", reader.ObjectID, kvemu.RoleAssignment{Role: "Managed HSM Crypto Auditor"})

	for _, tc := range []struct {
		name   string
		cfg    Config
		check  string
		reason string
		remedy string
	}{
		{"secret id", e.config(contoso + "/secrets/prk"), RootCheckKeyID, "this is a secret id", "Keys blade"},
		{"certificate id", e.config(contoso + "/certificates/prk"), RootCheckKeyID, "this is a certificate id", "Keys blade"},
		{"malformed id", e.config("https://example.com/keys/prk"), RootCheckKeyID, "not a Key Vault or Managed HSM host", "key identifier"},
		{"no purge protection", e.config("https://loose.vault.azure.net/keys/k"), RootCheckPurgeProtection, "Recoverable+Purgeable", "az keyvault update --name loose --enable-purge-protection true"},
		{"no purge protection on an HSM", e.config("https://loosehsm.managedhsm.azure.net/keys/k"), RootCheckPurgeProtection, "lacks purge protection", "az keyvault update-hsm --hsm-name loosehsm --enable-purge-protection true"},
		{"disabled", e.config(phsm + "/keys/off"), RootCheckEnabled, "is disabled", "az keyvault key set-attributes --hsm-name phsm --name off --version "},
		{"expired", e.config(phsm + "/keys/old"), RootCheckValidity, "expired at", "az keyvault key rotate --hsm-name phsm --name old"},
		{"EC key in a vault", e.config(contoso + "/keys/ec"), RootCheckKeyType, "an EC key signs and cannot wrap", "--kty RSA-HSM --size 3072"},
		{"EC-HSM key in an HSM", e.config(phsm + "/keys/ec"), RootCheckKeyType, "type EC-HSM", "--kty oct-HSM --size 256"},
		{"oct-HSM of 128 bits", e.config(phsm + "/keys/aes128"), RootCheckKeyType, "not a 256-bit AES key", "az keyvault key create --hsm-name phsm --name aes128 --kty oct-HSM --size 256"},
		{"no unwrapKey in key_ops", e.config(phsm + "/keys/wraponly"), RootCheckKeyOps, "lack unwrapKey", "--ops wrapKey unwrapKey"},
		{"no role on the vault", asStranger(contoso + "/keys/cmk"), RootCheckAccess, "refused byok's identity", `--role "Key Vault Crypto Service Encryption User" --assignee-object-id ` + stranger.ObjectID},
		{"no role on the HSM", asStranger(phsm + "/keys/root"), RootCheckAccess, "refused byok's identity", `--role "Managed HSM Crypto Service Encryption User" --assignee-object-id <object id of byok's identity> --scope /keys/root`},
		{"read-only role on the HSM", func() Config {
			c := e.config(phsm + "/keys/root")
			c.Credential = ClientSecret{ClientID: reader.ClientID, Secret: readerSecret}
			return c
		}(), RootCheckAccess, "while wrapping 32 random bytes", "Managed HSM Crypto Service Encryption User"},
		{"unknown key", e.config(phsm + "/keys/nope"), RootCheckKeyFound, "no such key", "az keyvault key create --hsm-name phsm --name nope"},
		{"wrong secret", func() Config {
			c := e.config(phsm + "/keys/root")
			c.Credential = ClientSecret{ClientID: e.app.ClientID, Secret: "not-the-secret"}
			return c
		}(), RootCheckAuthentication, "could not sign in", "platform_key.azure.credential"},
		{"vault offline", e.config("https://down.managedhsm.azure.net/keys/k"), RootCheckReach, "did not answer", "network path to https://down.managedhsm.azure.net"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Timeout = 5 * time.Second
			_, err := CheckRootKey(bg, tc.cfg)
			var re *RootKeyError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *RootKeyError", err, err)
			}
			if re.Check != tc.check || !strings.Contains(re.Reason, tc.reason) || !strings.Contains(re.Remedy, tc.remedy) {
				t.Errorf("got check %q, reason %q, remedy %q; want %q, …%s…, …%s…", re.Check, re.Reason, re.Remedy, tc.check, tc.reason, tc.remedy)
			}
			msg := err.Error()
			if !strings.Contains(msg, re.Remedy) || !strings.Contains(msg, tc.cfg.KeyID) {
				t.Errorf("message %q lacks the remedy or the key id", msg)
			}
			for _, secret := range []string{e.secret, strangerSecret, readerSecret} {
				if strings.Contains(msg, secret) {
					t.Errorf("message shows a client secret: %q", msg)
				}
			}
			if re.Temporary() != (tc.check == RootCheckReach) {
				t.Errorf("Temporary() = %v", re.Temporary())
			}
			if re.Err != nil {
				var ke *kms.Error
				if !errors.As(err, &ke) {
					t.Errorf("Err %v is not a *kms.Error", re.Err)
				}
			}
		})
	}
}

// TestRootKeyTypeRules covers the type rules kvemu cannot produce keys for
// (it refuses RSA keys under 2048 bits, as Key Vault does).
func TestRootKeyTypeRules(t *testing.T) {
	vault := must(ParseKeyID(contoso + "/keys/k"))
	hsm := must(ParseKeyID(phsm + "/keys/k"))
	for _, tc := range []struct {
		id   KeyID
		info kms.KeyInfo
		want string // "" fits
	}{
		{vault, kms.KeyInfo{Type: "RSA", Size: 1024}, "has 1024 bits; byok needs at least 2048"},
		{vault, kms.KeyInfo{Type: "RSA", Size: 3072}, ""},
		{vault, kms.KeyInfo{Type: "RSA-HSM", Size: 4096}, ""},
		{vault, kms.KeyInfo{Type: "oct-HSM"}, "preview of Key Vault Premium"},
		{hsm, kms.KeyInfo{Type: "RSA-HSM", Size: 2048}, ""},
		{hsm, kms.KeyInfo{Type: "oct-HSM"}, ""},
		{hsm, kms.KeyInfo{Type: "oct-HSM", Size: 128}, "has 128 bits; byok needs a 256-bit AES key"},
		{hsm, kms.KeyInfo{Type: "EC-HSM"}, "an EC key signs and cannot wrap"},
	} {
		reason, remedy := rootKeyType(tc.id, tc.info)
		if (tc.want == "") != (reason == "") || !strings.Contains(reason, tc.want) {
			t.Errorf("%s %s %d: reason %q, want …%s…", tc.id.Host, tc.info.Type, tc.info.Size, reason, tc.want)
		}
		if reason != "" && !strings.HasPrefix(remedy, "create such a key") && !strings.Contains(remedy, "az keyvault key create") {
			t.Errorf("remedy %q names no command", remedy)
		}
	}
}

func TestCheckRootKeyConfig(t *testing.T) {
	_, err := CheckRootKey(bg, Config{KeyID: phsm + "/keys/root", TenantID: "not a tenant"})
	var re *RootKeyError
	if !errors.As(err, &re) || re.Check != RootCheckConfig || !strings.Contains(re.Error(), "Credential is nil") {
		t.Errorf("error %v", err)
	}
}

// TestOctModeEncrypt: an AES key cannot serve ModeEncrypt, whose roles
// grant encrypt and decrypt only; Wrap says so without a vault call.
func TestOctModeEncrypt(t *testing.T) {
	e := hsmEnv(t)
	cfg := e.config(phsm + "/keys/root")
	cfg.Mode = ModeEncrypt
	p := e.provider(t, cfg)
	_, err := p.Wrap(bg, phsm+"/keys/root", make([]byte, 32))
	var ke *kms.Error
	if !errors.As(err, &ke) || ke.Class != kms.Invalid || !strings.Contains(err.Error(), `Mode "encrypt" needs an RSA key`) {
		t.Errorf("error %v", err)
	}
	if n := e.emu.CallCount("phsm", kvemu.OpWrapKey, 0) + e.emu.CallCount("phsm", kvemu.OpEncrypt, 0); n != 0 {
		t.Errorf("%d wrap or encrypt calls", n)
	}
}
