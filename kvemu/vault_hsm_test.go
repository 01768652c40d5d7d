package kvemu

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

const hsmURL = "https://hsm1.managedhsm.azure.net"

// hsmEnv adds the Managed HSM "hsm1" to a vault env, where the env's app is
// Managed HSM Crypto User, and returns a client of it.
func hsmEnv(t *testing.T) (*vaultEnv, *azkeys.Client) {
	t.Helper()
	env := newVaultEnv(t)
	if err := env.emu.CreateVault(VaultConfig{Name: "hsm1", TenantID: env.tenant, ManagedHSM: true, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.AssignRole("hsm1", RoleAssignment{PrincipalID: env.app.ObjectID, Role: "Managed HSM Crypto User"}); err != nil {
		t.Fatal(err)
	}
	return env, env.keysWith(t, hsmURL, env.cred(t), -1, "")
}

func wrapWith(c *azkeys.Client, name, version string, alg azkeys.EncryptionAlgorithm, v []byte) (azkeys.WrapKeyResponse, error) {
	return c.WrapKey(ctx, name, version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: v}, nil)
}

func unwrapWith(c *azkeys.Client, name, version string, alg azkeys.EncryptionAlgorithm, v []byte) (azkeys.UnwrapKeyResponse, error) {
	return c.UnwrapKey(ctx, name, version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: v}, nil)
}

