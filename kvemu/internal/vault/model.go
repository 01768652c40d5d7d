package vault

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// VaultConfig describes a vault. The zero value of every optional field is
// Azure's default for a new vault.
type VaultConfig struct {
	// Name is the vault's DNS label: 3–24 characters of 0-9a-zA-Z-, starting
	// with a letter, without "--". It is unique in the Service, whatever the
	// kind, and case-insensitive.
	Name string `json:"name" yaml:"name"`
	// TenantID is the Entra tenant whose tokens the vault accepts and which
	// its challenge names.
	TenantID string `json:"tenantId" yaml:"tenantId"`
	// Location appears in error messages ("Vault: x;location=…"); default
	// "westeurope".
	Location string `json:"location,omitempty" yaml:"location,omitempty"`
	// RetentionDays is the soft-delete retention, 7–90; 0 means 90.
	RetentionDays int `json:"retentionDays,omitempty" yaml:"retentionDays,omitempty"`
	// PurgeProtection forbids purging deleted keys before their retention
	// ends (irreversible in Azure; the control API may still purge).
	PurgeProtection bool `json:"purgeProtection,omitempty" yaml:"purgeProtection,omitempty"`
	// AccessPolicies selects the legacy access-policy model instead of
	// Azure RBAC.
	AccessPolicies bool `json:"accessPolicies,omitempty" yaml:"accessPolicies,omitempty"`
	// ManagedHSM makes the vault a Managed HSM, served at
	// {name}.managedhsm.azure.net with resource https://managedhsm.azure.net.
	// Its access is Managed HSM local RBAC: the "Managed HSM …" roles and
	// Microsoft.KeyVault/managedHsm/… data actions.
	ManagedHSM bool `json:"managedHsm,omitempty" yaml:"managedHsm,omitempty"`
	// SKU is a vault's pricing tier: "premium" (kvemu's default, "" too)
	// or "standard". A standard vault refuses HSM key types (RSA-HSM,
	// EC-HSM, oct-HSM), as Azure does. Ignored for a Managed HSM.
	SKU string `json:"sku,omitempty" yaml:"sku,omitempty"`
	// Network is the vault's firewall.
	Network NetworkRules `json:"network,omitzero" yaml:"network,omitempty"`
}

// NetworkRules is a vault's firewall.
type NetworkRules struct {
	// DefaultAction is "Allow" (the default, "" too) or "Deny".
	DefaultAction string `json:"defaultAction,omitempty" yaml:"defaultAction,omitempty"`
	// AllowedIPs lists client addresses ("203.0.113.7") or prefixes
	// ("10.0.0.0/8") let through when DefaultAction is "Deny".
	AllowedIPs []string `json:"allowedIps,omitempty" yaml:"allowedIps,omitempty"`
	// PrivateEndpoint lets every request that arrives through the vault's
	// private-link name ({name}.privatelink.vaultcore.azure.net) through.
	// Without it that name is refused like a client outside the firewall.
	PrivateEndpoint bool `json:"privateEndpoint,omitempty" yaml:"privateEndpoint,omitempty"`
}

// RecoveryLevel is the recoveryLevel every key of a vault with this
// configuration reports.
func (c VaultConfig) RecoveryLevel() string {
	level := "Recoverable"
	if c.retention() < 90 {
		level = "CustomizedRecoverable"
	}
	if !c.PurgeProtection {
		level += "+Purgeable"
	}
	return level
}

func (c VaultConfig) retention() int {
	if c.RetentionDays == 0 {
		return 90
	}
	return c.RetentionDays
}

func (c VaultConfig) location() string {
	if c.Location == "" {
		return "westeurope"
	}
	return c.Location
}

var (
	vaultNameRE = regexp.MustCompile(`^[a-zA-Z][0-9a-zA-Z-]{1,22}[0-9a-zA-Z]$`)
	keyNameRE   = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
)

