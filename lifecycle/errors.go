package lifecycle

import (
	"errors"
	"fmt"
	"strings"

	"github.com/openbyok/byok"
)

// ErrState is wrapped by every [*StateError]: the operation is not
// allowed in the tenant key's current state (HTTP 409).
var ErrState = errors.New("lifecycle: operation not allowed in this state")

// StateError says why an operation was refused in the current state and
// what is allowed instead.
type StateError struct {
	Tenant string
	State  State
	Op     Op
	// Reason says why, in words a tenant admin can act on.
	Reason string
	// Allowed lists the operations the rules allow in State.
	Allowed []Op
}

func (e *StateError) Error() string {
	allowed := make([]string, len(e.Allowed))
	for i, op := range e.Allowed {
		allowed[i] = string(op)
	}
	msg := fmt.Sprintf("lifecycle: cannot %s the key of tenant %q in state %s: %s", e.Op, e.Tenant, e.State, e.Reason)
	if len(allowed) > 0 {
		msg += "; allowed now: " + strings.Join(allowed, ", ")
	}
	return msg
}

// Unwrap returns [ErrState].
func (e *StateError) Unwrap() error { return ErrState }

// FieldError says which field of a request was wrong and why. It wraps
// [byok.ErrInvalidInput] (HTTP 400).
type FieldError struct {
	// Field names the field as the API spells it: "key_id",
	// "enforce_at", "coverage.include[2]", ...
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "lifecycle: " + e.Field + ": " + e.Reason }

// Unwrap returns [byok.ErrInvalidInput].
func (e *FieldError) Unwrap() error { return byok.ErrInvalidInput }