func TestHSMOctKeys(t *testing.T) {
	env, c := hsmEnv(t)
	for _, size := range []int32{128, 192, 256} {
		name := fmt.Sprintf("aes%d", size/64) // aes2, aes3, aes4
		created, err := c.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM), KeySize: to.Ptr(size)}, nil)
		if err != nil {
			t.Fatalf("CreateKey oct-HSM %d: %v", size, err)
		}
		k := created.Key
		if *k.Kty != azkeys.KeyTypeOctHSM || k.N != nil || k.E != nil || k.K != nil {
			t.Errorf("oct-HSM %d JWK: kty %s, n %x, e %x, k present %v", size, *k.Kty, k.N, k.E, k.K != nil)
		}
		if !strings.HasPrefix(string(*k.KID), hsmURL+"/keys/"+name+"/") {
			t.Errorf("kid %s", *k.KID)
		}
		info, err := env.emu.Key("hsm1", name, "")
		if err != nil || info.Size != int(size) || info.Type != "oct-HSM" {
			t.Errorf("control Key: %+v, %v", info, err)
		}
		got, err := c.GetKey(ctx, name, "", nil)
		if err != nil || *got.Key.Kty != azkeys.KeyTypeOctHSM || len(got.Key.KeyOps) != 4 {
			t.Errorf("GetKey: %+v, %v", got.Key, err)
		}
	}

	// Every key-wrap algorithm round-trips, with its length rules.
	c256 := "aes4"
	for _, tc := range []struct {
		alg azkeys.EncryptionAlgorithm
		n   int
	}{
		{azkeys.EncryptionAlgorithmA256KW, 32},
		{azkeys.EncryptionAlgorithmA256KW, 16},
		{azkeys.EncryptionAlgorithmCKMAESKEYWRAP, 24},
		{azkeys.EncryptionAlgorithmCKMAESKEYWRAPPAD, 1},
		{azkeys.EncryptionAlgorithmCKMAESKEYWRAPPAD, 190},
	} {
		pt := make([]byte, tc.n)
		rand.Read(pt)
		w, err := wrapWith(c, c256, "", tc.alg, pt)
		if err != nil {
			t.Fatalf("WrapKey %s %d bytes: %v", tc.alg, tc.n, err)
		}
		if w.KID == nil || w.KID.Version() == "" || len(w.Result) != (tc.n+7)/8*8+8 {
			t.Errorf("WrapKey %s: kid %v, %d bytes", tc.alg, w.KID, len(w.Result))
		}
		u, err := unwrapWith(c, c256, w.KID.Version(), tc.alg, w.Result)
		if err != nil || !bytes.Equal(u.Result, pt) {
			t.Errorf("UnwrapKey %s: %v", tc.alg, err)
		}
	}
	for _, tc := range []struct {
		key string
		alg azkeys.EncryptionAlgorithm
	}{{"aes2", azkeys.EncryptionAlgorithmA128KW}, {"aes3", azkeys.EncryptionAlgorithmA192KW}, {"aes2", azkeys.EncryptionAlgorithmCKMAESKEYWRAP}} {
		w, err := wrapWith(c, tc.key, "", tc.alg, share32)
		if err != nil {
			t.Fatalf("WrapKey %s with %s: %v", tc.key, tc.alg, err)
		}
		if u, err := unwrapWith(c, tc.key, "", tc.alg, w.Result); err != nil || !bytes.Equal(u.Result, share32) {
			t.Errorf("UnwrapKey %s with %s: %v", tc.key, tc.alg, err)
		}
	}

	// AES-GCM encrypt and decrypt, the IV and tag coming from the service.
	aad := []byte("tenant-1")
	enc, err := c.Encrypt(ctx, c256, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: share32, AdditionalAuthenticatedData: aad}, nil)
	if err != nil || len(enc.IV) != 12 || len(enc.AuthenticationTag) != 16 || len(enc.Result) != 32 {
		t.Fatalf("Encrypt A256GCM: %+v, %v", enc.KeyOperationResult, err)
	}
	dec, err := c.Decrypt(ctx, c256, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM),
		Value: enc.Result, IV: enc.IV, AuthenticationTag: enc.AuthenticationTag, AdditionalAuthenticatedData: aad}, nil)
	if err != nil || !bytes.Equal(dec.Result, share32) {
		t.Errorf("Decrypt A256GCM: %v", err)
	}
	_, err = c.Decrypt(ctx, c256, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM),
		Value: enc.Result, IV: enc.IV, AuthenticationTag: enc.AuthenticationTag, AdditionalAuthenticatedData: []byte("tenant-2")}, nil)
	respErrMsg(t, err, 400, "BadParameter")

	// Rotation makes a new AES key: old wraps still unwrap with their
	// version, and not with the new one.
	w1, err := wrapWith(c, c256, "", azkeys.EncryptionAlgorithmA256KW, share32)
	if err != nil {
		t.Fatal(err)
	}
	rot, err := c.RotateKey(ctx, c256, nil)
	if err != nil || *rot.Key.Kty != azkeys.KeyTypeOctHSM {
		t.Fatalf("RotateKey: %v", err)
	}
	w2, err := wrapWith(c, c256, "", azkeys.EncryptionAlgorithmA256KW, share32)
	if err != nil || w2.KID.Version() != rot.Key.KID.Version() || bytes.Equal(w1.Result, w2.Result) {
		t.Fatalf("WrapKey after rotation: %v under %v", err, w2.KID)
	}
	if u, err := unwrapWith(c, c256, w1.KID.Version(), azkeys.EncryptionAlgorithmA256KW, w1.Result); err != nil || !bytes.Equal(u.Result, share32) {
		t.Errorf("old version no longer unwraps: %v", err)
	}
	_, err = unwrapWith(c, c256, w2.KID.Version(), azkeys.EncryptionAlgorithmA256KW, w1.Result)
	respErrMsg(t, err, 400, "BadParameter")

	// Backup and restore keep the AES key.
	b, err := c.BackupKey(ctx, "aes2", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := wrapWith(c, "aes2", "", azkeys.EncryptionAlgorithmA128KW, share32)
	if err := env.emu.PurgeKey("hsm1", "aes2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b.Value}, nil); err != nil {
		t.Fatalf("RestoreKey: %v", err)
	}
	if u, err := unwrapWith(c, "aes2", w.KID.Version(), azkeys.EncryptionAlgorithmA128KW, w.Result); err != nil || !bytes.Equal(u.Result, share32) {
		t.Errorf("unwrap after restore: %v", err)
	}
}

