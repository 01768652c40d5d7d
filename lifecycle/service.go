package lifecycle

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
)

// Connector reaches customers' keys at one key provider from their
// settings. Each provider has its own (the Azure one is in
// lifecycle/azure); tests use a fake. Optional abilities are further
// interfaces a connector may implement: [ProgressTester], [KeyLister],
// [CredentialRoller].
type Connector interface {
	// Name is the provider's name as settings carry it
	// (KeySettings.Provider), e.g. "azure-key-vault".
	Name() string
	// CheckSettings checks settings of this provider and returns them
	// complete (defaults filled in) with Options in canonical form, the
	// form that is stored and hashed. keepSecret says that an unset
	// Secret keeps the secret saved before. It fails with a [*FieldError]
	// that names the field (an Options field by its JSON name) and says
	// what is wrong. It makes no remote call.
	CheckSettings(ctx context.Context, s KeySettings, keepSecret bool) (KeySettings, error)
	// SecretKind names the kind of secret settings sign in with, or ""
	// if they need none; settings saved again without a secret keep the
	// saved one only while the kind stays the same.
	SecretKind(s KeySettings) string
	// SplitKeyID returns the key a key id names and the version it pins,
	// "" if it pins none (it follows the key's current version).
	SplitKeyID(keyID string) (key, version string)
	// Provider returns a provider that wraps and unwraps under the key of
	// s. It makes no remote call (credentials are used lazily); it fails
	// only for settings that can never work, with an error wrapping
	// [byok.ErrInvalidInput].
	Provider(ctx context.Context, s KeySettings) (kms.Provider, error)
	// Test runs Test configuration on s and returns one [Check] per line
	// of DESIGN §4. A failing check is a Fail line, not an error; the
	// error is for a test that could not run at all (ctx done).
	Test(ctx context.Context, s KeySettings) (Report, error)
}

// CredentialRoller is a [Connector] whose credential can be replaced
// without an outage: a rollover adds a next credential beside the
// current one, the customer registers it with its provider, and finishing
// drops the old one. [Service.StartCredentialRollover] uses it.
type CredentialRoller interface {
	// Rollover returns the public view of the credential of s (e.g. its
	// certificates), what the console shows and offers for download. It
	// fails with a [*FieldError] if the credential of s cannot be rolled
	// over.
	Rollover(s KeySettings) (view any, err error)
	// StartRollover returns the secret of s with a next credential added
	// for s.Tenant; a [*FieldError] if s cannot be rolled over or a
	// rollover is already in progress.
	StartRollover(s KeySettings) (Secret, error)
	// FinishRollover returns the secret of s with the next credential as
	// the only one; a [*FieldError] outside a rollover.
	FinishRollover(s KeySettings) (Secret, error)
	// Fingerprints names the credentials of s for the audit log, without
	// a secret: e.g. {"current_certificate": <thumbprint>}.
	Fingerprints(s KeySettings) map[string]string
}

// ProgressTester is a [Connector] that reports each check of Test
// configuration as soon as it is decided. [Service.TestWithProgress] uses
// it when the connector implements it; the Azure connector does.
type ProgressTester interface {
	// TestProgress is [Connector.Test] that calls progress with each
	// check, in report order, before the next check starts; the checks
	// progress sees are those of the returned report.
	TestProgress(ctx context.Context, s KeySettings, progress func(Check)) (Report, error)
}

// KeyLister is a [Connector] that lists the keys of a vault with the
// credential of saved settings, for the console's key picker.
// [Service.ListVaultKeys] uses it; the Azure connector implements it.
type KeyLister interface {
	// ListKeys lists the keys of the vault at vaultURL (a vault URL or a
	// key identifier in the vault) that s's principal can see, by name,
	// each with its newest versions first. It signs in as s does; errors
	// are classified [*kms.Error]s (a malformed vaultURL is kms.Invalid).
	ListKeys(ctx context.Context, s KeySettings, vaultURL string) ([]VaultKey, error)
}

// VaultKey is one key of a vault listing. KeyID is its versionless
// identifier: settings with it follow the key's current version.
type VaultKey struct {
	Name     string
	KeyID    string
	Versions []KeyVersion // newest first
	// MoreVersions says that older versions were left out of Versions.
	MoreVersions bool
}