// validate checks c and returns a copy with normalised fields.
func (c VaultConfig) validate() (VaultConfig, error) {
	if !vaultNameRE.MatchString(c.Name) || strings.Contains(c.Name, "--") {
		return c, fmt.Errorf("%w: vault name %q must be 3-24 characters of 0-9, a-z, A-Z and '-', start with a letter, end with a letter or digit and contain no '--'", ErrInvalid, c.Name)
	}
	if c.TenantID == "" {
		return c, fmt.Errorf("%w: vault %q needs a TenantID (the Entra tenant whose tokens it accepts)", ErrInvalid, c.Name)
	}
	if c.RetentionDays != 0 && (c.RetentionDays < 7 || c.RetentionDays > 90) {
		return c, fmt.Errorf("%w: vault %q: RetentionDays %d is outside 7-90 (0 means 90)", ErrInvalid, c.Name, c.RetentionDays)
	}
	switch strings.ToLower(c.SKU) {
	case "":
	case "standard", "premium":
		c.SKU = strings.ToLower(c.SKU)
	default:
		return c, fmt.Errorf("%w: vault %q: SKU %q must be \"standard\" or \"premium\"", ErrInvalid, c.Name, c.SKU)
	}
	if c.ManagedHSM && c.AccessPolicies {
		return c, fmt.Errorf("%w: Managed HSM %q has no access policies; it uses local RBAC (Managed HSM roles)", ErrInvalid, c.Name)
	}
	n, err := c.Network.validate()
	if err != nil {
		return c, fmt.Errorf("vault %q: %w", c.Name, err)
	}
	c.Network = n
	return c, nil
}

