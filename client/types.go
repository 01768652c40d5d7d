package client

import "time"

// The answers of the API, as docs/api.md and docs/openapi.yaml describe
// them. Times are UTC; a time the server left out is the zero time.

// Tenant is a tenant as an operator sees it.
type Tenant struct {
	ID string `json:"id"`
	// Policy is "grace" or "strict".
	Policy  string    `json:"policy"`
	Created time.Time `json:"created"`
	// State is the lifecycle state of its customer key ("none" ... "disabled").
	State string `json:"state"`
}

// Token is an API token's record. Token (the text) is set only in the
// answer of [Client.CreateToken].
type Token struct {
	ID string `json:"id"`
	// Kind is "operator", "tenant-admin" or "service".
	Kind    string    `json:"kind"`
	Tenants []string  `json:"tenants"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Revoked time.Time `json:"revoked"`
	Token   string    `json:"token,omitempty"`
}

// PlatformKey is the status of the platform root key.
type PlatformKey struct {
	KeyID         string    `json:"key_id"`
	Version       string    `json:"version"`
	Type          string    `json:"type"`
	Size          int       `json:"size"`
	Enabled       bool      `json:"enabled"`
	NotBefore     time.Time `json:"not_before"`
	Expires       time.Time `json:"expires"`
	RecoveryLevel string    `json:"recovery_level"`
	// Shares counts the wrapped shares under any version of the key.
	Shares int `json:"shares"`
}

// Identities are the platform's identities a tenant may let reach its key.
type Identities struct {
	// ManagedIdentity is nil when the platform does not offer it.
	ManagedIdentity *ManagedIdentity `json:"managed_identity,omitempty"`
	// WorkloadIdentity is nil when the platform does not offer it.
	WorkloadIdentity *WorkloadIdentity `json:"workload_identity,omitempty"`
	// NotOffered says why a mode is not offered, by mode.
	NotOffered map[string]string `json:"not_offered,omitempty"`
}

// ManagedIdentity is the platform's managed identity: the principal to
// give a role on a vault of the platform's directory DirectoryID.
type ManagedIdentity struct {
	DirectoryID string `json:"directory_id"`
	// ObjectID is the principal to assign the role to; "" when the
	// platform could not learn it.
	ObjectID string `json:"object_id,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Name     string `json:"name"`
	// RoleCommand assigns the role on the saved key with the Azure CLI.
	RoleCommand string `json:"role_command,omitempty"`
}

// WorkloadIdentity is what the federated credential of the customer's app
// must name to trust the platform's workload.
type WorkloadIdentity struct {
	Issuer   string `json:"issuer"`
	Subject  string `json:"subject"`
	Audience string `json:"audience"`
	// Command adds the federated credential with the Azure CLI.
	Command string `json:"command"`
}

// Inventory lists, for every key version, how many wrapped shares depend
// on it.
type Inventory struct {
	Versions []Version `json:"versions"`
}

// Version is one key version of an [Inventory].
type Version struct {
	KeyID   string `json:"key_id"`
	Shares  int    `json:"shares"`
	Current bool   `json:"current"`
	// SafeToRetire is set when no share depends on the version any more.
	SafeToRetire bool `json:"safe_to_retire"`
}

