package kvemu

import (
	"time"

	"github.com/openbyok/byok/kvemu/internal/vault"
)

// Key Vault objects and test controls, as the vault control methods take
// and return them.
type (
	// VaultConfig describes a vault: name, tenant, soft-delete retention,
	// purge protection (together: the keys' recoveryLevel), permission
	// model, kind and firewall.
	VaultConfig = vault.VaultConfig
	// NetworkRules is a vault's firewall: default action, allowed client
	// addresses and private-endpoint access.
	NetworkRules = vault.NetworkRules
	// KeySpec describes a key to create or import.
	KeySpec = vault.KeySpec
	// KeyInfo describes one key version.
	KeyInfo = vault.KeyInfo
	// KeyUpdate changes a key version's attributes.
	KeyUpdate = vault.KeyUpdate
	// RoleAssignment grants a principal (by object id) a built-in or
	// custom role on a vault or one key.
	RoleAssignment = vault.RoleAssignment
	// Throttle configures a vault's token bucket.
	Throttle = vault.Throttle
	// ThrottleMode selects documented limits, a custom rate or none.
	ThrottleMode = vault.ThrottleMode
	// Fault is an injected failure (5xx or dropped connection) of a
	// vault's next requests.
	Fault = vault.Fault
	// Call counts data-plane requests per vault, operation, principal and
	// status.
	Call = vault.Call
	// Op names a data-plane operation.
	Op = vault.Op
)

// Throttle modes.
const (
	ThrottleOff        = vault.ThrottleOff
	ThrottleDocumented = vault.ThrottleDocumented
	ThrottleCustom     = vault.ThrottleCustom
)

// Data-plane operations, as counted by [Emulator.Calls].
const (
	OpCreateKey               = vault.OpCreateKey
	OpImportKey               = vault.OpImportKey
	OpGetKey                  = vault.OpGetKey
	OpUpdateKey               = vault.OpUpdateKey
	OpListKeys                = vault.OpListKeys
	OpListKeyVersions         = vault.OpListKeyVersions
	OpDeleteKey               = vault.OpDeleteKey
	OpGetDeletedKey           = vault.OpGetDeletedKey
	OpListDeletedKeys         = vault.OpListDeletedKeys
	OpRecoverDeletedKey       = vault.OpRecoverDeletedKey
	OpPurgeDeletedKey         = vault.OpPurgeDeletedKey
	OpRotateKey               = vault.OpRotateKey
	OpGetKeyRotationPolicy    = vault.OpGetKeyRotationPolicy
	OpUpdateKeyRotationPolicy = vault.OpUpdateKeyRotationPolicy
	OpBackupKey               = vault.OpBackupKey
	OpRestoreKey              = vault.OpRestoreKey
	OpEncrypt                 = vault.OpEncrypt
	OpDecrypt                 = vault.OpDecrypt
	OpWrapKey                 = vault.OpWrapKey
	OpUnwrapKey               = vault.OpUnwrapKey
	OpSign                    = vault.OpSign
	OpVerify                  = vault.OpVerify
	OpGetRandomBytes          = vault.OpGetRandomBytes
	OpUnknown                 = vault.OpUnknown
)

// Errors of the vault control methods, for errors.Is.
var (
	ErrVaultNotFound = vault.ErrNotFound
	ErrVaultConflict = vault.ErrConflict
	ErrVaultInvalid  = vault.ErrInvalid
)

// CreateVault adds a vault, served at https://{name}.vault.azure.net (or
// {name}.managedhsm.azure.net for a Managed HSM) and at its private-link
// name. Its challenge names cfg.TenantID; only that tenant's tokens pass.
func (e *Emulator) CreateVault(cfg VaultConfig) error { return e.vaults.CreateVault(cfg) }

// DeleteVault removes a vault and its keys at once.
func (e *Emulator) DeleteVault(name string) error { return e.vaults.DeleteVault(name) }

// Vault returns a vault's configuration; cfg.RecoveryLevel() is the
// recoveryLevel its keys report.
func (e *Emulator) Vault(name string) (VaultConfig, error) { return e.vaults.Vault(name) }

// Vaults lists every vault's configuration, sorted by name.
func (e *Emulator) Vaults() []VaultConfig { return e.vaults.Vaults() }

// SetNetwork replaces a vault's firewall rules.
func (e *Emulator) SetNetwork(vaultName string, rules NetworkRules) error {
	return e.vaults.SetNetwork(vaultName, rules)
}

// CreateKey creates a key (or a new version of it) in a vault and returns
// its versioned id.
func (e *Emulator) CreateKey(vaultName, keyName string, spec KeySpec) (KeyInfo, error) {
	return e.vaults.CreateKey(vaultName, keyName, spec)
}

// ImportKey imports an *rsa.PrivateKey or *ecdsa.PrivateKey as a new
// version of a key; hsm marks it RSA-HSM / EC-HSM.
func (e *Emulator) ImportKey(vaultName, keyName string, priv any, hsm bool, spec KeySpec) (KeyInfo, error) {
	return e.vaults.ImportKey(vaultName, keyName, priv, hsm, spec)
}

