package vault

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// KeySpec describes a key to create.
type KeySpec struct {
	// Type is "RSA" (default), "RSA-HSM", "EC", "EC-HSM" or "oct-HSM" (an
	// AES key, in a Managed HSM or a premium vault).
	Type string `json:"type,omitempty" yaml:"type,omitempty"`
	// Size is the RSA modulus in bits: 2048 (default), 3072 or 4096; or
	// the oct-HSM key's: 128, 192 or 256 (default).
	Size int `json:"size,omitempty" yaml:"size,omitempty"`
	// Curve is the EC curve: "P-256" (default), "P-384" or "P-521".
	Curve string `json:"curve,omitempty" yaml:"curve,omitempty"`
	// Ops are the permitted operations; empty means the type's default
	// (RSA: encrypt, decrypt, sign, verify, wrapKey, unwrapKey; EC: sign,
	// verify; oct-HSM: wrapKey, unwrapKey, decrypt, encrypt).
	Ops []string `json:"ops,omitempty" yaml:"ops,omitempty"`
	// Disabled creates the key disabled.
	Disabled bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// NotBefore and Expires bound the key's validity; zero means unset.
	NotBefore time.Time         `json:"notBefore,omitzero" yaml:"notBefore,omitempty"`
	Expires   time.Time         `json:"expires,omitzero" yaml:"expires,omitempty"`
	Tags      map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// KeyInfo describes one key version as the control API returns it.
type KeyInfo struct {
	// ID is the versioned key id at the vault's public name, e.g.
	// https://contoso.vault.azure.net/keys/cmk/0123…
	ID      string
	Name    string
	Version string
	Type    string
	Size    int
	Ops     []string
	Enabled bool
	// NotBefore and Expires are zero when unset.
	NotBefore, Expires time.Time
	Created, Updated   time.Time
	// Tags are the version's tags; nil when it has none.
	Tags map[string]string
}

func (v *vaultState) baseURL() string {
	suffix := "vault.azure.net"
	if v.cfg.ManagedHSM {
		suffix = "managedhsm.azure.net"
	}
	return "https://" + strings.ToLower(v.cfg.Name) + "." + suffix
}

func (v *vaultState) info(k *keyState, kv *keyVersion) KeyInfo {
	return KeyInfo{
		ID: v.baseURL() + "/keys/" + k.name + "/" + kv.version, Name: k.name, Version: kv.version,
		Type: kv.kty, Size: kv.size(), Ops: slices.Clone(kv.ops), Enabled: kv.enabled,
		NotBefore: kv.nbf, Expires: kv.exp, Created: kv.created, Updated: kv.updated, Tags: maps.Clone(kv.tags),
	}
}

// generate makes the key material of a new version.
func generate(kty string, size int, curve string) (*keyVersion, error) {
	kv := &keyVersion{kty: kty}
	switch kty {
	case "RSA", "RSA-HSM":
		if size == 0 {
			size = 2048
		}
		if size != 2048 && size != 3072 && size != 4096 {
			return nil, fmt.Errorf("%w: RSA key size %d is not supported; use 2048, 3072 or 4096", ErrInvalid, size)
		}
		k, err := rsa.GenerateKey(rand.Reader, size)
		if err != nil {
			return nil, fmt.Errorf("generate RSA-%d key: %w", size, err)
		}
		kv.rsa = k
		kv.ops = defaultOps(kty)
	case "EC", "EC-HSM":
		c, err := curveByName(curve)
		if err != nil {
			return nil, err
		}
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate EC %s key: %w", curve, err)
		}
		kv.ec = k
		kv.ops = defaultOps(kty)
	case "oct-HSM":
		if size == 0 {
			size = 256
		}
		if !validOctSize(size) {
			return nil, fmt.Errorf("%w: oct-HSM key size %d is not supported; use 128, 192 or 256", ErrInvalid, size)
		}
		kv.oct = make([]byte, size/8)
		rand.Read(kv.oct)
		kv.ops = defaultOps(kty)
	default:
		return nil, fmt.Errorf("%w: key type %q is not supported; use RSA, RSA-HSM, EC, EC-HSM or oct-HSM", ErrInvalid, kty)
	}
	return kv, nil
}

// validOctSize reports whether bits is an AES key size of oct-HSM keys.
func validOctSize(bits int) bool { return bits == 128 || bits == 192 || bits == 256 }

// defaultOps are the key_ops of a key created without any (oct-HSM: as a
// Managed HSM answered in the azure-sdk-for-js recordings).
func defaultOps(kty string) []string {
	switch {
	case strings.HasPrefix(kty, "EC"):
		return []string{"sign", "verify"}
	case strings.HasPrefix(kty, "oct"):
		return []string{"wrapKey", "unwrapKey", "decrypt", "encrypt"}
	}
	return []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}
}

// checkKind refuses a key type the vault's kind and SKU do not hold, with
// the service's answer: a standard vault holds no HSM key (the message is
// the service's; status and code are inferred).
func (c VaultConfig) checkKind(kty string) *apiError {
	if !c.ManagedHSM && c.SKU == "standard" && strings.HasSuffix(kty, "-HSM") {
		return badParameter("Hardware key operation not allowed on standard vault.")
	}
	return nil
}

func curveByName(name string) (elliptic.Curve, error) {
	switch name {
	case "", "P-256":
		return elliptic.P256(), nil
	case "P-384":
		return elliptic.P384(), nil
	case "P-521":
		return elliptic.P521(), nil
	}
	return nil, fmt.Errorf("%w: curve %q is not supported; use P-256, P-384 or P-521 (kvemu has no P-256K)", ErrInvalid, name)
}

