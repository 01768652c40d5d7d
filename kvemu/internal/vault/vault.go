// Package vault is the Azure Key Vault data plane of kvemu: vaults, keys and
// their cryptography, authorisation (Azure RBAC and legacy access policies),
// soft delete, rotation, throttling, injected faults and call counters,
// served by an [http.Handler] that the official azkeys client talks to
// unchanged.
//
// A [Service] holds every vault. Its HTTP side ([Service.ServeHTTP]) selects
// the vault by the request's Host ({name}.vault.azure.net and the other Key
// Vault names), answers the challenge naming the vault's tenant, checks the
// bearer token's audience and tenant, the firewall, injected faults, the
// throttle and the caller's rights, then runs the operation, with Key
// Vault's status codes and error envelopes. Its Go side (CreateVault,
// CreateKey, AssignRole, InjectFault, Calls, …) is the control API that
// tests and demos use. Every method is safe for concurrent use.
//
// Time comes from [Options.Now], so nbf/exp checks, soft-delete purge dates,
// rotation policies and token buckets are testable with a fake clock.
package vault

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Claims are the verified claims of an access token presented to a vault.
type Claims struct {
	Audience, Issuer, TenantID, ObjectID, AppID string
	NotBefore, ExpiresAt                        time.Time
}

// TokenVerifier checks an access token's signature and lifetime (NOT audience
// or tenant: the vault checks those itself, answering AKV10022 / AKV10032).
// Its errors must not contain the token.
type TokenVerifier interface {
	VerifyAccessToken(raw string) (Claims, error)
}

// Options configure a [Service].
type Options struct {
	Verifier TokenVerifier
	Now      func() time.Time // nil: time.Now
	LoginURL string           // "https://login.microsoftonline.com", used in the challenge header
}

// Service holds every emulated vault and serves their data plane.
type Service struct {
	opts Options
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration)

	mu     sync.Mutex
	vaults map[string]*vaultState // by lower-case name
	calls  map[callKey]int64
	nextID int
}

// New returns a Service without vaults. A nil Verifier rejects every token.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LoginURL == "" {
		opts.LoginURL = "https://login.microsoftonline.com"
	}
	opts.LoginURL = strings.TrimSuffix(opts.LoginURL, "/")
	return &Service{
		opts:   opts,
		sleep:  sleepCtx,
		vaults: map[string]*vaultState{},
		calls:  map[callKey]int64{},
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// vault returns the vault named name; the caller holds s.mu.
func (s *Service) vault(name string) (*vaultState, error) {
	v := s.vaults[strings.ToLower(name)]
	if v == nil {
		return nil, fmt.Errorf("%w: no vault named %q; create it first with CreateVault", ErrNotFound, name)
	}
	return v, nil
}

// CreateVault adds a vault. The name must be new.
func (s *Service) CreateVault(cfg VaultConfig) error {
	cfg, err := cfg.validate()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vaults[strings.ToLower(cfg.Name)] != nil {
		return fmt.Errorf("%w: a vault named %q already exists", ErrConflict, cfg.Name)
	}
	s.vaults[strings.ToLower(cfg.Name)] = newVaultState(cfg)
	return nil
}

func newVaultState(cfg VaultConfig) *vaultState {
	return &vaultState{cfg: cfg, keys: map[string]*keyState{}, deleted: map[string]*keyState{}, policies: map[string][]string{}}
}

// DeleteVault removes a vault and everything in it at once (no soft delete
// of vaults is emulated).
func (s *Service) DeleteVault(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.vault(name); err != nil {
		return err
	}
	delete(s.vaults, strings.ToLower(name))
	return nil
}

// Vault returns a vault's configuration.
func (s *Service) Vault(name string) (VaultConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(name)
	if err != nil {
		return VaultConfig{}, err
	}
	return v.cfg, nil
}

// Vaults returns the configuration of every vault, sorted by name.
func (s *Service) Vaults() []VaultConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]VaultConfig, 0, len(s.vaults))
	for _, v := range s.vaults {
		out = append(out, v.cfg)
	}
	slices.SortFunc(out, func(a, b VaultConfig) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out
}

