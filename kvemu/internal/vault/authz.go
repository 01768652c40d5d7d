package vault

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Op names one data-plane operation, as counted by [Service.Calls] and
// authorised by roles and access policies.
type Op string

// The data-plane operations of a vault.
const (
	OpCreateKey               Op = "CreateKey"
	OpImportKey               Op = "ImportKey"
	OpGetKey                  Op = "GetKey"
	OpUpdateKey               Op = "UpdateKey"
	OpListKeys                Op = "ListKeys"
	OpListKeyVersions         Op = "ListKeyVersions"
	OpDeleteKey               Op = "DeleteKey"
	OpGetDeletedKey           Op = "GetDeletedKey"
	OpListDeletedKeys         Op = "ListDeletedKeys"
	OpRecoverDeletedKey       Op = "RecoverDeletedKey"
	OpPurgeDeletedKey         Op = "PurgeDeletedKey"
	OpRotateKey               Op = "RotateKey"
	OpGetKeyRotationPolicy    Op = "GetKeyRotationPolicy"
	OpUpdateKeyRotationPolicy Op = "UpdateKeyRotationPolicy"
	OpBackupKey               Op = "BackupKey"
	OpRestoreKey              Op = "RestoreKey"
	OpEncrypt                 Op = "Encrypt"
	OpDecrypt                 Op = "Decrypt"
	OpWrapKey                 Op = "WrapKey"
	OpUnwrapKey               Op = "UnwrapKey"
	OpSign                    Op = "Sign"
	OpVerify                  Op = "Verify"
	OpGetRandomBytes          Op = "GetRandomBytes"
	// OpUnknown is any request that names no operation (a wrong path or
	// method); it is counted but never authorised.
	OpUnknown Op = "Unknown"
)

// opRights maps an operation to its RBAC data action and its access-policy
// key permission.
var opRights = map[Op]struct{ action, permission string }{
	OpCreateKey:               {"Microsoft.KeyVault/vaults/keys/create/action", "create"},
	OpImportKey:               {"Microsoft.KeyVault/vaults/keys/import/action", "import"},
	OpGetKey:                  {"Microsoft.KeyVault/vaults/keys/read", "get"},
	OpUpdateKey:               {"Microsoft.KeyVault/vaults/keys/update/action", "update"},
	OpListKeys:                {"Microsoft.KeyVault/vaults/keys/read", "list"},
	OpListKeyVersions:         {"Microsoft.KeyVault/vaults/keys/read", "list"},
	OpDeleteKey:               {"Microsoft.KeyVault/vaults/keys/delete", "delete"},
	OpGetDeletedKey:           {"Microsoft.KeyVault/vaults/deletedKeys/read", "get"},
	OpListDeletedKeys:         {"Microsoft.KeyVault/vaults/deletedKeys/read", "list"},
	OpRecoverDeletedKey:       {"Microsoft.KeyVault/vaults/deletedKeys/recover/action", "recover"},
	OpPurgeDeletedKey:         {"Microsoft.KeyVault/vaults/deletedKeys/delete", "purge"},
	OpRotateKey:               {"Microsoft.KeyVault/vaults/keys/rotate/action", "rotate"},
	OpGetKeyRotationPolicy:    {"Microsoft.KeyVault/vaults/keyrotationpolicies/read", "getrotationpolicy"},
	OpUpdateKeyRotationPolicy: {"Microsoft.KeyVault/vaults/keyrotationpolicies/write", "setrotationpolicy"},
	OpBackupKey:               {"Microsoft.KeyVault/vaults/keys/backup/action", "backup"},
	OpRestoreKey:              {"Microsoft.KeyVault/vaults/keys/restore/action", "restore"},
	OpEncrypt:                 {"Microsoft.KeyVault/vaults/keys/encrypt/action", "encrypt"},
	OpDecrypt:                 {"Microsoft.KeyVault/vaults/keys/decrypt/action", "decrypt"},
	OpWrapKey:                 {"Microsoft.KeyVault/vaults/keys/wrap/action", "wrapkey"},
	OpUnwrapKey:               {"Microsoft.KeyVault/vaults/keys/unwrap/action", "unwrapkey"},
	OpSign:                    {"Microsoft.KeyVault/vaults/keys/sign/action", "sign"},
	OpVerify:                  {"Microsoft.KeyVault/vaults/keys/verify/action", "verify"},
	OpGetRandomBytes:          {"Microsoft.KeyVault/vaults/rng/action", ""},
}