func curveName(c elliptic.Curve) string { return c.Params().Name }

// validOps checks key operation names and returns them in Key Vault's
// spelling.
func validOps(ops []string) ([]string, error) {
	known := []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}
	out := make([]string, 0, len(ops))
	for _, op := range ops {
		i := slices.IndexFunc(known, func(k string) bool { return strings.EqualFold(k, op) })
		if i < 0 {
			return nil, fmt.Errorf("%w: unknown key operation %q; use %s", ErrInvalid, op, strings.Join(known, ", "))
		}
		out = append(out, known[i])
	}
	return out, nil
}

func newVersionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// addVersion appends kv as the newest version of key name in v, creating
// the key if needed; the caller holds s.mu.
func (v *vaultState) addVersion(name string, kv *keyVersion, now time.Time) (*keyState, *apiError) {
	lname := strings.ToLower(name)
	if _, gone := v.deleted[lname]; gone {
		return nil, &apiError{status: 409, code: "Conflict", inner: "ObjectIsDeletedButRecoverable", msg: fmt.Sprintf(
			"Key %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.", name)}
	}
	kv.version = newVersionID()
	kv.created, kv.updated = now, now
	k := v.keys[lname]
	if k == nil {
		k = &keyState{name: name}
		v.keys[lname] = k
	}
	k.versions = append(k.versions, kv)
	return k, nil
}

// apply sets spec's attributes on a new version.
func (kv *keyVersion) apply(spec KeySpec) error {
	if len(spec.Ops) > 0 {
		ops, err := validOps(spec.Ops)
		if err != nil {
			return err
		}
		kv.ops = ops
	}
	kv.enabled = !spec.Disabled
	kv.nbf, kv.exp = spec.NotBefore.UTC().Truncate(time.Second), spec.Expires.UTC().Truncate(time.Second)
	if spec.NotBefore.IsZero() {
		kv.nbf = time.Time{}
	}
	if spec.Expires.IsZero() {
		kv.exp = time.Time{}
	}
	kv.tags = spec.Tags
	return nil
}

// CreateKey creates a key, or a new version of an existing one, in vault.
func (s *Service) CreateKey(vault, name string, spec KeySpec) (KeyInfo, error) {
	if !keyNameRE.MatchString(name) {
		return KeyInfo{}, fmt.Errorf("%w: key name %q must be 1-127 characters of 0-9, a-z, A-Z and '-'", ErrInvalid, name)
	}
	if spec.Type == "" {
		spec.Type = "RSA"
	}
	kv, err := generate(spec.Type, spec.Size, spec.Curve)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := kv.apply(spec); err != nil {
		return KeyInfo{}, err
	}
	return s.insert(vault, name, kv)
}

// ImportKey imports priv (an *rsa.PrivateKey of 2048–4096 bits, an
// *ecdsa.PrivateKey on P-256, P-384 or P-521, or a []byte AES key of 16,
// 24 or 32 bytes, always oct-HSM) as a new version of key name; hsm marks
// an RSA or EC key RSA-HSM / EC-HSM. spec's Type, Size and Curve are
// ignored.
func (s *Service) ImportKey(vault, name string, priv any, hsm bool, spec KeySpec) (KeyInfo, error) {
	if !keyNameRE.MatchString(name) {
		return KeyInfo{}, fmt.Errorf("%w: key name %q must be 1-127 characters of 0-9, a-z, A-Z and '-'", ErrInvalid, name)
	}
	kv, err := fromPrivate(priv, hsm)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := kv.apply(spec); err != nil {
		return KeyInfo{}, err
	}
	return s.insert(vault, name, kv)
}

func fromPrivate(priv any, hsm bool) (*keyVersion, error) {
	suffix := ""
	if hsm {
		suffix = "-HSM"
	}
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if bits := p.N.BitLen(); bits < 2048 || bits > 4096 {
			return nil, fmt.Errorf("%w: RSA key of %d bits; Key Vault imports 2048 to 4096 bits", ErrInvalid, bits)
		}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("%w: RSA key is inconsistent: %v", ErrInvalid, err)
		}
		return &keyVersion{kty: "RSA" + suffix, rsa: p, ops: defaultOps("RSA")}, nil
	case *ecdsa.PrivateKey:
		if _, err := curveByName(curveName(p.Curve)); err != nil {
			return nil, err
		}
		return &keyVersion{kty: "EC" + suffix, ec: p, ops: defaultOps("EC")}, nil
	case []byte:
		if !validOctSize(8 * len(p)) {
			return nil, fmt.Errorf("%w: an AES key of %d bytes; oct-HSM keys have 16, 24 or 32", ErrInvalid, len(p))
		}
		return &keyVersion{kty: "oct-HSM", oct: bytes.Clone(p), ops: defaultOps("oct-HSM")}, nil
	}
	return nil, fmt.Errorf("%w: cannot import a %T; give an *rsa.PrivateKey, *ecdsa.PrivateKey or []byte AES key", ErrInvalid, priv)
}

func (s *Service) insert(vault, name string, kv *keyVersion) (KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return KeyInfo{}, err
	}
	if aerr := v.cfg.checkKind(kv.kty); aerr != nil {
		return KeyInfo{}, fmt.Errorf("%w: vault %q: %s", ErrInvalid, vault, aerr.msg)
	}
	v.purgeExpired(s.now())
	k, aerr := v.addVersion(name, kv, s.now())
	if aerr != nil {
		return KeyInfo{}, fmt.Errorf("%w: %s", ErrConflict, aerr.msg)
	}
	return v.info(k, kv), nil
}