// SetNetwork replaces a vault's firewall rules.
func (s *Service) SetNetwork(vault string, rules NetworkRules) error {
	rules, err := rules.validate()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	v.cfg.Network = rules
	return nil
}

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

// liveKey returns key name of vault; the caller holds s.mu.
func (s *Service) liveKey(vault, name string) (*vaultState, *keyState, error) {
	v, err := s.vault(vault)
	if err != nil {
		return nil, nil, err
	}
	v.purgeExpired(s.now())
	k := v.keys[strings.ToLower(name)]
	if k == nil {
		return nil, nil, fmt.Errorf("%w: no key named %q in vault %q", ErrNotFound, name, vault)
	}
	v.autoRotate(k, s.now())
	return v, k, nil
}

// Key returns a version of a key ("" for the latest).
func (s *Service) Key(vault, name, version string) (KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, k, err := s.liveKey(vault, name)
	if err != nil {
		return KeyInfo{}, err
	}
	kv := k.version(version)
	if kv == nil {
		return KeyInfo{}, fmt.Errorf("%w: key %q in vault %q has no version %q", ErrNotFound, name, vault, version)
	}
	return v.info(k, kv), nil
}

// KeyVersions returns every version of a key, oldest first.
func (s *Service) KeyVersions(vault, name string) ([]KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, k, err := s.liveKey(vault, name)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, len(k.versions))
	for i, kv := range k.versions {
		out[i] = v.info(k, kv)
	}
	return out, nil
}

// KeyUpdate changes a key version's attributes; nil fields stay as they are.
type KeyUpdate struct {
	Enabled *bool
	// NotBefore and Expires: a pointer to the zero time clears the bound.
	NotBefore, Expires *time.Time
	Ops                []string
	// Tags, if not nil, replace the version's tags (an empty map removes
	// them all), as PATCH /keys/{name}/{version} with "tags" does.
	Tags map[string]string
}