// hsmActions maps an operation to its Managed HSM local RBAC data action
// (docs: "Local RBAC built-in roles for Managed HSM"; the rotation-policy
// and random-bytes actions are inferred).
var hsmActions = map[Op]string{
	OpCreateKey:               "Microsoft.KeyVault/managedHsm/keys/create",
	OpImportKey:               "Microsoft.KeyVault/managedHsm/keys/import/action",
	OpGetKey:                  "Microsoft.KeyVault/managedHsm/keys/read/action",
	OpUpdateKey:               "Microsoft.KeyVault/managedHsm/keys/write/action",
	OpListKeys:                "Microsoft.KeyVault/managedHsm/keys/read/action",
	OpListKeyVersions:         "Microsoft.KeyVault/managedHsm/keys/read/action",
	OpDeleteKey:               "Microsoft.KeyVault/managedHsm/keys/delete",
	OpGetDeletedKey:           "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action",
	OpListDeletedKeys:         "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action",
	OpRecoverDeletedKey:       "Microsoft.KeyVault/managedHsm/keys/deletedKeys/recover/action",
	OpPurgeDeletedKey:         "Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete",
	OpRotateKey:               "Microsoft.KeyVault/managedHsm/keys/rotate/action",
	OpGetKeyRotationPolicy:    "Microsoft.KeyVault/managedHsm/keys/read/action",
	OpUpdateKeyRotationPolicy: "Microsoft.KeyVault/managedHsm/keys/write/action",
	OpBackupKey:               "Microsoft.KeyVault/managedHsm/keys/backup/action",
	OpRestoreKey:              "Microsoft.KeyVault/managedHsm/keys/restore/action",
	OpEncrypt:                 "Microsoft.KeyVault/managedHsm/keys/encrypt/action",
	OpDecrypt:                 "Microsoft.KeyVault/managedHsm/keys/decrypt/action",
	OpWrapKey:                 "Microsoft.KeyVault/managedHsm/keys/wrap/action",
	OpUnwrapKey:               "Microsoft.KeyVault/managedHsm/keys/unwrap/action",
	OpSign:                    "Microsoft.KeyVault/managedHsm/keys/sign/action",
	OpVerify:                  "Microsoft.KeyVault/managedHsm/keys/verify/action",
	OpGetRandomBytes:          "Microsoft.KeyVault/managedHsm/rng/action",
}

// KeyPermissions lists the legacy access-policy key permissions, as the
// Azure portal names them; "all" grants every one.
var KeyPermissions = []string{
	"get", "list", "update", "create", "import", "delete", "recover", "backup", "restore",
	"decrypt", "encrypt", "unwrapKey", "wrapKey", "verify", "sign", "purge",
	"rotate", "getRotationPolicy", "setRotationPolicy",
}