// KeySettings are a tenant's customer-key settings as the server shows
// them: the secret is never returned, only whether one is set. The fields
// of [Settings] that belong to one provider are empty for the other.
type KeySettings struct {
	// Provider is "azure-key-vault" or "aws-kms".
	Provider string `json:"provider"`
	KeyID    string `json:"key_id"`
	// DirectoryID, ClientID and Credential are Azure Key Vault's.
	DirectoryID string `json:"directory_id"`
	ClientID    string `json:"client_id"`
	Credential  string `json:"credential"`
	// RoleARN and ExternalID are AWS KMS's: the role byok assumes and the
	// external id its trust policy requires; both empty when the key
	// policy names the platform's principal.
	RoleARN    string `json:"role_arn,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
	SecretSet  bool   `json:"secret_set"`
}

// Coverage selects the scopes the customer key covers: every scope (All)
// but those in Exclude, or only those in Include.
type Coverage struct {
	All     bool     `json:"all"`
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// Scope is one scope of a tenant and the key it is under.
type Scope struct {
	Scope string `json:"scope"`
	// Kind is "customer-managed" or "platform-managed".
	Kind         string `json:"kind"`
	Covered      bool   `json:"covered"`
	PlatformOnly bool   `json:"platform_only"`
}

// Health is the state of one of a tenant's keys in the keyring.
type Health struct {
	Kind        string    `json:"kind"`
	Epoch       uint32    `json:"epoch"`
	State       string    `json:"state"`
	Policy      string    `json:"policy"`
	LastSuccess time.Time `json:"last_success"`
	Reason      string    `json:"reason"`
	DetectedAt  time.Time `json:"detected_at"`
}

// Check is one line of a Test configuration [Report].
type Check struct {
	Name string `json:"name"`
	// Outcome is "pass", "warn" or "fail".
	Outcome    string  `json:"outcome"`
	Detail     string  `json:"detail"`
	Remedy     string  `json:"remedy"`
	DurationMS float64 `json:"duration_ms"`
}

// Report is the result of Test configuration.
type Report struct {
	Passed bool      `json:"passed"`
	KeyID  string    `json:"key_id"`
	Checks []Check   `json:"checks"`
	At     time.Time `json:"at"`
}

// Job is a unit of lifecycle work (activation, rotation, re-key, scope
// move, disable) and its progress.
type Job struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Kind is "activate", "rotate", "rekey", "scopes" or "disable".
	Kind string `json:"kind"`
	// State is "pending", "running", "done" or "failed".
	State string `json:"state"`
	// Done and Total count the DEKs or shares handled so far and in all.
	Done     int64     `json:"done"`
	Total    int64     `json:"total"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
	Actor    Actor     `json:"actor"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// Job states.
const (
	JobPending = "pending"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Finished reports whether the job is done or failed.
func (j Job) Finished() bool { return j.State == JobDone || j.State == JobFailed }

// Actor is who caused an audit event or started a job.
type Actor struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Key is a tenant's customer-managed key: the "Enterprise Key" page.
type Key struct {
	Tenant string `json:"tenant"`
	// State is "none", "draft", "scheduled", "active", "rotating",
	// "revoked" or "disabled".
	State        string      `json:"state"`
	Settings     KeySettings `json:"settings"`
	EnforceAt    time.Time   `json:"enforce_at"`
	ActivatedAt  time.Time   `json:"activated_at"`
	Coverage     Coverage    `json:"coverage"`
	Scopes       []Scope     `json:"scopes"`
	LastTest     *Report     `json:"last_test"`
	CurrentKeyID string      `json:"current_key_id"`
	Epoch        uint32      `json:"epoch"`
	Health       []Health    `json:"health"`
	// Job is the key's unfinished or last job, if any.
	Job     *Job      `json:"job"`
	Updated time.Time `json:"updated"`
}

// TimelineEvent is one revocation, unavailability or restoration of a
// tenant's key: when it was detected and when it was enforced.
type TimelineEvent struct {
	// Kind is "revoked", "unavailable" or "restored".
	Kind       string    `json:"kind"`
	Reason     string    `json:"reason"`
	DetectedAt time.Time `json:"detected_at"`
	EnforcedAt time.Time `json:"enforced_at"`
	Replica    string    `json:"replica"`
}

// AuditEvent is one event of the audit log, in the form of docs/audit.md.
// Before and After are the JSON texts the server recorded.
type AuditEvent struct {
	Tenant   string            `json:"tenant"`
	Seq      uint64            `json:"seq"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
	ID       string            `json:"id"`
	Time     time.Time         `json:"time"`
	Actor    Actor             `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Before   string            `json:"before"`
	After    string            `json:"after"`
	Outcome  string            `json:"outcome"`
	Reason   string            `json:"reason"`
	Vault    *VaultCall        `json:"vault"`
	Details  map[string]string `json:"details"`
}

// VaultCall describes the vault call an audit event records.
type VaultCall struct {
	Operation string `json:"operation"`
	KeyID     string `json:"key_id"`
	Purpose   string `json:"purpose"`
	RequestID string `json:"request_id"`
}

// AuditPage is one page of audit events; NextCursor, when set, reads the
// next page.
type AuditPage struct {
	Events     []AuditEvent `json:"events"`
	NextCursor string       `json:"next_cursor"`
}