// UpdateKey changes one version of a key, or every version when version is
// "" (so that disabling a key cuts every wrapped value off, as revoking a
// customer key does).
func (s *Service) UpdateKey(vault, name, version string, u KeyUpdate) error {
	var ops []string
	if u.Ops != nil {
		var err error
		if ops, err = validOps(u.Ops); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, k, err := s.liveKey(vault, name)
	if err != nil {
		return err
	}
	targets := k.versions
	if version != "" {
		kv := k.version(version)
		if kv == nil {
			return fmt.Errorf("%w: key %q in vault %q has no version %q", ErrNotFound, name, vault, version)
		}
		targets = []*keyVersion{kv}
	}
	for _, kv := range targets {
		if u.Enabled != nil {
			kv.enabled = *u.Enabled
		}
		if u.NotBefore != nil {
			kv.nbf = u.NotBefore.UTC().Truncate(time.Second)
		}
		if u.Expires != nil {
			kv.exp = u.Expires.UTC().Truncate(time.Second)
		}
		if ops != nil {
			kv.ops = ops
		}
		if u.Tags != nil {
			kv.tags = maps.Clone(u.Tags)
		}
		kv.updated = s.now()
	}
	return nil
}

// SetKeyEnabled enables or disables every version of a key.
func (s *Service) SetKeyEnabled(vault, name string, enabled bool) error {
	return s.UpdateKey(vault, name, "", KeyUpdate{Enabled: &enabled})
}

// DeleteKey soft-deletes a key, as DELETE /keys/{name} does.
func (s *Service) DeleteKey(vault, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, k, err := s.liveKey(vault, name)
	if err != nil {
		return err
	}
	v.softDelete(k, s.now())
	return nil
}

func (v *vaultState) softDelete(k *keyState, now time.Time) {
	lname := strings.ToLower(k.name)
	delete(v.keys, lname)
	k.deletedAt = now
	k.purgeAt = now.Add(time.Duration(v.cfg.retention()) * 24 * time.Hour)
	v.deleted[lname] = k
}

// PurgeKey deletes a key for good: a live key is deleted and purged, a
// soft-deleted one purged, even under purge protection (standing in for the
// end of the retention period).
func (s *Service) PurgeKey(vault, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	lname := strings.ToLower(name)
	if v.keys[lname] == nil && v.deleted[lname] == nil {
		return fmt.Errorf("%w: no key named %q, live or deleted, in vault %q", ErrNotFound, name, vault)
	}
	delete(v.keys, lname)
	delete(v.deleted, lname)
	return nil
}

// RecoverKey recovers a soft-deleted key.
func (s *Service) RecoverKey(vault, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	v.purgeExpired(s.now())
	if _, aerr := v.recover(name); aerr != nil {
		return fmt.Errorf("%w: no deleted key named %q in vault %q", ErrNotFound, name, vault)
	}
	return nil
}

func (v *vaultState) recover(name string) (*keyState, *apiError) {
	lname := strings.ToLower(name)
	k := v.deleted[lname]
	if k == nil {
		return nil, deletedKeyNotFound(name)
	}
	delete(v.deleted, lname)
	k.deletedAt, k.purgeAt = time.Time{}, time.Time{}
	v.keys[lname] = k
	return k, nil
}

// purgeExpired purges deleted keys whose scheduled purge date has passed.
func (v *vaultState) purgeExpired(now time.Time) {
	for n, k := range v.deleted {
		if !now.Before(k.purgeAt) {
			delete(v.deleted, n)
		}
	}
}

// RotateKey makes a new version of a key with the same type, size and
// operations, as POST /keys/{name}/rotate does.
func (s *Service) RotateKey(vault, name string) (KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, k, err := s.liveKey(vault, name)
	if err != nil {
		return KeyInfo{}, err
	}
	kv, err := v.rotate(k, s.now())
	if err != nil {
		return KeyInfo{}, err
	}
	return v.info(k, kv), nil
}

// AssignRole adds a role assignment to vault and returns its id.
func (s *Service) AssignRole(vault string, a RoleAssignment) (string, error) {
	if err := a.validate(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return "", err
	}
	if err := a.checkFamily(v.cfg.ManagedHSM); err != nil {
		return "", err
	}
	s.nextID++
	a.ID = fmt.Sprintf("ra-%d", s.nextID)
	for slices.ContainsFunc(v.roles, func(r *RoleAssignment) bool { return r.ID == a.ID }) {
		s.nextID++
		a.ID = fmt.Sprintf("ra-%d", s.nextID)
	}
	a.DataActions = slices.Clone(a.DataActions)
	v.roles = append(v.roles, &a)
	return a.ID, nil
}

// RoleAssignments returns vault's role assignments, revoked ones included.
func (s *Service) RoleAssignments(vault string) ([]RoleAssignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return nil, err
	}
	out := make([]RoleAssignment, len(v.roles))
	for i, r := range v.roles {
		out[i] = *r
		out[i].DataActions = slices.Clone(r.DataActions)
	}
	return out, nil
}

// RevokeRole suspends a role assignment: it grants nothing until
// [Service.RestoreRole].
func (s *Service) RevokeRole(vault, id string) error { return s.setRevoked(vault, id, true) }

// RestoreRole reinstates a revoked role assignment.
func (s *Service) RestoreRole(vault, id string) error { return s.setRevoked(vault, id, false) }

// RemoveRole deletes a role assignment.
func (s *Service) RemoveRole(vault, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(v.roles, func(r *RoleAssignment) bool { return r.ID == id })
	if i < 0 {
		return fmt.Errorf("%w: vault %q has no role assignment %q", ErrNotFound, vault, id)
	}
	v.roles = slices.Delete(v.roles, i, i+1)
	return nil
}

