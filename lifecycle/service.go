package lifecycle

import (
	"context"
	"errors"
	"fmt"
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
	// ReplicaID names this process in health events; default "replica-1".
	ReplicaID string
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

	// PutJob inserts a job, or updates it if j.ID exists.
	PutJob(ctx context.Context, j JobRecord) error
	// JobRecord returns a job; ErrNotFound if there is none with that id.
	JobRecord(ctx context.Context, id string) (JobRecord, error)
	// ListJobs lists the jobs of a tenant ("" for every tenant), newest
	// first, unfinished ones only if unfinished is set, at most limit.
	ListJobs(ctx context.Context, tenant string, unfinished bool, limit int) ([]JobRecord, error)
	// RewrapBatch stores re-wrapped DEKs as [store.Store.RewrapDEKs] does
	// and, if s is not nil, sets that scope's kind as
	// [store.Store.MoveScope] does, and writes j as PutJob does (its
	// cursor and progress), all in one transaction.
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
	// SealedSecret is the settings' secret wrapped under the platform
	// root key; zero if there is none.
	SealedSecret kms.Wrapped
	Coverage     Coverage
	EnforceAt    time.Time
	ActivatedAt  time.Time
	// LastTest is the last Test of these settings (compare its
	// SettingsHash); nil if none.
	LastTest *Report
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

// Service runs the lifecycle of tenants' customer keys. It is safe for
// concurrent use; create it with [New].
type Service struct {
	cfg Config
	kr  *byok.Keyring
}

var errNotImplemented = errors.New("lifecycle: not yet implemented")

// New returns a service and the keyring it runs. It makes no remote call.
func New(cfg Config) (*Service, error) {
	return nil, fmt.Errorf("lifecycle: New: %w", errNotImplemented)
}

// Keyring returns the keyring of the service, for data calls.
func (s *Service) Keyring() *byok.Keyring { return s.kr }

// CreateTenant registers a tenant with a platform-managed key and
// declares its scopes (more appear when data is first written to them).
// Operator action.
func (s *Service) CreateTenant(ctx context.Context, actor audit.Actor, tenant string, policy byok.Policy, scopes []string) error {
	return errNotImplemented
}

// ListTenants lists tenants with their key state, ordered by id, after
// the exclusive cursor, at most limit. Operator action.
func (s *Service) ListTenants(ctx context.Context, after string, limit int) ([]TenantSummary, error) {
	return nil, errNotImplemented
}

// SetPolicy sets a tenant's staleness policy ([byok.Grace] or
// [byok.Strict]). Operator or tenant-admin action; audited.
func (s *Service) SetPolicy(ctx context.Context, actor audit.Actor, tenant string, policy byok.Policy) error {
	return errNotImplemented
}

// Configure saves the settings of a tenant's customer key. Allowed in
// states none, draft, scheduled (back to draft: test and proceed again)
// and disabled (a new draft); refused with a [*StateError] once the
// enforcement date has passed. An unset Secret keeps the stored one if
// the credential mode is unchanged. Invalid settings fail with a
// [*FieldError] and change nothing.
func (s *Service) Configure(ctx context.Context, actor audit.Actor, tenant string, settings KeySettings) (CustomerKey, error) {
	return CustomerKey{}, errNotImplemented
}

// Test runs Test configuration on the saved settings and stores the
// report with their hash. A failing check is in the report, not an error.
func (s *Service) Test(ctx context.Context, actor audit.Actor, tenant string) (Report, error) {
	return Report{}, errNotImplemented
}

// Proceed schedules activation at enforceAt, which must be in the future,
// with coverage (nil: every scope). It requires a passing Test of exactly
// the saved settings. Allowed in draft and scheduled (a new date).
func (s *Service) Proceed(ctx context.Context, actor audit.Actor, tenant string, enforceAt time.Time, coverage *Coverage) (CustomerKey, error) {
	return CustomerKey{}, errNotImplemented
}

// SetScopes changes which scopes the customer's key covers. Before
// activation it only records the choice; when active it starts a scopes
// job (shown in CustomerKey.Job) that Tick runs to move scopes in or out,
// re-wrapping their DEKs locally. Unknown and platform-only scopes fail
// with a [*FieldError].
func (s *Service) SetScopes(ctx context.Context, actor audit.Actor, tenant string, coverage Coverage) (CustomerKey, error) {
	return CustomerKey{}, errNotImplemented
}

// Rotate re-wraps the customer share of the tenant's current
// customer-managed key under a new version of its key or under another
// key (see [RotateRequest]): at most one unwrap and one wrap, committed
// atomically with the new settings. It runs to the end before returning;
// the job it returns is finished. Allowed when active.
func (s *Service) Rotate(ctx context.Context, actor audit.Actor, tenant string, req RotateRequest) (Job, error) {
	return Job{}, errNotImplemented
}

// Rekey creates the next epoch of the tenant's customer-managed key (new
// customer and platform shares) and starts a job that Tick runs to
// re-wrap every DEK of older epochs onto it, in batches, resumably.
// Allowed when active.
func (s *Service) Rekey(ctx context.Context, actor audit.Actor, tenant string) (Job, error) {
	return Job{}, errNotImplemented
}

// Disable turns BYOK off: it re-wraps the customer share of every
// customer-managed epoch under the platform root key at once, sets the
// state to disabled, and starts a job that moves every scope back to
// platform-managed. It is refused with a [*StateError] when the
// customer's key cannot be reached now: disable must come before revoke.
func (s *Service) Disable(ctx context.Context, actor audit.Actor, tenant string) (Job, error) {
	return Job{}, errNotImplemented
}

// Status returns the tenant's customer key as the console shows it; state
// none if it never configured one. An unknown tenant fails with
// [byok.ErrUnknownTenant].
func (s *Service) Status(ctx context.Context, tenant string) (CustomerKey, error) {
	return CustomerKey{}, errNotImplemented
}

// Inventory counts, for every key version the tenant's shares are or
// were wrapped under, how many shares depend on it; a version at zero is
// safe to retire.
func (s *Service) Inventory(ctx context.Context, tenant string) ([]VersionCount, error) {
	return nil, errNotImplemented
}

// Job returns a job of the tenant. A job of another tenant is
// [byok.ErrNotFound], as one that does not exist.
func (s *Service) Job(ctx context.Context, tenant, id string) (Job, error) {
	return Job{}, errNotImplemented
}

// Timeline returns the tenant's revocation and restoration history,
// newest first, at most limit entries.
func (s *Service) Timeline(ctx context.Context, tenant string, limit int) ([]HealthEvent, error) {
	return nil, errNotImplemented
}

// Tick runs one deterministic pass: the health monitor (a forced check of
// every active customer key, automatic rotation of versionless keys,
// revocations and restorations recorded), the scheduler (activation of
// tenants whose enforcement date has come, new scopes covered by
// default) and the job runner (every unfinished job to its end or its
// next failure). It returns the errors of the pass joined; one tenant's
// failure does not stop the others.
func (s *Service) Tick(ctx context.Context) error {
	return errNotImplemented
}

// Run calls Tick every Config.TickInterval until ctx is done, logging
// Tick's errors, and returns ctx's error.
func (s *Service) Run(ctx context.Context) error {
	return errNotImplemented
}