// KeyVersion is one version of a listed key. KeyID is its versioned
// identifier: settings with it are pinned to this version. Type and Size
// are "" and 0 when the vault did not let the principal read the version.
type KeyVersion struct {
	KeyID     string
	Version   string
	Enabled   bool
	Type      string
	Size      int
	Created   time.Time
	NotBefore time.Time // zero when unset
	Expires   time.Time // zero when unset
	// Usable: enabled, RSA of at least 2048 bits, within its validity
	// window; Test configuration still checks rights and the vault.
	Usable bool
}

// Auditor records audit events; *audit.Log implements it.
type Auditor interface {
	Record(ctx context.Context, e audit.Event) (audit.Event, error)
}

// Webhook is an endpoint that receives the lifecycle's events as JSON,
// signed with HMAC-SHA256 (see [SignatureHeader]).
type Webhook struct {
	URL string
	// Secret is the per-endpoint HMAC key; at least 16 bytes.
	Secret []byte
}

// Config configures a [Service]. Store, PlatformKMS, PlatformKeyID and
// one Connector at least are required; every zero field takes its default.
type Config struct {
	Store Store
	// Keyring configures the keyring the service builds; its Store,
	// PlatformKMS, PlatformKeyID, CustomerKMS, Now and OnEvent are set by
	// the service from the fields below (OnEvent is chained: set
	// Keyring.OnEvent to observe events too).
	Keyring       byok.Config
	PlatformKMS   kms.Provider
	PlatformKeyID string
	// Connectors reach the customers' keys, one per provider.
	Connectors []Connector
	// Instrument, if set, wraps every customer provider the service builds
	// (role "customer"), e.g. with metrics (server.Metrics.InstrumentProvider).
	Instrument func(role string, p kms.Provider) kms.Provider
	// Audit records every admin action, vault call and state change;
	// nil records nothing.
	Audit Auditor
	// Webhooks receive revocation, restoration and state-change events.
	Webhooks []Webhook
	// HTTPClient delivers webhooks; nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// PlatformOnlyScopes are scopes for transient data that always stay
	// on the platform key: a tenant can never select them.
	PlatformOnlyScopes []string
	// BatchSize is how many DEKs a job re-wraps per transaction; default
	// 1000.
	BatchSize int
	// MaxAttempts is how many failed runs a job gets before it is marked
	// failed; default 10.
	MaxAttempts int
	// TickInterval is Run's period; default the keyring's check interval.
	TickInterval time.Duration
	// MonitorWorkers bounds the health checks (and the scheduler's per-tenant
	// work) that run at once; default [DefaultMonitorWorkers].
	MonitorWorkers int
	// PrefetchWorkers bounds the tenant keys [Service.Prefetch] loads at
	// once; default [DefaultPrefetchWorkers].
	PrefetchWorkers int
	// JobWorkers bounds the jobs a Tick runs at once; default
	// [DefaultJobWorkers].
	JobWorkers int
	// VersionCheckInterval is how often the monitor Describes a tenant's
	// versionless key to follow its current version (auto-rotation): a
	// second vault call, so less often than the health check; default
	// [DefaultVersionCheckInterval]. A tenant is described at the first
	// Tick that sees it active.
	VersionCheckInterval time.Duration
	// ReplicaID names this process in health events and as the owner of
	// the job leases it takes; default "replica-1". Replicas that share a
	// store must each have their own: two with one id share leases and
	// may run one job at once.
	ReplicaID string
	// JobLease is how long a claimed job stays this replica's without a
	// write: the runner renews it with every batch it commits and releases
	// it when the job's run ends; a replica that dies holding it blocks the
	// job until it expires. Default [DefaultJobLease]; make it longer than
	// the slowest batch (BatchSize local re-wraps, or one vault call).
	JobLease time.Duration
	// Changed, if set, is called after the service changed a tenant's
	// keys, scopes or policy in the store (activation, rotation, re-key,
	// scope moves, disable, SetPolicy). Replicas that share the store must then drop what
	// they cache of the tenant (byok.Keyring.Forget); byok serve passes a
	// PostgreSQL NOTIFY that does it.
	Changed func(tenant string)
	// Now is the clock of the service and its keyring; nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
}

// TenantSummary is a row of ListTenants.
type TenantSummary struct {
	ID      string
	Policy  byok.Policy
	Created time.Time
	State   State
}

// RotateRequest says what to rotate to. Leave both fields empty to move
// to the current version of the configured key now.
type RotateRequest struct {
	// KeyID is a new versioned id of the same key (rotation a).
	KeyID string
	// Settings are another key or vault (rotation b); they are tested
	// first and the rotation is refused if the test fails.
	Settings *KeySettings
}