// BuiltinRoles maps the names of Key Vault's built-in data-plane roles to
// their data actions ("*" matches any run of characters).
var BuiltinRoles = map[string][]string{
	"Key Vault Administrator": {"Microsoft.KeyVault/vaults/*"},
	"Key Vault Crypto Officer": {
		"Microsoft.KeyVault/vaults/keys/*",
		"Microsoft.KeyVault/vaults/deletedKeys/*",
		"Microsoft.KeyVault/vaults/keyrotationpolicies/*",
	},
	"Key Vault Crypto User": {
		"Microsoft.KeyVault/vaults/keys/read",
		"Microsoft.KeyVault/vaults/keys/update/action",
		"Microsoft.KeyVault/vaults/keys/backup/action",
		"Microsoft.KeyVault/vaults/keys/encrypt/action",
		"Microsoft.KeyVault/vaults/keys/decrypt/action",
		"Microsoft.KeyVault/vaults/keys/wrap/action",
		"Microsoft.KeyVault/vaults/keys/unwrap/action",
		"Microsoft.KeyVault/vaults/keys/sign/action",
		"Microsoft.KeyVault/vaults/keys/verify/action",
	},
	"Key Vault Crypto Service Encryption User": {
		"Microsoft.KeyVault/vaults/keys/read",
		"Microsoft.KeyVault/vaults/keys/wrap/action",
		"Microsoft.KeyVault/vaults/keys/unwrap/action",
	},
	"Key Vault Reader": {
		"Microsoft.KeyVault/vaults/*/read",
		"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
	},
	// Managed HSM local RBAC roles: they apply to Managed HSMs only, as
	// the Key Vault roles apply to vaults only.
	"Managed HSM Administrator": {}, // security domain, backups and roles: no key operation
	"Managed HSM Crypto Officer": {
		"Microsoft.KeyVault/managedHsm/keys/deletedKeys/*",
	},
	"Managed HSM Crypto User": {
		"Microsoft.KeyVault/managedHsm/keys/read/action",
		"Microsoft.KeyVault/managedHsm/keys/write/action",
		"Microsoft.KeyVault/managedHsm/keys/rotate/action",
		"Microsoft.KeyVault/managedHsm/keys/create",
		"Microsoft.KeyVault/managedHsm/keys/delete",
		"Microsoft.KeyVault/managedHsm/keys/backup/action",
		"Microsoft.KeyVault/managedHsm/keys/restore/action",
		"Microsoft.KeyVault/managedHsm/keys/release/action",
		"Microsoft.KeyVault/managedHsm/keys/import/action",
		"Microsoft.KeyVault/managedHsm/keys/encrypt/action",
		"Microsoft.KeyVault/managedHsm/keys/decrypt/action",
		"Microsoft.KeyVault/managedHsm/keys/wrap/action",
		"Microsoft.KeyVault/managedHsm/keys/unwrap/action",
		"Microsoft.KeyVault/managedHsm/keys/sign/action",
		"Microsoft.KeyVault/managedHsm/keys/verify/action",
		"Microsoft.KeyVault/managedHsm/rng/action",
	},
	"Managed HSM Crypto Service Encryption User": {
		"Microsoft.KeyVault/managedHsm/keys/read/action",
		"Microsoft.KeyVault/managedHsm/keys/wrap/action",
		"Microsoft.KeyVault/managedHsm/keys/unwrap/action",
	},
	"Managed HSM Crypto Auditor": {
		"Microsoft.KeyVault/managedHsm/keys/read/action",
	},
	"Managed HSM Backup": {
		"Microsoft.KeyVault/managedHsm/keys/backup/action",
	},
}

// checkFamily refuses a built-in role of the other kind of vault: Key Vault
// roles on a Managed HSM, Managed HSM roles on a vault.
func (a *RoleAssignment) checkFamily(hsm bool) error {
	if a.Role == "" {
		return nil
	}
	isHSM := strings.HasPrefix(strings.ToLower(a.Role), "managed hsm ")
	switch {
	case hsm && !isHSM:
		return fmt.Errorf("%w: role %q is a Key Vault role; a Managed HSM uses its local RBAC roles (e.g. Managed HSM Crypto User, Managed HSM Crypto Service Encryption User)", ErrInvalid, a.Role)
	case !hsm && isHSM:
		return fmt.Errorf("%w: role %q is a Managed HSM role; a vault uses the Key Vault roles (e.g. Key Vault Crypto User, Key Vault Crypto Service Encryption User)", ErrInvalid, a.Role)
	}
	return nil
}

// RoleAssignment grants a principal a role on a vault or on one key.
type RoleAssignment struct {
	// ID is assigned by [Service.AssignRole].
	ID string `json:"id" yaml:"-"`
	// PrincipalID is the object id of the service principal or managed
	// identity (the token's oid claim).
	PrincipalID string `json:"principalId" yaml:"principalId"`
	// Role is a built-in role name (see [BuiltinRoles]); or empty, and
	// DataActions lists the data actions of a custom role.
	Role        string   `json:"role,omitempty" yaml:"role,omitempty"`
	DataActions []string `json:"dataActions,omitempty" yaml:"dataActions,omitempty"`
	// Key scopes the assignment to one key; empty scopes it to the vault.
	Key string `json:"key,omitempty" yaml:"key,omitempty"`
	// Revoked assignments stay listed but grant nothing until restored.
	Revoked bool `json:"revoked,omitempty" yaml:"revoked,omitempty"`
}