func (n NetworkRules) validate() (NetworkRules, error) {
	switch strings.ToLower(n.DefaultAction) {
	case "", "allow":
		n.DefaultAction = "Allow"
	case "deny":
		n.DefaultAction = "Deny"
	default:
		return n, fmt.Errorf("%w: network DefaultAction %q must be \"Allow\" or \"Deny\"", ErrInvalid, n.DefaultAction)
	}
	for _, a := range n.AllowedIPs {
		if _, err := parsePrefix(a); err != nil {
			return n, fmt.Errorf("%w: allowed IP %q is neither an address nor a CIDR prefix", ErrInvalid, a)
		}
	}
	return n, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// allows reports whether a client at addr, reaching the vault through a
// private-link name or not, passes the firewall.
func (n NetworkRules) allows(addr netip.Addr, private bool) bool {
	if private {
		return n.PrivateEndpoint
	}
	if n.DefaultAction != "Deny" {
		return true
	}
	addr = addr.Unmap()
	for _, a := range n.AllowedIPs {
		if p, err := parsePrefix(a); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

// vaultState is one vault: its configuration, keys, authorisation data and
// the test controls applied to it.
type vaultState struct {
	cfg      VaultConfig
	keys     map[string]*keyState // by lower-case name
	deleted  map[string]*keyState // soft-deleted, by lower-case name
	roles    []*RoleAssignment
	policies map[string][]string // object id (lower case) → key permissions (lower case)

	// Test controls, not persisted.
	latency, jitter time.Duration
	throttle        Throttle
	buckets         map[string]*bucket
	faults          []*Fault
	offline         bool
}

// keyState is one key name and all its versions, oldest first.
type keyState struct {
	name      string
	versions  []*keyVersion
	policy    *rotationPolicy
	deletedAt time.Time // set while soft-deleted
	purgeAt   time.Time
}

func (k *keyState) latest() *keyVersion { return k.versions[len(k.versions)-1] }

// version returns the version named v ("" for the latest), or nil.
func (k *keyState) version(v string) *keyVersion {
	if v == "" {
		return k.latest()
	}
	for _, kv := range k.versions {
		if strings.EqualFold(kv.version, v) {
			return kv
		}
	}
	return nil
}

// keyVersion is one version of a key. Its key material never changes, so
// crypto runs on it without the Service lock.
type keyVersion struct {
	version          string
	kty              string // RSA, RSA-HSM, EC, EC-HSM, oct-HSM
	ops              []string
	enabled          bool
	nbf, exp         time.Time // zero: unset
	created, updated time.Time
	tags             map[string]string
	rsa              *rsa.PrivateKey
	ec               *ecdsa.PrivateKey
	oct              []byte // AES key of an oct-HSM key
}

// size is the key's size in bits (RSA modulus, EC curve or AES key).
func (v *keyVersion) size() int {
	switch {
	case v.rsa != nil:
		return v.rsa.N.BitLen()
	case v.oct != nil:
		return 8 * len(v.oct)
	}
	return v.ec.Curve.Params().BitSize
}

func (v *keyVersion) hsm() bool { return strings.HasSuffix(v.kty, "-HSM") }

// rotationPolicy is a key's rotation policy as Key Vault stores it.
type rotationPolicy struct {
	ExpiryTime       string           `json:"expiryTime,omitempty"`
	LifetimeActions  []lifetimeAction `json:"lifetimeActions"`
	Created, Updated time.Time
}

type lifetimeAction struct {
	TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
	TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
	Action           string `json:"action"` // Rotate or Notify
}

// persisted state (Snapshot / Restore).

type snapshot struct {
	Version int             `json:"version"`
	Vaults  []vaultSnapshot `json:"vaults"`
}

type vaultSnapshot struct {
	Config   VaultConfig         `json:"config"`
	Keys     []keySnapshot       `json:"keys,omitempty"`
	Roles    []*RoleAssignment   `json:"roles,omitempty"`
	Policies map[string][]string `json:"policies,omitempty"`
}

type keySnapshot struct {
	Name      string            `json:"name"`
	Versions  []versionSnapshot `json:"versions"`
	Policy    *rotationPolicy   `json:"rotationPolicy,omitempty"`
	DeletedAt time.Time         `json:"deletedAt,omitzero"`
	PurgeAt   time.Time         `json:"purgeAt,omitzero"`
}

type versionSnapshot struct {
	Version string            `json:"version"`
	Kty     string            `json:"kty"`
	Ops     []string          `json:"ops"`
	Enabled bool              `json:"enabled"`
	NBF     time.Time         `json:"nbf,omitzero"`
	Exp     time.Time         `json:"exp,omitzero"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
	Tags    map[string]string `json:"tags,omitempty"`
	PKCS8   []byte            `json:"pkcs8,omitempty"`
	Oct     []byte            `json:"oct,omitempty"` // an oct-HSM key's AES key
}

func (v *keyVersion) snapshot() (versionSnapshot, error) {
	if v.oct != nil {
		return versionSnapshot{
			Version: v.version, Kty: v.kty, Ops: v.ops, Enabled: v.enabled, NBF: v.nbf, Exp: v.exp,
			Created: v.created, Updated: v.updated, Tags: v.tags, Oct: bytes.Clone(v.oct),
		}, nil
	}
	var priv any = v.rsa
	if v.ec != nil {
		priv = v.ec
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return versionSnapshot{}, fmt.Errorf("encode key version %s: %w", v.version, err)
	}
	return versionSnapshot{
		Version: v.version, Kty: v.kty, Ops: v.ops, Enabled: v.enabled, NBF: v.nbf, Exp: v.exp,
		Created: v.created, Updated: v.updated, Tags: v.tags, PKCS8: der,
	}, nil
}

func (s versionSnapshot) restore() (*keyVersion, error) {
	if s.Oct != nil {
		if s.Kty != "oct-HSM" || !validOctSize(8*len(s.Oct)) {
			return nil, fmt.Errorf("decode key version %s: a %d-byte AES key of type %q", s.Version, len(s.Oct), s.Kty)
		}
		return &keyVersion{
			version: s.Version, kty: s.Kty, ops: s.Ops, enabled: s.Enabled, nbf: s.NBF, exp: s.Exp,
			created: s.Created, updated: s.Updated, tags: s.Tags, oct: bytes.Clone(s.Oct),
		}, nil
	}
	priv, err := x509.ParsePKCS8PrivateKey(s.PKCS8)
	if err != nil {
		return nil, fmt.Errorf("decode key version %s: %w", s.Version, err)
	}
	v := &keyVersion{
		version: s.Version, kty: s.Kty, ops: s.Ops, enabled: s.Enabled, nbf: s.NBF, exp: s.Exp,
		created: s.Created, updated: s.Updated, tags: s.Tags,
	}
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		v.rsa = p
	case *ecdsa.PrivateKey:
		v.ec = p
	default:
		return nil, fmt.Errorf("key version %s: unsupported key type %T", s.Version, priv)
	}
	return v, nil
}
