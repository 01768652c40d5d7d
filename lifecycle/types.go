package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/internal/secret"
	"github.com/openbyok/byok/kms"
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
	// credential (Service.StartCertificateRollover): allowed whenever the
	// settings exist and no rotation runs, after the enforcement date too.
	OpCertificateRollover Op = "certificate.rollover"
)

// Ops lists every operation the rules govern, in a stable order.
var Ops = []Op{OpConfigure, OpTest, OpProceed, OpSetScopes, OpRotate, OpRekey, OpDisable, OpCertificateRollover}

// States lists every state, in lifecycle order.
var States = []State{StateNone, StateDraft, StateScheduled, StateActive, StateRotating, StateRevoked, StateDisabled}

// ProviderAzure is the only key provider so far: Azure Key Vault (or
// Managed HSM).
const ProviderAzure = "azure-key-vault"

// CredentialMode is how the platform signs in to the customer's Entra
// tenant to reach its vault (DESIGN §1, step 1).
type CredentialMode string

const (
	// CredentialPlatformApp: the customer consented to the platform's
	// multi-tenant app; the platform uses its own credential. ClientID is
	// the platform's app and Secret is empty.
	CredentialPlatformApp CredentialMode = "platform-app"
	// CredentialClientSecret: the customer registered its own app and gave
	// the platform a client secret (Secret).
	CredentialClientSecret CredentialMode = "client-secret"
	// CredentialCertificate: the customer's own app trusts a certificate;
	// Secret holds its PEM private key and certificate chain.
	CredentialCertificate CredentialMode = "certificate"
	// CredentialManagedIdentity: the platform's own managed identity holds
	// a role on the customer's vault, which must be in the platform's own
	// directory (the Azure AI services model, for customers that live in
	// it, e.g. business units). DirectoryID is the platform's directory;
	// ClientID and Secret are empty: the identity is the platform's, from
	// its configuration. Offered only when the connector has one
	// ([IdentityOfferer]).
	CredentialManagedIdentity CredentialMode = "managed-identity"
	// CredentialWorkloadIdentity: the customer's own app (ClientID, in
	// DirectoryID) has a federated identity credential that trusts the
	// platform's workload; byok presents the platform's workload token as
	// the assertion. Secret is empty: there is none anywhere. Offered only
	// when the connector has a workload identity ([IdentityOfferer]).
	CredentialWorkloadIdentity CredentialMode = "workload-identity"
)

// CredentialModes lists every credential mode, in the order the console
// offers them.
var CredentialModes = []CredentialMode{CredentialPlatformApp, CredentialClientSecret, CredentialCertificate,
	CredentialManagedIdentity, CredentialWorkloadIdentity}

// SharedIdentity reports whether m signs in with an identity of the
// platform that other tenants use too (platform-app, managed-identity,
// workload-identity): such an identity proves nothing about who owns a
// key, so the key must carry the tag byok-tenant=<tenant>.
func (m CredentialMode) SharedIdentity() bool {
	return m == CredentialPlatformApp || m == CredentialManagedIdentity || m == CredentialWorkloadIdentity
}

// HasSecret reports whether m needs a Secret (client-secret, certificate).
func (m CredentialMode) HasSecret() bool {
	return m == CredentialClientSecret || m == CredentialCertificate
}

// Secret is a write-only credential: it is set by the tenant admin, stored
// wrapped under the platform root key, handed to the [Connector], and
// never shown again. It prints, logs and marshals as "[redacted]".
type Secret struct{ k secret.Key }

// NewSecret returns a Secret holding s. An empty s is an unset Secret.
func NewSecret(s string) Secret { return Secret{secret.New([]byte(s))} }

// IsSet reports whether the secret holds anything.
func (s Secret) IsSet() bool { return s.k.Len() > 0 }

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
	// Provider names the key provider; only [ProviderAzure] so far.
	Provider string
	// KeyID is the key identifier, https://<vault>.vault.azure.net/keys/<name>[/<version>].
	// A versionless id follows the key's current version (automatic
	// rotation); a versioned one is pinned until the admin rotates.
	KeyID string
	// DirectoryID is the customer's Entra tenant (directory) id; with
	// [CredentialManagedIdentity], the platform's own.
	DirectoryID string
	// ClientID is the app the platform signs in as: the platform's app,
	// or the customer's own; empty with [CredentialManagedIdentity].
	ClientID string
	// Credential is how the platform signs in.
	Credential CredentialMode
	// Secret is the client secret or certificate of Credential; write-only.
	Secret Secret
	// Tenant is the byok tenant whose key these settings name. The
	// lifecycle sets it from the tenant record before it passes settings
	// to a [Connector] (whatever a caller put there), and stores nor
	// hashes it: with a shared identity ([CredentialMode.SharedIdentity])
	// the key must carry the tag byok-tenant=<Tenant> to prove that the
	// tenant owns it.
	Tenant string
}

// Hash returns a digest of the settings, secret included (Tenant, which
// never changes for a record, excluded), that changes whenever any of
// them changes. Proceed compares it with the hash stored
// with the last Test, so only the exact settings that passed can go live.
func (s KeySettings) Hash() string {
	h := sha256.New()
	for _, f := range []string{"byok-key-settings-v1", s.Provider, s.KeyID, s.DirectoryID, s.ClientID, string(s.Credential)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	sh := sha256.Sum256(s.Secret.k.Bytes())
	h.Write(sh[:])
	return hex.EncodeToString(h.Sum(nil))
}

// Versionless reports whether KeyID names no version, so that the key
// follows the vault's current version. It relies on the Azure id shape
// (…/keys/<name>[/<version>]); ids of other shapes count as versioned.
func (s KeySettings) Versionless() bool {
	_, rest, ok := strings.Cut(s.KeyID, "/keys/")
	return ok && !strings.Contains(strings.TrimSuffix(rest, "/"), "/")
}

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
	// SettingsHash is KeySettings.Hash of the settings tested.
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
