package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/internal/secret"
	"github.com/openbyok/byok/lifecycle/record"
)

// Op is an operation of the lifecycle, as the transition rules name it.
type Op string

// The operations the transition rules govern. Status, Inventory, Job and
// Timeline are reads and are allowed in every state.
const (
	OpConfigure Op = "configure"
	OpTest      Op = "test"
	OpProceed   Op = "proceed"
	OpSetScopes Op = "set-scopes"
	OpRotate    Op = "rotate"
	OpRekey     Op = "rekey"
	OpDisable   Op = "disable"
	// OpCertificateRollover replaces the certificate of a certificate
	// credential (Service.StartCredentialRollover): allowed whenever the
	// settings exist and no rotation runs, after the enforcement date too.
	OpCertificateRollover Op = "certificate.rollover"
)

// Ops lists every operation the rules govern, in a stable order.
var Ops = []Op{OpConfigure, OpTest, OpProceed, OpSetScopes, OpRotate, OpRekey, OpDisable, OpCertificateRollover}

// Secret is a write-only credential: it is set by the tenant admin, stored
// wrapped under the platform root key, handed to the [Connector], and
// never shown again. It prints, logs and marshals as "[redacted]".
type Secret struct{ k secret.Key }

// NewSecret returns a Secret holding s. An empty s is an unset Secret.
func NewSecret(s string) Secret { return Secret{secret.New([]byte(s))} }

// IsSet reports whether the secret holds anything.
func (s Secret) IsSet() bool { return s.k.Len() > 0 }

// Len returns the secret's length in bytes.
func (s Secret) Len() int { return s.k.Len() }

// Reveal returns the secret itself, for a [Connector] to sign in with.
// Never log it or put it in an error.
func (s Secret) Reveal() string { return string(s.k.Bytes()) }

// String returns "[redacted]".
func (Secret) String() string { return secret.Redacted }

// GoString returns "[redacted]".
func (Secret) GoString() string { return secret.Redacted }

// MarshalJSON returns "[redacted]" as a JSON string: a secret is never
// read back.
func (Secret) MarshalJSON() ([]byte, error) { return json.Marshal(secret.Redacted) }

// LogValue returns "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue(secret.Redacted) }

// KeySettings are the tenant admin's settings of its customer-managed key.
type KeySettings struct {
	// Provider names the key provider: the [Connector.Name] of one of
	// Config.Connectors. Empty means the only one, when there is one.
	Provider string
	// KeyID identifies the customer's key at the provider. An id without a
	// version follows the key's current version (automatic rotation); a
	// versioned one is pinned until the admin rotates
	// ([Connector.SplitKeyID] tells which).
	KeyID string
	// Options is the provider's own block of settings, a JSON object its
	// connector decodes and checks (for Azure: the directory, the client
	// and how byok signs in).
	Options json.RawMessage
	// Secret is the credential the settings sign in with, if they need
	// one ([Connector.SecretKind]); write-only.
	Secret Secret
	// Tenant is the byok tenant whose key these settings name. The
	// lifecycle sets it from the tenant record before it passes settings
	// to a [Connector] (whatever a caller put there), and neither stores
	// nor hashes it: a connector whose identity is shared by tenants
	// checks with it that the key belongs to the tenant.
	Tenant string
}

// Hash returns a digest of the settings, secret included (Tenant, which
// never changes for a record, excluded), that changes whenever any of
// them changes. Proceed compares the hash stored with the last Test with
// the saved settings', so only the exact settings that passed can go
// live. Options are hashed as their connector's CheckSettings wrote them.
func (s KeySettings) Hash() string {
	h := sha256.New()
	for _, f := range []string{"byok-key-settings-v2", s.Provider, s.KeyID, string(s.Options)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	sh := sha256.Sum256(s.Secret.k.Bytes())
	h.Write(sh[:])
	return hex.EncodeToString(h.Sum(nil))
}

// stored returns the settings as a record keeps them: no secret, no tenant.
func (s KeySettings) stored() record.Settings {
	return record.Settings{Provider: s.Provider, KeyID: s.KeyID, Options: s.Options}
}

// settingsOf returns the settings a record keeps, for tenant, without
// their secret.
func settingsOf(tenant string, r record.Settings) KeySettings {
	return KeySettings{Provider: r.Provider, KeyID: r.KeyID, Options: r.Options, Tenant: tenant}
}

// CustomerKey is the status view of a tenant's customer-managed key, what
// the console's "Enterprise Key" page shows. It never holds a secret.
type CustomerKey struct {
	Tenant string
	State  State
	// Settings are the saved settings with Secret redacted; SecretSet says
	// whether one is stored.
	Settings  KeySettings
	SecretSet bool
	// EnforceAt is the enforcement date set by Proceed; zero before.
	EnforceAt time.Time
	// ActivatedAt is when the activation job finished; zero before.
	ActivatedAt time.Time
	Coverage    Coverage
	// Scopes lists every known scope of the tenant with the kind of key
	// that protects it now and whether it is platform-only.
	Scopes []ScopeStatus
	// LastTest is the last Test of the saved settings; nil if none, or if
	// the settings changed since.
	LastTest *Report
	// CurrentKeyID is the exact key version the customer share of the
	// current customer-managed tenant key is wrapped under; empty before
	// activation.
	CurrentKeyID string
	// Epoch is the epoch of the current customer-managed tenant key.
	Epoch uint32
	// Health is the keyring's view of the tenant's keys in this process.
	Health []byok.KeyHealth
	// Job is the running or last job of the tenant, if any.
	Job *Job
	// Updated is when the record last changed.
	Updated time.Time
}

// ScopeStatus is one scope of a tenant.
type ScopeStatus struct {
	Scope        string
	Kind         byok.KeyKind // the key that protects it now
	Covered      bool         // the tenant's coverage selects it
	PlatformOnly bool         // marked for transient data; never covered
}

// VersionCount is one row of the key-version inventory: how many wrapped
// shares sit under one exact key version.
type VersionCount struct {
	KeyID  string
	Shares int
	// Current: the version new shares are wrapped under.
	Current bool
	// SafeToRetire: no share depends on this version (Shares == 0); the
	// customer may disable or delete it.
	SafeToRetire bool
}