// Key describes a key version ("" for the latest).
func (e *Emulator) Key(vaultName, keyName, version string) (KeyInfo, error) {
	return e.vaults.Key(vaultName, keyName, version)
}

// KeyVersions lists a key's versions, oldest first.
func (e *Emulator) KeyVersions(vaultName, keyName string) ([]KeyInfo, error) {
	return e.vaults.KeyVersions(vaultName, keyName)
}

// UpdateKey changes a key version's attributes, or every version's when
// version is "".
func (e *Emulator) UpdateKey(vaultName, keyName, version string, u KeyUpdate) error {
	return e.vaults.UpdateKey(vaultName, keyName, version, u)
}

// DisableKey disables every version of a key: crypto operations answer 403
// KeyDisabled, GET still works.
func (e *Emulator) DisableKey(vaultName, keyName string) error {
	return e.vaults.SetKeyEnabled(vaultName, keyName, false)
}

// EnableKey enables every version of a key.
func (e *Emulator) EnableKey(vaultName, keyName string) error {
	return e.vaults.SetKeyEnabled(vaultName, keyName, true)
}

// DeleteKey soft-deletes a key; it can be recovered until purged or until
// the vault's retention passes.
func (e *Emulator) DeleteKey(vaultName, keyName string) error {
	return e.vaults.DeleteKey(vaultName, keyName)
}

// RecoverKey recovers a soft-deleted key.
func (e *Emulator) RecoverKey(vaultName, keyName string) error {
	return e.vaults.RecoverKey(vaultName, keyName)
}

// PurgeKey deletes a key for good, live or soft-deleted, even under purge
// protection (it stands in for the end of the retention period).
func (e *Emulator) PurgeKey(vaultName, keyName string) error {
	return e.vaults.PurgeKey(vaultName, keyName)
}

// RotateKey creates a new version of a key like its latest one.
func (e *Emulator) RotateKey(vaultName, keyName string) (KeyInfo, error) {
	return e.vaults.RotateKey(vaultName, keyName)
}

// AssignRole grants a role on a vault (or one key) to a principal's object
// id and returns the assignment's id.
func (e *Emulator) AssignRole(vaultName string, a RoleAssignment) (string, error) {
	return e.vaults.AssignRole(vaultName, a)
}

// RoleAssignments lists a vault's role assignments, revoked ones included.
func (e *Emulator) RoleAssignments(vaultName string) ([]RoleAssignment, error) {
	return e.vaults.RoleAssignments(vaultName)
}

// RevokeRole suspends a role assignment until [Emulator.RestoreRole].
func (e *Emulator) RevokeRole(vaultName, id string) error { return e.vaults.RevokeRole(vaultName, id) }

// RestoreRole reinstates a revoked role assignment.
func (e *Emulator) RestoreRole(vaultName, id string) error {
	return e.vaults.RestoreRole(vaultName, id)
}

// RemoveRole deletes a role assignment.
func (e *Emulator) RemoveRole(vaultName, id string) error { return e.vaults.RemoveRole(vaultName, id) }

// SetAccessPolicy sets a principal's key permissions (get, wrapKey, …,
// or all) on a vault that uses access policies; none removes them.
func (e *Emulator) SetAccessPolicy(vaultName, objectID string, keyPermissions ...string) error {
	return e.vaults.SetAccessPolicy(vaultName, objectID, keyPermissions)
}

// SetLatency delays every request to a vault by fixed plus up to jitter.
func (e *Emulator) SetLatency(vaultName string, fixed, jitter time.Duration) error {
	return e.vaults.SetLatency(vaultName, fixed, jitter)
}

// SetThrottle sets a vault's throttle; excess requests get 429 Throttled.
func (e *Emulator) SetThrottle(vaultName string, t Throttle) error {
	return e.vaults.SetThrottle(vaultName, t)
}

// InjectFault makes a vault's next requests fail with a 5xx or a dropped
// connection.
func (e *Emulator) InjectFault(vaultName string, f Fault) error {
	return e.vaults.InjectFault(vaultName, f)
}

// ClearFaults removes a vault's pending faults.
func (e *Emulator) ClearFaults(vaultName string) error { return e.vaults.ClearFaults(vaultName) }

// SetOffline cuts a vault off the network (connections to it are dropped)
// or reconnects it.
func (e *Emulator) SetOffline(vaultName string, offline bool) error {
	return e.vaults.SetOffline(vaultName, offline)
}

// Calls returns the data-plane request counters.
func (e *Emulator) Calls() []Call { return e.vaults.Calls() }

// CallCount sums the requests to a vault with operation op and the given
// status (0: any), over all principals.
func (e *Emulator) CallCount(vaultName string, op Op, status int) int64 {
	return e.vaults.CallCount(vaultName, op, status)
}

// ResetCalls zeroes the data-plane request counters.
func (e *Emulator) ResetCalls() { e.vaults.ResetCalls() }