func TestHSMOctErrors(t *testing.T) {
	env, c := hsmEnv(t)
	if _, err := env.emu.CreateKey("hsm1", "aes", KeySpec{Type: "oct-HSM", Size: 256}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.CreateKey("hsm1", "aes128", KeySpec{Type: "oct-HSM", Size: 128}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.CreateKey("hsm1", "wraponly", KeySpec{Type: "oct-HSM", Ops: []string{"wrapKey"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.CreateKey("hsm1", "off", KeySpec{Type: "oct-HSM", Disabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.CreateKey("hsm1", "rsa", KeySpec{Type: "RSA-HSM"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key string
		op        func() error
		status    int
		code      string
		inner     string
		msg       string
	}{
		{"RSA algorithm on an oct key", "aes", func() error {
			_, err := wrapWith(c, "aes", "", azkeys.EncryptionAlgorithmRSAOAEP256, share32)
			return err
		}, 400, "BadParameter", "", "Algorithm RSA-OAEP-256 is not supported for a key of type oct-HSM"},
		{"A256KW on a 128-bit key", "aes128", func() error {
			_, err := wrapWith(c, "aes128", "", azkeys.EncryptionAlgorithmA256KW, share32)
			return err
		}, 400, "BadParameter", "", "A256KW needs a 256-bit key; this oct-HSM key has 128 bits"},
		{"AES algorithm on an RSA key", "rsa", func() error {
			_, err := wrapWith(c, "rsa", "", azkeys.EncryptionAlgorithmA256KW, share32)
			return err
		}, 400, "BadParameter", "", "Invalid algorithm: A256KW"},
		{"KW of 12 bytes", "aes", func() error {
			_, err := wrapWith(c, "aes", "", azkeys.EncryptionAlgorithmA256KW, share32[:12])
			return err
		}, 400, "BadParameter", "", "multiple of 8 bytes, at least 16"},
		{"KW of 8 bytes", "aes", func() error {
			_, err := wrapWith(c, "aes", "", azkeys.EncryptionAlgorithmCKMAESKEYWRAP, share32[:8])
			return err
		}, 400, "BadParameter", "", "multiple of 8 bytes, at least 16"},
		{"KWPAD belongs to secure wrap", "aes", func() error {
			_, err := wrapWith(c, "aes", "", "A256KWPAD", share32)
			return err
		}, 400, "BadParameter", "", "CKM_AES_KEY_WRAP_PAD"},
		{"tampered unwrap", "aes", func() error {
			w, err := wrapWith(c, "aes", "", azkeys.EncryptionAlgorithmA256KW, share32)
			if err != nil {
				return err
			}
			w.Result[3] ^= 1
			_, err = unwrapWith(c, "aes", "", azkeys.EncryptionAlgorithmA256KW, w.Result)
			return err
		}, 400, "BadParameter", "", "integrity check"},
		{"KW algorithm on encrypt", "aes", func() error {
			_, err := c.Encrypt(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256KW), Value: share32}, nil)
			return err
		}, 400, "BadParameter", "", "use A128GCM, A192GCM or A256GCM"},
		{"unwrapKey not in key_ops", "wraponly", func() error {
			_, err := unwrapWith(c, "wraponly", "", azkeys.EncryptionAlgorithmA256KW, make([]byte, 40))
			return err
		}, 403, "Forbidden", "KeyOperationForbidden", "Operation unwrapKey is not permitted on this key."},
		{"disabled key", "off", func() error {
			_, err := wrapWith(c, "off", "", azkeys.EncryptionAlgorithmA256KW, share32)
			return err
		}, 403, "Forbidden", "KeyDisabled", "Operation wrapKey is not allowed on a disabled key."},
		{"software oct key", "x", func() error {
			_, err := c.CreateKey(ctx, "soft", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOct)}, nil)
			return err
		}, 400, "BadParameter", "KeyTypeNotSupported", "Invalid kty value: oct"},
		{"oct-HSM of 512 bits", "x", func() error {
			_, err := c.CreateKey(ctx, "big", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM), KeySize: to.Ptr[int32](512)}, nil)
			return err
		}, 400, "BadParameter", "", "use 128, 192 or 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner, msg := respErrMsg(t, tc.op(), tc.status, tc.code)
			if inner != tc.inner || !strings.Contains(msg, tc.msg) {
				t.Errorf("inner %q, message %q; want %q and %q", inner, msg, tc.inner, tc.msg)
			}
			if strings.Contains(msg, string(share32)) {
				t.Errorf("message shows the plaintext: %q", msg)
			}
		})
	}
}

func TestHSMRoles(t *testing.T) {
	env, _ := hsmEnv(t)
	if _, err := env.emu.CreateKey("hsm1", "aes", KeySpec{Type: "oct-HSM"}); err != nil {
		t.Fatal(err)
	}
	// Key Vault roles do not apply to a Managed HSM, nor HSM roles to a vault.
	if _, err := env.emu.AssignRole("hsm1", RoleAssignment{PrincipalID: env.app.ObjectID, Role: "Key Vault Crypto User"}); err == nil || !strings.Contains(err.Error(), "Managed HSM Crypto User") {
		t.Errorf("Key Vault role on an HSM: %v", err)
	}
	if _, err := env.emu.AssignRole("contoso", RoleAssignment{PrincipalID: env.app.ObjectID, Role: "Managed HSM Crypto User"}); err == nil {
		t.Error("Managed HSM role on a vault was accepted")
	}

	_, _, none := env.withRole(t, "hsm1", hsmURL, RoleAssignment{})
	_, err := wrapWith(none, "aes", "", azkeys.EncryptionAlgorithmA256KW, share32)
	_, msg := respErrMsg(t, err, 403, "AccessDenied")
	if !strings.HasPrefix(msg, "Not authorized to access Microsoft.KeyVault/managedHsm/keys/wrap/action on /keys/aes (Activity ID: ") {
		t.Errorf("message %q", msg)
	}

	_, _, enc := env.withRole(t, "hsm1", hsmURL, RoleAssignment{Role: "Managed HSM Crypto Service Encryption User"})
	w, err := wrapWith(enc, "aes", "", azkeys.EncryptionAlgorithmA256KW, share32)
	if err != nil {
		t.Fatalf("wrap as Crypto Service Encryption User: %v", err)
	}
	if _, err := unwrapWith(enc, "aes", "", azkeys.EncryptionAlgorithmA256KW, w.Result); err != nil {
		t.Errorf("unwrap as Crypto Service Encryption User: %v", err)
	}
	if _, err := enc.GetKey(ctx, "aes", "", nil); err != nil {
		t.Errorf("get as Crypto Service Encryption User: %v", err)
	}
	_, err = enc.Encrypt(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: share32}, nil)
	respErrMsg(t, err, 403, "AccessDenied")

	_, _, custom := env.withRole(t, "hsm1", hsmURL, RoleAssignment{DataActions: []string{"Microsoft.KeyVault/managedHsm/keys/read/action"}})
	if _, err := custom.GetKey(ctx, "aes", "", nil); err != nil {
		t.Errorf("get with a custom HSM role: %v", err)
	}
}