func (s *Service) setRevoked(vault, id string, revoked bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	for _, r := range v.roles {
		if r.ID == id {
			r.Revoked = revoked
			return nil
		}
	}
	return fmt.Errorf("%w: vault %q has no role assignment %q", ErrNotFound, vault, id)
}

// SetAccessPolicy sets the key permissions of principal objectID in a vault
// that uses access policies (see [KeyPermissions]); no permissions removes
// the policy.
func (s *Service) SetAccessPolicy(vault, objectID string, keyPermissions []string) error {
	perms, err := normalisePermissions(keyPermissions)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	if len(perms) == 0 {
		delete(v.policies, strings.ToLower(objectID))
		return nil
	}
	v.policies[strings.ToLower(objectID)] = perms
	return nil
}

// SetLatency delays every request to vault by fixed plus a uniformly random
// duration below jitter.
func (s *Service) SetLatency(vault string, fixed, jitter time.Duration) error {
	if fixed < 0 || jitter < 0 {
		return fmt.Errorf("%w: latency %v and jitter %v must not be negative", ErrInvalid, fixed, jitter)
	}
	return s.withVault(vault, func(v *vaultState) { v.latency, v.jitter = fixed, jitter })
}

// SetThrottle sets vault's throttle and refills its buckets.
func (s *Service) SetThrottle(vault string, t Throttle) error {
	if t.Mode == ThrottleCustom && (t.Rate <= 0 || t.Burst < 1) {
		return fmt.Errorf("%w: custom throttle needs Rate > 0 and Burst >= 1, got %v and %d", ErrInvalid, t.Rate, t.Burst)
	}
	if t.Mode < ThrottleOff || t.Mode > ThrottleCustom {
		return fmt.Errorf("%w: unknown throttle mode %d", ErrInvalid, t.Mode)
	}
	return s.withVault(vault, func(v *vaultState) { v.throttle, v.buckets = t, nil })
}

// InjectFault queues a fault on vault's next requests. Faults apply in the
// order injected; the first one matching a request's operation is used.
func (s *Service) InjectFault(vault string, f Fault) error {
	if !f.Reset && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("%w: fault status %d is not an HTTP error status (400-599); set Reset to drop connections", ErrInvalid, f.Status)
	}
	if f.Count < 0 {
		return fmt.Errorf("%w: fault count %d is negative", ErrInvalid, f.Count)
	}
	f.Ops = slices.Clone(f.Ops)
	return s.withVault(vault, func(v *vaultState) { v.faults = append(v.faults, &f) })
}

// ClearFaults removes every fault queued on vault.
func (s *Service) ClearFaults(vault string) error {
	return s.withVault(vault, func(v *vaultState) { v.faults = nil })
}

// SetOffline cuts vault off the network (every request's connection is
// dropped before any answer) or reconnects it.
func (s *Service) SetOffline(vault string, offline bool) error {
	return s.withVault(vault, func(v *vaultState) { v.offline = offline })
}

func (s *Service) withVault(vault string, f func(*vaultState)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	f(v)
	return nil
}

// Calls returns the request counters, sorted by vault, operation, principal
// and status.
func (s *Service) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, 0, len(s.calls))
	for k, n := range s.calls {
		out = append(out, Call{Vault: k.vault, Op: k.op, Principal: k.principal, Status: k.status, N: n})
	}
	slices.SortFunc(out, func(a, b Call) int {
		return cmpAll(strings.Compare(a.Vault, b.Vault), strings.Compare(string(a.Op), string(b.Op)),
			strings.Compare(a.Principal, b.Principal), a.Status-b.Status)
	})
	return out
}

func cmpAll(cs ...int) int {
	for _, c := range cs {
		if c != 0 {
			return c
		}
	}
	return 0
}

// CallCount sums the counters of vault and op over every principal whose
// status is status (0: any status).
func (s *Service) CallCount(vault string, op Op, status int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k, c := range s.calls {
		if strings.EqualFold(k.vault, vault) && k.op == op && (status == 0 || k.status == status) {
			n += c
		}
	}
	return n
}

