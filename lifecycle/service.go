package lifecycle

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
)

// Connector reaches a customer's key from its settings. The Azure
// adapter ([NewAzureConnector]) implements it over kms/azurekv; tests use
// a fake.
type Connector interface {
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

// ProgressTester is a [Connector] that reports each check of Test
// configuration as soon as it is decided. [Service.TestWithProgress] uses
// it when the connector implements it; [AzureConnector] does.
type ProgressTester interface {
	// TestProgress is [Connector.Test] that calls progress with each
	// check, in report order, before the next check starts; the checks
	// progress sees are those of the returned report.
	TestProgress(ctx context.Context, s KeySettings, progress func(Check)) (Report, error)
}

// KeyLister is a [Connector] that lists the keys of a vault with the
// credential of saved settings, for the console's key picker.
// [Service.ListVaultKeys] uses it; [AzureConnector] implements it.
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
// Connector are required; every zero field takes its default.
type Config struct {
	Store Store
	// Keyring configures the keyring the service builds; its Store,
	// PlatformKMS, PlatformKeyID, CustomerKMS, Now and OnEvent are set by
	// the service from the fields below (OnEvent is chained: set
	// Keyring.OnEvent to observe events too).
	Keyring       byok.Config
	PlatformKMS   kms.Provider
	PlatformKeyID string
	Connector     Connector
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

// Store is the persistence the lifecycle needs: the metadata store plus
// the lifecycle's own records. Implementations are safe for concurrent
// use; each method is one transaction. Errors wrap [byok.ErrNotFound],
// [byok.ErrExists] or [store.ErrConflict] as documented, and never hold
// secrets.
type Store interface {
	store.Store

	// KeyRecord returns the lifecycle record of a tenant's customer key;
	// ErrNotFound if the tenant never configured one.
	KeyRecord(ctx context.Context, tenant string) (Record, error)
	// PutKeyRecord writes r if the stored record's Version is
	// r.Version-1 (no stored record for r.Version == 1), else fails with
	// [store.ErrConflict]; ErrNotFound if the tenant does not exist.
	PutKeyRecord(ctx context.Context, r Record) error
	// ListKeyRecords lists records in the given states (all if none),
	// ordered by tenant, after the exclusive cursor, at most limit.
	ListKeyRecords(ctx context.Context, after string, limit int, states ...State) ([]Record, error)
	// CommitRotation replaces the customer share of a tenant key as
	// [store.Store.ReplaceShare] does (CAS on oldKeyID) and writes r as
	// PutKeyRecord does, in one transaction: both or neither.
	CommitRotation(ctx context.Context, r Record, kind byok.KeyKind, epoch uint32, oldKeyID string, share kms.Wrapped) error

	// PutJob inserts a job, or updates it if j.ID exists. The update is
	// fenced by the lease: it fails with [store.ErrConflict] (and writes
	// nothing) when the stored job has an Owner other than j.Owner, so a
	// replica whose lease expired and was taken over cannot overwrite the
	// new owner's progress. Owner and LeaseUntil are stored as given.
	PutJob(ctx context.Context, j JobRecord) error
	// StartJob writes r as PutKeyRecord does and inserts the new job j, in
	// one transaction: both or neither. The scheduler uses it to start a
	// job for a tenant at most once even when several replicas tick at
	// once: the record's version CAS lets only one of them through. A job
	// with j.ID already stored fails with [byok.ErrExists].
	StartJob(ctx context.Context, r Record, j JobRecord) error
	// ClaimJob takes the lease of an unfinished job for owner until the
	// given time, in one conditional write: it succeeds if the job has no
	// owner, is owner's already, or its lease ended at or before now. It
	// returns the job as stored after the attempt and whether owner holds
	// it; a finished job or another owner's running lease is (job, false,
	// nil). ErrNotFound if there is no job with that id.
	ClaimJob(ctx context.Context, id, owner string, now, until time.Time) (JobRecord, bool, error)
	// JobRecord returns a job; ErrNotFound if there is none with that id.
	JobRecord(ctx context.Context, id string) (JobRecord, error)
	// ListJobs lists the jobs of a tenant ("" for every tenant), newest
	// first, unfinished ones only if unfinished is set, at most limit.
	ListJobs(ctx context.Context, tenant string, unfinished bool, limit int) ([]JobRecord, error)
	// RewrapBatch stores re-wrapped DEKs as [store.Store.RewrapDEKs] does
	// and, if s is not nil, sets that scope's kind as
	// [store.Store.MoveScope] does, and writes j as PutJob does (its
	// cursor, progress and lease), all in one transaction: a job write
	// refused by the lease fence fails the batch with
	// [store.ErrConflict] and stores none of its DEKs.
	RewrapBatch(ctx context.Context, s *byok.ScopeRecord, recs []byok.DEKRecord, j JobRecord) error
	// CountDEKs counts the DEKs of a tenant under tenant keys of kind
	// with an epoch below the given one, and (when scope is not "") of
	// that scope only.
	CountDEKs(ctx context.Context, tenant string, kind byok.KeyKind, belowEpoch uint32, scope string) (int64, error)

	// AddHealthEvent appends an entry to a tenant's revocation timeline.
	AddHealthEvent(ctx context.Context, e HealthEvent) error
	// HealthEvents returns a tenant's timeline, newest first, at most
	// limit.
	HealthEvents(ctx context.Context, tenant string, limit int) ([]HealthEvent, error)
}

// Record is the stored lifecycle state of a tenant's customer key.
type Record struct {
	Tenant string
	// Version counts writes, from 1; PutKeyRecord compares it.
	Version uint64
	State   State
	// Settings are the saved settings; Settings.Secret is always unset in
	// a Record: the secret is in SealedSecret.
	Settings KeySettings
	// SettingsHash is Settings.Hash() computed with the secret, when the
	// settings were saved.
	SettingsHash string
	// SealedSecret is the settings' secret wrapped under the platform
	// root key; zero if there is none.
	SealedSecret kms.Wrapped
	Coverage     Coverage
	EnforceAt    time.Time
	ActivatedAt  time.Time
	// LastTest is the last Test of these settings (compare its
	// SettingsHash); nil if none.
	LastTest *Report
	// Versions lists every exact key version a customer share of the
	// tenant was ever wrapped under, oldest first: the rows of the
	// inventory, so that a version left with no share shows as safe to
	// retire.
	Versions []string
	Updated  time.Time
}

// JobRecord is a job as stored, with where it resumes.
type JobRecord struct {
	Job
	// Epoch is the tenant-key epoch DEKs move onto (re-key) or the
	// customer-managed epoch created by activation.
	Epoch uint32
	// Scope and Cursor are where the job resumes: the scope being moved
	// and the last DEK id done within it (or within the tenant, for a
	// re-key).
	Scope  string
	Cursor byok.DEKID
	// Walk is the older epoch a re-key is walking.
	Walk uint32
	// Owner is the replica (Config.ReplicaID) that holds or last held
	// the job's lease; "" if no replica ever claimed it.
	Owner string
	// LeaseUntil is when Owner's lease ends; the zero time once it was
	// released. Another replica may claim the job when it has passed.
	LeaseUntil time.Time
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
