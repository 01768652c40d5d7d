// Package record holds what the lifecycle of tenants' customer-managed
// keys stores: a tenant's key record with its saved settings, the jobs
// and their progress, the revocation timeline, and the [Store] that
// keeps them. It is a leaf: the lifecycle and the stores both import it,
// and it imports neither of them nor any cloud's SDK.
package record

import (
	"context"
	"encoding/json"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
)

// State is where a tenant's customer key is in its lifecycle (DESIGN §4).
type State string

const (
	// StateNone: the tenant has never configured a key of its own.
	StateNone State = "none"
	// StateDraft: settings saved; they may be edited and tested freely.
	StateDraft State = "draft"
	// StateScheduled: Proceed accepted a tested configuration and an
	// enforcement date in the future; still editable until that date.
	StateScheduled State = "scheduled"
	// StateActive: the customer's key protects the covered scopes.
	StateActive State = "active"
	// StateRotating: a rotation or re-key is running; back to active when
	// it ends.
	StateRotating State = "rotating"
	// StateRevoked: the customer's key said no (authoritative answer);
	// covered scopes fail closed until access comes back.
	StateRevoked State = "revoked"
	// StateDisabled: the tenant turned BYOK off; its data is back under
	// platform-managed keys.
	StateDisabled State = "disabled"
)

// States lists every state, in lifecycle order.
var States = []State{StateNone, StateDraft, StateScheduled, StateActive, StateRotating, StateRevoked, StateDisabled}

// Coverage says which scopes of a tenant the customer's key covers. A
// scope is covered if it is listed in Include, or if All is set and it is
// not listed in Exclude; scopes the platform marked platform-only
// (Config.PlatformOnlyScopes) are never covered and may not be listed.
//
// All also decides what happens to scopes that appear after activation:
// the keyring creates every new scope platform-managed, and the next Tick
// moves it onto the customer's key when All is set (re-wrapping the DEKs
// written meanwhile, locally). Listing a scope in Include before it has
// data closes that window.
type Coverage struct {
	All     bool
	Include []string
	Exclude []string
}

// AllScopes is the default coverage: every scope, present and future,
// except the platform-only ones.
var AllScopes = Coverage{All: true}

// Covers reports whether c covers scope (platform-only scopes aside).
func (c Coverage) Covers(scope string) bool {
	for _, s := range c.Include {
		if s == scope {
			return true
		}
	}
	if !c.All {
		return false
	}
	for _, s := range c.Exclude {
		if s == scope {
			return false
		}
	}
	return true
}

// Outcome is the result of one check of Test configuration.
type Outcome string

const (
	Pass Outcome = "pass"
	Warn Outcome = "warn"
	Fail Outcome = "fail"
)

// Check is one line of a Test configuration report (DESIGN §4).
type Check struct {
	// Name is a stable identifier: "uri", "reachable", "authentication",
	// "permission", "key-type", "key-validity", "recovery", "round-trip",
	// "latency".
	Name    string
	Outcome Outcome
	// Detail says what was found, Remedy what to do about a warn or fail.
	Detail string
	Remedy string
	// Duration is how long the check took; zero when it made no call.
	Duration time.Duration
}

// Report is the result of Test configuration.
type Report struct {
	// SettingsHash is the hash of the settings tested: the record's
	// SettingsHash (lifecycle.KeySettings.Hash) when they were saved.
	SettingsHash string
	// KeyID is the exact key version tested, when the key was reached.
	KeyID  string
	Checks []Check
	At     time.Time
}

// Passed reports whether no check failed (warnings pass).
func (r Report) Passed() bool {
	for _, c := range r.Checks {
		if c.Outcome == Fail {
			return false
		}
	}
	return len(r.Checks) > 0
}

// JobKind names what a job does.
type JobKind string

const (
	// JobActivate wraps a new customer share with the customer's key and
	// moves the covered scopes onto it (run by Tick at the enforcement date).
	JobActivate JobKind = "activate"
	// JobRotate re-wraps the customer share under a new key version or
	// another key: at most 2 vault calls.
	JobRotate JobKind = "rotate"
	// JobRekey re-wraps every DEK under a new tenant-key epoch, locally.
	JobRekey JobKind = "rekey"
	// JobScopes moves scopes in or out of the customer's key.
	JobScopes JobKind = "scopes"
	// JobDisable re-wraps the customer share under the platform key and
	// moves every scope back to platform-managed.
	JobDisable JobKind = "disable"
)

// JobState is where a job is.
type JobState string

const (
	JobPending JobState = "pending" // waiting for Tick
	JobRunning JobState = "running" // started; resumes from its cursor after a crash
	JobDone    JobState = "done"
	JobFailed  JobState = "failed" // gave up; Error says why
)

// Job is a unit of lifecycle work with its progress.
type Job struct {
	ID     string
	Tenant string
	Kind   JobKind
	State  JobState
	// Done and Total count the DEKs (re-key, scopes, activation) or shares
	// (rotation, disable) handled so far and in all; Total is an estimate
	// made when the job started.
	Done, Total int64
	// Attempts counts the runs that ended in an error; a job is retried
	// by every Tick until it succeeds or reaches Config.MaxAttempts.
	Attempts int
	// Error is the last failure, without secrets.
	Error string
	// Actor started the job.
	Actor   audit.Actor
	Created time.Time
	Updated time.Time
}

// Finished reports whether the job is done or failed.
func (j Job) Finished() bool { return j.State == JobDone || j.State == JobFailed }

// HealthEventKind names an entry of a tenant's revocation timeline.
type HealthEventKind string

const (
	HealthRevoked     HealthEventKind = "revoked"
	HealthUnavailable HealthEventKind = "unavailable"
	HealthRestored    HealthEventKind = "restored"
)

// HealthEvent is one revocation, outage or restoration of a tenant's
// customer key as a replica saw it.
type HealthEvent struct {
	Tenant string
	Kind   HealthEventKind
	Reason kms.Reason
	// DetectedAt is when a check first saw it; EnforcedAt when this
	// replica failed closed (or resumed serving). With one replica they are
	// equal; Replica names the replica that recorded the event.
	DetectedAt time.Time
	EnforcedAt time.Time
	Replica    string
}

// Settings are a tenant's saved key settings, without their secret
// (the record holds it sealed). The provider named by Provider decodes
// and checks Options, its own block; the lifecycle and the stores carry
// it as it is.
type Settings struct {
	// Provider names the key provider, e.g. "azure-key-vault".
	Provider string
	// KeyID identifies the customer's key at the provider; it may name a
	// version (pinned) or not (following the key's current version).
	KeyID string
	// Options is the provider's block of settings, a JSON object.
	Options json.RawMessage
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
	// [store.ErrConflict] and stores none of its DEKs. A batch may be
	// less durable than other writes: it survives the process's crash
	// when it returns, but a power loss may roll it back (with the
	// cursor it carries, so the job redoes it) until a later write of
	// the store, any other than a batch, returns, which makes it and
	// every batch before it durable.
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
	Settings Settings
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
	// Walk is Epoch once a re-key has moved every DEK of older epochs,
	// and 0 while it walks them all in id order from Cursor. (A job
	// stored by an earlier version, which walked one older epoch at a
	// time, holds the epoch it was walking: it is walked again from the
	// first id.)
	Walk uint32
	// Owner is the replica (Config.ReplicaID) that holds or last held
	// the job's lease; "" if no replica ever claimed it.
	Owner string
	// LeaseUntil is when Owner's lease ends; the zero time once it was
	// released. Another replica may claim the job when it has passed.
	LeaseUntil time.Time
}
