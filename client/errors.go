package client

import (
	"fmt"
	"time"
)

// Error is an error answer of the server: {"error": {"code", "message",
// "field"}} with its HTTP status. Message says what was wrong and how to
// fix it; it never holds the token.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the stable, machine-readable code (the Code constants).
	Code string
	// Message is the server's explanation and remedy.
	Message string
	// Field names the request field at fault, as the API spells it, or "".
	Field string
	// RetryAfter is the server's Retry-After, or 0.
	RetryAfter time.Duration
	// RequestID is the server's X-Request-Id of the answer, to quote to
	// the operator.
	RequestID string
}

// Error returns the code, status and message.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message)
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, client.ErrNotFound) matches any not_found answer. A
// target with an empty Code matches by Status instead.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Code == "" {
		return t.Status != 0 && t.Status == e.Status
	}
	return t.Code == e.Code
}

// The error codes of the API (docs/api.md).
const (
	CodeInvalidInput      = "invalid_input"      // 400: a field is out of range or malformed
	CodeBadJSON           = "bad_json"           // 400: the body is not one JSON object
	CodeUnknownField      = "unknown_field"      // 400: the body has a field the route does not take
	CodeDecryptFailed     = "decrypt_failed"     // 400: a ciphertext failed authentication
	CodeInvalidCiphertext = "invalid_ciphertext" // 400: bytes that are not a byok ciphertext
	CodeUnauthenticated   = "unauthenticated"    // 401: no token, or not a valid one
	CodeTokenExpired      = "token_expired"      // 401
	CodeTokenRevoked      = "token_revoked"      // 401
	CodeForbidden         = "forbidden"          // 403: the token's kind may not call the route
	CodeKeyRevoked        = "key_revoked"        // 403: the tenant's key said no
	CodeNotFound          = "not_found"          // 404: no such resource, or not the token's to see
	CodeMethodNotAllowed  = "method_not_allowed" // 405
	CodeInvalidState      = "invalid_state"      // 409: not allowed in the key's lifecycle state
	CodeExists            = "already_exists"     // 409
	CodeConflict          = "conflict"           // 409: a concurrent change won; retry
	CodeBodyTooLarge      = "body_too_large"     // 413
	CodeUnsupportedMedia  = "unsupported_media"  // 415
	CodeKeyUnavailable    = "key_unavailable"    // 503: the tenant's key provider does not answer
	CodeTimeout           = "timeout"            // 503: the route's time limit passed
	CodeUnavailable       = "unavailable"        // 503: the store or the platform key is down
	CodeInternal          = "internal"           // 500: details in the server's log only
)

// Sentinels to test an error against with errors.Is; they match by code.
var (
	ErrInvalidInput    = &Error{Code: CodeInvalidInput}
	ErrUnauthenticated = &Error{Code: CodeUnauthenticated}
	ErrTokenExpired    = &Error{Code: CodeTokenExpired}
	ErrTokenRevoked    = &Error{Code: CodeTokenRevoked}
	ErrForbidden       = &Error{Code: CodeForbidden}
	ErrKeyRevoked      = &Error{Code: CodeKeyRevoked}
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrInvalidState    = &Error{Code: CodeInvalidState}
	ErrExists          = &Error{Code: CodeExists}
	ErrConflict        = &Error{Code: CodeConflict}
	ErrDecryptFailed   = &Error{Code: CodeDecryptFailed}
	ErrKeyUnavailable  = &Error{Code: CodeKeyUnavailable}
)
