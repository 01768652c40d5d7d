// Package kms defines the key-wrapping providers that protect byok's key
// shares: the customer's key in Azure Key Vault ([azurekv]), the platform's
// own root key ([local]), and whatever comes later (AWS KMS, GCP KMS, Vault
// transit).
//
// A provider wraps and unwraps short key material (byok only ever wraps
// 32-byte shares and, for certificates, small private keys) under a key that
// never leaves it. Every wrapped value records the exact, versioned key id
// that produced it, and Unwrap always uses that version: a versionless
// "latest" unwrap breaks after every rotation.
//
// # Errors
//
// Every error a provider returns for a failed operation is, or wraps, an
// [*Error] whose [Class] tells the caller what to do:
//
//   - [Authoritative]: the key's owner or the key's state says no (access
//     removed, consent withdrawn, firewall, key disabled, deleted, expired or
//     not yet valid). Retrying will not help; byok revokes at once.
//   - [Transient]: the provider could not answer (timeout, connection refused,
//     5xx, 429). It may succeed later; byok keeps serving from cache up to its
//     staleness limit.
//   - [Invalid]: the request itself can never succeed (malformed key id,
//     unsupported key type, tampered or foreign wrapped value).
//
// The provider's own error stays reachable with [errors.As] through
// [Error.Unwrap]. Errors never contain key material, tokens or secrets.
//
// [azurekv]: github.com/openbyok/byok/kms/azurekv
// [local]: github.com/openbyok/byok/kms/local
package kms

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provider wraps and unwraps key material under a key it holds.
//
// Implementations are safe for concurrent use. Every method honours ctx:
// a cancelled or expired ctx returns promptly with an error of class
// [Transient] that wraps ctx.Err().
type Provider interface {
	// Wrap encrypts plaintext (at most [MaxPlaintext] bytes) under the key
	// named by keyID, which may be versionless. The result names the exact
	// version that was used.
	Wrap(ctx context.Context, keyID string, plaintext []byte) (Wrapped, error)

	// Unwrap decrypts w with exactly the key version w.KeyID names. A value
	// wrapped by another key, or altered in any way, fails with class
	// [Invalid] (or [Authoritative] if the key itself is unusable).
	Unwrap(ctx context.Context, w Wrapped) ([]byte, error)

	// Describe reports the properties of the key named by keyID; for a
	// versionless id, those of its current version.
	Describe(ctx context.Context, keyID string) (KeyInfo, error)
}

// MaxPlaintext is the largest plaintext Wrap must accept. It fits RSA-2048
// with OAEP-SHA256 (190 bytes).
const MaxPlaintext = 190

// Wrapped is key material wrapped by a provider.
type Wrapped struct {
	// KeyID is the full, versioned id of the key that produced Ciphertext.
	KeyID string
	// Algorithm names the wrapping algorithm, e.g. "RSA-OAEP-256".
	Algorithm string
	// Ciphertext is the wrapped key material.
	Ciphertext []byte
}

// KeyInfo describes one version of a key, in the facts every provider
// has. What only one provider knows (Azure Key Vault's recovery level and
// key tags, say) stays in that provider's package, behind its own checks.
type KeyInfo struct {
	KeyID     string    // versioned id of the version described
	Type      string    // "RSA", "RSA-HSM", "oct", ...
	Size      int       // bits; 0 if the provider does not say
	Ops       []string  // permitted operations, e.g. "wrapKey", "unwrapKey"
	Enabled   bool      // false: every crypto operation is refused
	NotBefore time.Time // zero: no lower bound
	Expires   time.Time // zero: no expiry
}

// Class tells how the caller should react to a failed provider call.
type Class int

