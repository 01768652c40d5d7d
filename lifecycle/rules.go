package lifecycle

// Reasons of refusals, shared by several rules.
const (
	reasonNotConfigured = "no key is configured; configure one first"
	reasonNotActive     = "BYOK is not active yet; edit the settings with configure, test, and proceed instead"
	reasonNothingToOff  = "BYOK is not active; there is nothing to disable"
	reasonEnforced      = "the enforcement date has passed: only rotating the key and changing the covered scopes are allowed; to use another key, rotate to it"
	reasonAlreadyActive = "BYOK is already active"
	reasonBusy          = "a rotation or re-key is running; wait for its job to finish"
	reasonRevoked       = "the customer's key is revoked (access removed or key unusable); restore access in the vault first, service resumes by itself"
	reasonRevokedOff    = "your key cannot be reached, and " + reasonOffNeedsKey
	reasonDisabled      = "BYOK is disabled; configure and test a key to start again"
)

// reasonOffNeedsKey is why disable needs the customer's key, in the words
// of the customer's admin, who reads it in the console.
const reasonOffNeedsKey = "turning BYOK off needs your key one last time, to hand your data back to platform-managed keys: restore the platform's access to the key in your vault, then disable"

// rules says, for every state, which operations are refused and why; an
// operation not listed is allowed. Scheduled tenants past their
// enforcement date follow enforcedRules instead (activation is under way).
var rules = map[State]map[Op]string{
	StateNone: {
		OpTest: reasonNotConfigured, OpProceed: reasonNotConfigured, OpSetScopes: reasonNotConfigured,
		OpRotate: reasonNotConfigured, OpRekey: reasonNotConfigured, OpDisable: reasonNothingToOff,
		OpCertificateRollover: reasonNotConfigured,
	},
	StateDraft: {
		OpRotate: reasonNotActive, OpRekey: reasonNotActive, OpDisable: reasonNothingToOff,
	},
	StateScheduled: {
		OpRotate: reasonNotActive, OpRekey: reasonNotActive, OpDisable: reasonNothingToOff,
	},
	StateActive: {
		OpConfigure: reasonEnforced, OpProceed: reasonAlreadyActive,
	},
	StateRotating: {
		OpConfigure: reasonEnforced, OpProceed: reasonAlreadyActive,
		OpSetScopes: reasonBusy, OpRotate: reasonBusy, OpRekey: reasonBusy, OpDisable: reasonBusy,
		OpCertificateRollover: reasonBusy,
	},
	StateRevoked: {
		OpConfigure: reasonEnforced, OpProceed: reasonAlreadyActive,
		OpSetScopes: reasonRevoked, OpRotate: reasonRevoked, OpRekey: reasonRevoked, OpDisable: reasonRevokedOff,
	},
	StateDisabled: {
		OpProceed: reasonDisabled, OpRotate: reasonDisabled, OpRekey: reasonDisabled, OpDisable: reasonDisabled,
	},
}

// enforcedRules apply to a scheduled tenant whose enforcement date has
// passed but whose activation has not finished.
var enforcedRules = map[Op]string{
	OpConfigure: reasonEnforced, OpProceed: "the enforcement date has passed and activation is under way",
	OpRotate: "activation is under way; rotate once the key is active", OpRekey: "activation is under way; re-key once the key is active",
	OpDisable: "activation is under way; disable once the key is active",
}

// Allowed returns nil if the rules allow op in state (enforced: a
// scheduled tenant whose enforcement date has passed), or a [*StateError]
// that says why not and lists what is allowed.
func Allowed(tenant string, state State, enforced bool, op Op) error {
	table := rules[state]
	if state == StateScheduled && enforced {
		table = enforcedRules
	}
	reason, refused := table[op]
	if !refused {
		return nil
	}
	e := &StateError{Tenant: tenant, State: state, Op: op, Reason: reason}
	for _, o := range Ops {
		if _, no := table[o]; !no {
			e.Allowed = append(e.Allowed, o)
		}
	}
	return e
}
