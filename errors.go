package byok

import (
	"errors"
	"fmt"
	"time"

	"github.com/openbyok/byok/kms"
)

// Sentinel errors. Every error the keyring returns wraps one of them, so
// callers branch with [errors.Is].
var (
	// ErrKeyRevoked: the tenant's key said no (access removed, key disabled,
	// deleted or expired). The error is a [*RevokedError] naming the reason.
	ErrKeyRevoked = errors.New("byok: tenant key revoked")
	// ErrKeyUnavailable: the key provider has not answered for longer than
	// the tenant's policy allows (max staleness, or at once under Strict).
	ErrKeyUnavailable = errors.New("byok: tenant key unavailable")
	// ErrDecrypt: a ciphertext failed authentication. It is the one error
	// for every such failure (wrong tenant, wrong scope, wrong associated
	// data, altered bytes, unknown key), so it is no oracle.
	ErrDecrypt = errors.New("byok: message authentication failed")
	// ErrFormat: the bytes are not a byok ciphertext of a version this
	// library reads. The error is a [*FormatError].
	ErrFormat = errors.New("byok: not a byok ciphertext")
	// ErrInvalidInput: an argument is out of range (empty or oversized
	// tenant or scope id, payload over the limit). The error is an
	// [*InputError].
	ErrInvalidInput = errors.New("byok: invalid input")
	// ErrUnknownTenant: no tenant with that id exists.
	ErrUnknownTenant = errors.New("byok: unknown tenant")
	// ErrNotFound and ErrExists are what a [Store] returns for a missing or
	// duplicate row.
	ErrNotFound = errors.New("byok: not found")
	ErrExists   = errors.New("byok: already exists")
)

// RevokedError is returned for every call on a tenant key that has been
// revoked.
type RevokedError struct {
	Tenant     string
	Kind       KeyKind
	Reason     kms.Reason // why the provider said no
	DetectedAt time.Time  // when this process saw the revocation
	Err        error      // the provider's error
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("byok: %s key of tenant %q revoked (%s) at %s; restore the key or its access in the vault and service resumes by itself",
		e.Kind, e.Tenant, e.Reason, e.DetectedAt.UTC().Format(time.RFC3339))
}

func (e *RevokedError) Unwrap() []error { return []error{ErrKeyRevoked, e.Err} }

// UnavailableError is returned when the key provider has been unreachable
// for longer than the tenant's policy allows.
type UnavailableError struct {
	Tenant      string
	Kind        KeyKind
	LastSuccess time.Time // last successful check; zero if never
	Err         error     // the last provider error
}

func (e *UnavailableError) Error() string {
	last := "never"
	if !e.LastSuccess.IsZero() {
		last = e.LastSuccess.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("byok: %s key of tenant %q unavailable (last successful check: %s): %v",
		e.Kind, e.Tenant, last, e.Err)
}

func (e *UnavailableError) Unwrap() []error { return []error{ErrKeyUnavailable, e.Err} }

// InputError says which argument was wrong and why.
type InputError struct {
	Arg    string // "tenant", "scope", "plaintext", ...
	Reason string // e.g. "is empty", "is 300 bytes, the limit is 255"
}

func (e *InputError) Error() string { return "byok: " + e.Arg + " " + e.Reason }

func (e *InputError) Unwrap() error { return ErrInvalidInput }

// FormatError says why bytes are not a ciphertext this library reads.
type FormatError struct {
	Reason string // e.g. "unknown format version 7; this library reads version 1"
}

func (e *FormatError) Error() string { return "byok: " + e.Reason }

func (e *FormatError) Unwrap() error { return ErrFormat }
