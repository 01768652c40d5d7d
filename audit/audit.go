// Package audit is byok's append-only, hash-chained audit log.
//
// Every admin action, every vault call, every state change and per-minute
// usage counts are [Event]s. Events form chains: each tenant's events are a
// chain of their own, and platform-level events (tenant "") another, so a
// tenant can verify and export its own log without seeing anyone else's.
// Each event carries its sequence number in its chain, the hash of the
// event before it, and its own hash: SHA-256 over a canonical encoding of
// all its fields, specified in docs/audit.md. [Verify] recomputes every
// chain and reports any edited, deleted, inserted or reordered row.
//
// # Secrets
//
// An audit event never holds a secret: no key bytes, no token, no client
// secret, no password, no private key. Callers pass none; [Log.Record]
// refuses details and before/after members whose names look like one.
//
// # Storage
//
// The log keeps its events in a [Store], which a backend implements
// (store/sqlite). Appends to one chain are serialised by the store in one
// transaction that reads the chain's head and inserts after it, so
// concurrent appends never fork a chain.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// ActorKind says what kind of principal acted.
type ActorKind string

// Actor kinds.
const (
	Operator    ActorKind = "operator"     // the platform's operator (SRE)
	TenantAdmin ActorKind = "tenant-admin" // a tenant's security admin
	Service     ActorKind = "service"      // a platform service calling the data API
	System      ActorKind = "system"       // byok itself: scheduler, health monitor, jobs
)

// Actor is who caused an event: a kind and an id within it (a token id,
// a user name, or the name of a job such as "health-monitor").
type Actor struct {
	Kind ActorKind `json:"kind"`
	ID   string    `json:"id"`
}

// Outcome is how an action ended.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Failure Outcome = "failure" // attempted and failed
	Denied  Outcome = "denied"  // refused: not allowed, or not in this state
)

// Purpose says why byok called the vault.
type Purpose string

// Purposes of vault calls.
const (
	PurposeTenantRequest   Purpose = "tenant-request"   // serving a data or admin request
	PurposeBackgroundCheck Purpose = "background-check" // the health monitor's periodic unwrap
	PurposeRotationJob     Purpose = "rotation-job"     // activation, rotation, re-key, disable
	PurposeTest            Purpose = "test"             // Test configuration
)

// VaultCall describes one call to a key vault.
type VaultCall struct {
	// Operation is the vault operation: "wrapKey", "unwrapKey", "get"...
	Operation string `json:"operation"`
	// KeyID is the exact, versioned key id the call used (or, for a wrap
	// under a versionless id, the version the vault answered with).
	KeyID string `json:"key_id"`
	// Purpose is why byok made the call.
	Purpose Purpose `json:"purpose"`
	// RequestID is the x-ms-client-request-id sent with the call; byok
	// sends the id of the event that records the call (see
	// kms.WithOperationID), so a tenant can join this log with their Key
	// Vault diagnostics.
	RequestID string `json:"request_id"`
}

// Event is one entry of the log.
//
// Its JSON form is the line format of [Log.Export] (docs/audit.md).
//
// Callers fill the fields from ID to Details and pass the event to
// [Log.Record], which sets Seq, PrevHash and Hash. Before and After hold
// JSON values (usually objects) describing the target before and after
// the action; Details holds free-form string pairs. None of them may hold
// a secret.
type Event struct {
	// Tenant names the chain: a tenant id, or "" for the platform chain.
	Tenant string
	// Seq is the event's position in its chain, from 1.
	Seq uint64
	// PrevHash is the Hash of event Seq-1 of the chain, or 64 zeros for
	// the first event.
	PrevHash string
	// Hash is the lowercase hex SHA-256 of the event's canonical encoding.
	Hash string

	// ID is a random id (see [NewID]); Record sets one if empty. It is
	// also the request id of the vault call the event records, if any.
	ID string
	// Time is when the event happened; Record sets it if zero. It is kept
	// to the nanosecond, in UTC.
	Time time.Time
	// Actor is who acted.
	Actor Actor
	// Action is what happened, dotted: "key.configure", "key.test",
	// "key.proceed", "key.activate", "key.rotate", "key.revoked",
	// "key.restored", "vault.unwrap", "token.create", "usage"...
	Action string
	// Target is what the action was done to: a key id, a scope, a token id.
	Target string
	// Before and After are JSON values, or nil.
	Before json.RawMessage
	After  json.RawMessage
	// Outcome is how the action ended.
	Outcome Outcome
	// Reason says why: the error of a failure, the grounds of a denial,
	// the cause of a state change.
	Reason string
	// Vault describes the vault call the event records, or is nil.
	Vault *VaultCall
	// Details are free-form pairs; never a secret.
	Details map[string]string
}

// Head is the last event of a chain: its sequence number and hash. The
// zero Head is the head of an empty chain.
type Head struct {
	Seq  uint64
	Hash string
}

// Store keeps the events. Implementations are safe for concurrent use.
type Store interface {
	// AppendAudit appends to the chain of tenant ("" for the platform) in
	// one transaction: it reads the chain's head, calls seal with it, and
	// inserts the events seal returns, which continue the chain from that
	// head in order. If seal fails, nothing is inserted and its error is
	// returned. Concurrent appends to one chain are serialised, never
	// interleaved. An event whose ID is already stored fails the whole
	// append with an error wrapping byok.ErrExists; events that do not
	// continue the chain (another tenant, a sequence number other than the
	// next, a PrevHash other than the hash before: [GenesisHash] for the
	// first) fail it with one wrapping byok.ErrInvalidInput.
	AppendAudit(ctx context.Context, tenant string, seal func(head Head) ([]Event, error)) error

	// AuditEvents returns at most q.Limit events matching q, ordered by
	// chain (tenant id, the platform's "" first) then Seq, exactly as
	// stored: a store never checks or fixes hashes.
	AuditEvents(ctx context.Context, q Query) ([]Event, error)

	// AuditChains returns the tenant ids of the chains that hold at least
	// one event, in ascending order ("" for the platform chain first).
	AuditChains(ctx context.Context) ([]string, error)
}

// Query selects events of a [Store].
type Query struct {
	// Tenant selects one chain unless All is set.
	Tenant string
	// All selects every chain.
	All bool
	// After is the position to continue from: events strictly after
	// (After.Tenant, After.Seq) in (tenant, seq) order.
	After Position
	// Since and Until bound Time: Since <= Time < Until; zero means
	// unbounded.
	Since, Until time.Time
	// ActionPrefix keeps events whose Action starts with it.
	ActionPrefix string
	// Limit is the maximum number of events, at least 1.
	Limit int
}

// Position is a place in the log: an event's chain and sequence number.
type Position struct {
	Tenant string
	Seq    uint64
}

// NewID returns a new random event id: 32 lowercase hex digits (128 bits).
// It is fit to send as x-ms-client-request-id.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}