// TestStandardVaultRefusesHSMKeys: a standard vault holds no HSM key; a
// premium vault (kvemu's default) holds oct-HSM keys as Key Vault Premium
// does.
func TestStandardVaultRefusesHSMKeys(t *testing.T) {
	env := newVaultEnv(t)
	if err := env.emu.CreateVault(VaultConfig{Name: "std", TenantID: env.tenant, SKU: "standard"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.AssignRole("std", RoleAssignment{PrincipalID: env.app.ObjectID, Role: "Key Vault Crypto Officer"}); err != nil {
		t.Fatal(err)
	}
	std := env.keys(t, "https://std.vault.azure.net")
	for _, kty := range []azkeys.KeyType{azkeys.KeyTypeOctHSM, azkeys.KeyTypeRSAHSM} {
		_, err := std.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(kty)}, nil)
		if _, msg := respErrMsg(t, err, 400, "BadParameter"); msg != "Hardware key operation not allowed on standard vault." {
			t.Errorf("%s: %q", kty, msg)
		}
	}
	if _, err := env.emu.CreateKey("std", "k", KeySpec{Type: "oct-HSM"}); err == nil {
		t.Error("control API created an oct-HSM key in a standard vault")
	}
	if _, err := std.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil); err != nil {
		t.Errorf("RSA in a standard vault: %v", err)
	}

	prem := env.keys(t, contosoURL)
	if _, err := prem.CreateKey(ctx, "aes", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM), KeySize: to.Ptr[int32](256)}, nil); err != nil {
		t.Fatalf("oct-HSM in a premium vault: %v", err)
	}
	w, err := wrapWith(prem, "aes", "", azkeys.EncryptionAlgorithmA256KW, share32)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := unwrapWith(prem, "aes", "", azkeys.EncryptionAlgorithmA256KW, w.Result); err != nil || !bytes.Equal(u.Result, share32) {
		t.Errorf("unwrap in a premium vault: %v", err)
	}
}

// TestOctSeedAndState: oct-HSM keys come from a seed and survive a
// snapshot.
func TestOctSeedAndState(t *testing.T) {
	env := newVaultEnv(t)
	seed, err := ParseSeed([]byte(`
vaults:
  - name: phsm
    tenantId: ` + env.tenant + `
    managedHsm: true
    purgeProtection: true
    keys:
      - name: root
        type: oct-HSM
        size: 256
    roleAssignments:
      - app: ` + env.app.ClientID + `
        role: Managed HSM Crypto Service Encryption User
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.emu.ApplySeed(seed); err != nil {
		t.Fatal(err)
	}
	info, err := env.emu.Key("phsm", "root", "")
	if err != nil || info.Type != "oct-HSM" || info.Size != 256 {
		t.Fatalf("seeded key: %+v, %v", info, err)
	}
	c := env.keysWith(t, "https://phsm.managedhsm.azure.net", env.cred(t), -1, "")
	w, err := wrapWith(c, "root", "", azkeys.EncryptionAlgorithmA256KW, share32)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := env.emu.vaults.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := env.emu.vaults.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if u, err := unwrapWith(c, "root", w.KID.Version(), azkeys.EncryptionAlgorithmA256KW, w.Result); err != nil || !bytes.Equal(u.Result, share32) {
		t.Errorf("unwrap after snapshot and restore: %v", err)
	}
}