const (
	// Transient failures may succeed when retried later.
	Transient Class = iota + 1
	// Authoritative failures are the key owner's answer: access is gone.
	Authoritative
	// Invalid failures can never succeed: the request itself is wrong.
	Invalid
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Authoritative:
		return "authoritative"
	case Invalid:
		return "invalid"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Reason is a stable, machine-readable cause of a failure. New reasons may be
// added; callers branch on [Class] and show the Reason.
type Reason string

const (
	ReasonDenied          Reason = "access-denied"           // 403: role or access policy missing, firewall
	ReasonUnauthenticated Reason = "authentication-failed"   // the platform could not sign in (wrong secret, app not consented, unknown tenant)
	ReasonNotFound        Reason = "key-not-found"           // key or version deleted or never existed
	ReasonDisabled        Reason = "key-disabled"            // the key is disabled
	ReasonExpired         Reason = "key-expired"             // now is after the key's expiry
	ReasonNotYetValid     Reason = "key-not-yet-valid"       // now is before the key's activation date
	ReasonOpForbidden     Reason = "operation-not-permitted" // the key's key_ops exclude the operation
	ReasonUnwrapFailed    Reason = "unwrap-failed"           // wrapped value altered or wrapped by another key
	ReasonBadRequest      Reason = "bad-request"             // malformed key id, unsupported key or algorithm
	ReasonThrottled       Reason = "throttled"               // 429
	ReasonTimeout         Reason = "timeout"                 // deadline exceeded
	ReasonCanceled        Reason = "canceled"                // the caller cancelled ctx
	ReasonUnavailable     Reason = "unavailable"             // connection refused, DNS, TLS, 5xx
	ReasonNotOwned        Reason = "key-not-owned"           // the key lacks the tag that proves the tenant owns it
)

// Sentinels matched by [errors.Is] against an [*Error] of the same class.
var (
	ErrTransient     = errors.New("kms: provider temporarily unavailable")
	ErrAuthoritative = errors.New("kms: key access denied or key unusable")
	ErrInvalid       = errors.New("kms: invalid request")
)

// Error is the error every provider operation returns on failure.
type Error struct {
	Op         string        // "wrap", "unwrap" or "describe"
	KeyID      string        // the key id the caller passed or the wrapped value named
	Class      Class         // what the caller should do
	Reason     Reason        // why, in a stable word
	RetryAfter time.Duration // for Transient: the provider's hint, 0 if none
	Err        error         // the provider's own error; never holds secrets
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("kms: %s %s: %s (%s)", e.Op, e.KeyID, e.Reason, e.Class)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the provider's own error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's class.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrTransient:
		return e.Class == Transient
	case ErrAuthoritative:
		return e.Class == Authoritative
	case ErrInvalid:
		return e.Class == Invalid
	}
	return false
}

// ClassOf returns the class of err: that of the first [*Error] in its chain;
// [Transient] for context cancellation and deadline errors and for any other
// error, since an unknown failure must not be taken for a revocation.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Transient
}

// ReasonOf returns the reason of the first [*Error] in err's chain, or
// [ReasonUnavailable] if there is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout
	}
	if errors.Is(err, context.Canceled) {
		return ReasonCanceled
	}
	return ReasonUnavailable
}

// CtxError returns the [*Error] a provider reports when ctx is done before
// or during op. It returns nil if ctx is not done.
func CtxError(ctx context.Context, op, keyID string) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	reason := ReasonCanceled
	if errors.Is(err, context.DeadlineExceeded) {
		reason = ReasonTimeout
	}
	return &Error{Op: op, KeyID: keyID, Class: Transient, Reason: reason, Err: err}
}

type operationIDKey struct{}

// WithOperationID returns a ctx that carries id, the audit event id of the
// operation on whose behalf provider calls are made. Providers that can send
// a request id (Azure's x-ms-client-request-id) send this one, so a tenant
// can join byok's audit log with the provider's own logs.
func WithOperationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, operationIDKey{}, id)
}

// OperationID returns the id set by [WithOperationID], or "".
func OperationID(ctx context.Context) string {
	id, _ := ctx.Value(operationIDKey{}).(string)
	return id
}