func (a *RoleAssignment) validate() error {
	if a.PrincipalID == "" {
		return fmt.Errorf("%w: role assignment needs a PrincipalID (the principal's object id)", ErrInvalid)
	}
	switch {
	case a.Role != "" && len(a.DataActions) > 0:
		return fmt.Errorf("%w: role assignment names both Role %q and DataActions; give one", ErrInvalid, a.Role)
	case a.Role != "":
		if a.builtin() == nil {
			return fmt.Errorf("%w: unknown role %q; use a built-in role name or DataActions for a custom role", ErrInvalid, a.Role)
		}
	case len(a.DataActions) == 0:
		return fmt.Errorf("%w: role assignment needs a Role or DataActions", ErrInvalid)
	}
	return nil
}

func (a *RoleAssignment) builtin() []string {
	for name, actions := range BuiltinRoles {
		if strings.EqualFold(name, a.Role) {
			return actions
		}
	}
	return nil
}

// grants reports whether a active assignment of principal oid allows action
// on key (empty for vault-level operations).
func (a *RoleAssignment) grants(oid, action, key string) bool {
	if a.Revoked || !strings.EqualFold(a.PrincipalID, oid) {
		return false
	}
	if a.Key != "" && !strings.EqualFold(a.Key, key) {
		return false
	}
	actions := a.DataActions
	if a.Role != "" {
		actions = a.builtin()
	}
	return slices.ContainsFunc(actions, func(p string) bool { return matchAction(p, action) })
}

// matchAction matches a data action against a pattern in which "*" stands
// for any run of characters, case-insensitively.
func matchAction(pattern, action string) bool {
	pattern, action = strings.ToLower(pattern), strings.ToLower(action)
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == action
	}
	if !strings.HasPrefix(action, pattern[:star]) {
		return false
	}
	rest := pattern[star+1:]
	for i := star; i <= len(action); i++ {
		if matchAction(rest, action[i:]) {
			return true
		}
	}
	return false
}

// normalisePermissions lower-cases and checks access-policy permissions.
func normalisePermissions(perms []string) ([]string, error) {
	out := make([]string, 0, len(perms))
	for _, p := range perms {
		lp := strings.ToLower(p)
		if lp != "all" && !slices.ContainsFunc(KeyPermissions, func(k string) bool { return strings.EqualFold(k, p) }) {
			return nil, fmt.Errorf("%w: unknown key permission %q; known: all, %s", ErrInvalid, p, strings.Join(KeyPermissions, ", "))
		}
		out = append(out, lp)
	}
	return out, nil
}

// authorize decides whether the caller may run op on key in v, answering
// Key Vault's 403 when not.
func (v *vaultState) authorize(c Claims, op Op, key string) *apiError {
	r, ok := opRights[op]
	if !ok {
		return nil
	}
	caller := fmt.Sprintf("appid=%s;oid=%s;iss=%s", c.AppID, c.ObjectID, c.Issuer)
	if v.cfg.AccessPolicies {
		if r.permission == "" {
			return nil
		}
		perms := v.policies[strings.ToLower(c.ObjectID)]
		if slices.Contains(perms, r.permission) || slices.Contains(perms, "all") {
			return nil
		}
		name := r.permission
		for _, k := range KeyPermissions {
			if strings.EqualFold(k, name) {
				name = k
			}
		}
		return forbidden("AccessDenied",
			"The user, group or application '%s' does not have keys %s permission on key vault '%s;location=%s'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
			caller, name, v.cfg.Name, v.cfg.location())
	}
	action := r.action
	if v.cfg.ManagedHSM {
		action = hsmActions[op]
	}
	for _, a := range v.roles {
		if a.grants(c.ObjectID, action, key) {
			return nil
		}
	}
	if v.cfg.ManagedHSM {
		// The form of Managed HSM's local RBAC refusals
		// (Azure/azure-cli#32719); the code on key operations is inferred.
		scope := "/"
		if key != "" {
			scope = "/keys/" + key
		}
		return &apiError{status: http.StatusForbidden, code: "AccessDenied", msg: fmt.Sprintf(
			"Not authorized to access %s on %s (Activity ID: %s)", action, scope, activityID())}
	}
	resource := "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/kvemu/providers/microsoft.keyvault/vaults/" + strings.ToLower(v.cfg.Name)
	if key != "" {
		resource += "/keys/" + key
	}
	return forbidden("ForbiddenByRbac",
		"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: %s\r\nAction: '%s'\r\nResource: '%s'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: %s;location=%s\r\n",
		caller, r.action, resource, v.cfg.Name, v.cfg.location())
}

// activityID returns a random GUID-shaped id, as Managed HSM puts in its
// errors.
func activityID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