// ResetCalls zeroes every counter.
func (s *Service) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

func (s *Service) count(vault string, op Op, principal string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[callKey{vault: vault, op: op, principal: principal, status: status}]++
}

func (s *Service) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return mrand.N(d)
}

// Snapshot returns the Service's state as JSON, for persistence: vaults,
// keys with their private material, role assignments and access policies.
// Latency, throttles, faults, network cuts and counters are not included.
func (s *Service) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := snapshot{Version: 1, Vaults: []vaultSnapshot{}}
	names := make([]string, 0, len(s.vaults))
	for n := range s.vaults {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v := s.vaults[n]
		vs := vaultSnapshot{Config: v.cfg, Policies: v.policies, Roles: v.roles}
		for _, m := range []map[string]*keyState{v.keys, v.deleted} {
			kn := make([]string, 0, len(m))
			for n := range m {
				kn = append(kn, n)
			}
			slices.Sort(kn)
			for _, n := range kn {
				k := m[n]
				ks := keySnapshot{Name: k.name, Policy: k.policy, DeletedAt: k.deletedAt, PurgeAt: k.purgeAt}
				for _, kv := range k.versions {
					vsnap, err := kv.snapshot()
					if err != nil {
						return nil, err
					}
					ks.Versions = append(ks.Versions, vsnap)
				}
				vs.Keys = append(vs.Keys, ks)
			}
		}
		snap.Vaults = append(snap.Vaults, vs)
	}
	return json.Marshal(snap)
}

// Restore replaces the Service's vaults, keys, roles and policies with a
// [Service.Snapshot]. On error the Service is unchanged.
func (s *Service) Restore(data []byte) error {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("restore vault state: %w", err)
	}
	if snap.Version != 1 {
		return fmt.Errorf("restore vault state: unknown snapshot version %d (this kvemu reads version 1)", snap.Version)
	}
	vaults := map[string]*vaultState{}
	maxID := 0
	for _, vs := range snap.Vaults {
		cfg, err := vs.Config.validate()
		if err != nil {
			return fmt.Errorf("restore vault state: %w", err)
		}
		v := newVaultState(cfg)
		for oid, perms := range vs.Policies {
			if v.policies[oid], err = normalisePermissions(perms); err != nil {
				return fmt.Errorf("restore vault %q: %w", cfg.Name, err)
			}
		}
		for _, r := range vs.Roles {
			if r == nil {
				continue
			}
			if err := r.validate(); err != nil {
				return fmt.Errorf("restore vault %q: %w", cfg.Name, err)
			}
			var n int
			if _, err := fmt.Sscanf(r.ID, "ra-%d", &n); err == nil {
				maxID = max(maxID, n)
			}
			v.roles = append(v.roles, r)
		}
		for _, ks := range vs.Keys {
			if !keyNameRE.MatchString(ks.Name) || len(ks.Versions) == 0 {
				return fmt.Errorf("restore vault %q: key %q has a bad name or no versions", cfg.Name, ks.Name)
			}
			k := &keyState{name: ks.Name, policy: ks.Policy, deletedAt: ks.DeletedAt, purgeAt: ks.PurgeAt}
			for _, vsnap := range ks.Versions {
				kv, err := vsnap.restore()
				if err != nil {
					return fmt.Errorf("restore vault %q key %q: %w", cfg.Name, ks.Name, err)
				}
				k.versions = append(k.versions, kv)
			}
			if k.deletedAt.IsZero() {
				v.keys[strings.ToLower(k.name)] = k
			} else {
				v.deleted[strings.ToLower(k.name)] = k
			}
		}
		if vaults[strings.ToLower(cfg.Name)] != nil {
			return fmt.Errorf("restore vault state: vault %q appears twice", cfg.Name)
		}
		vaults[strings.ToLower(cfg.Name)] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vaults = vaults
	s.nextID = max(s.nextID, maxID)
	return nil
}
