package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/store"
)

// Error is the body of every error response:
//
//	{"error": {"code": "...", "message": "...", "field": "..."}}
//
// Code is stable and machine-readable (the table in docs/api.md); Message
// says what was wrong and how to fix it; Field, when present, names the
// request field at fault as the API spells it.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// errorBody is the JSON envelope of an error response.
type errorBody struct {
	Error *Error `json:"error"`
}

// Error codes. docs/api.md has the table; a test holds the two together.
const (
	CodeInvalidInput      = "invalid_input"      // 400: a field is out of range or malformed
	CodeBadJSON           = "bad_json"           // 400: the body is not one JSON object of the right shape
	CodeUnknownField      = "unknown_field"      // 400: the body has a field this route does not take
	CodeDecryptFailed     = "decrypt_failed"     // 400: a ciphertext failed authentication
	CodeInvalidCiphertext = "invalid_ciphertext" // 400: bytes that are not a byok ciphertext
	CodeUnauthenticated   = "unauthenticated"    // 401: no token, or not a valid one
	CodeTokenExpired      = "token_expired"      // 401
	CodeTokenRevoked      = "token_revoked"      // 401
	CodeForbidden         = "forbidden"          // 403: the token's kind may not call this route
	CodeKeyRevoked        = "key_revoked"        // 403: the tenant's key said no
	CodeNotFound          = "not_found"          // 404: no such resource, or not the token's to see
	CodeMethodNotAllowed  = "method_not_allowed" // 405
	CodeInvalidState      = "invalid_state"      // 409: not allowed in the key's lifecycle state
	CodeExists            = "already_exists"     // 409
	CodeConflict          = "conflict"           // 409: a concurrent change won; retry
	CodeBodyTooLarge      = "body_too_large"     // 413
	CodeUnsupportedMedia  = "unsupported_media"  // 415: the body is not application/json
	CodeKeyUnavailable    = "key_unavailable"    // 503: the tenant's key provider does not answer
	CodeTimeout           = "timeout"            // 503: the route's time limit passed
	CodeUnavailable       = "unavailable"        // 503: a dependency (store, platform key) is down
	CodeInternal          = "internal"           // 500: details only in the server's log
)

// unavailableRetry is the Retry-After of a key_unavailable answer: about
// when the keyring retries its provider.
const unavailableRetry = 30 * time.Second

// errorFor maps any error a handler returns to its response. It is the
// only place that decides status codes. internal reports whether err is
// unexpected: its text goes to the log only, and the client gets an id to
// quote.
func errorFor(err error) (e *Error, internal bool) {
	var apiErr *Error
	var fieldErr *lifecycle.FieldError
	var inputErr *byok.InputError
	var stateErr *lifecycle.StateError
	var revoked *byok.RevokedError
	var tooLarge *http.MaxBytesError
	var noTenant *tenantNotFoundError
	switch {
	case errors.As(err, &apiErr):
		return apiErr, false
	case errors.As(err, &tooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
			Message: "the request body is over this route's limit of " + strconv.FormatInt(tooLarge.Limit, 10) + " bytes; send less, or split a batch"}, false
	case errors.As(err, &fieldErr):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidInput, Message: fieldErr.Field + ": " + fieldErr.Reason, Field: fieldErr.Field}, false
	case errors.As(err, &inputErr):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidInput, Message: inputErr.Arg + " " + inputErr.Reason, Field: inputErr.Arg}, false
	case errors.Is(err, byok.ErrInvalidInput):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidInput, Message: err.Error()}, false
	case errors.As(err, &stateErr):
		return &Error{Status: http.StatusConflict, Code: CodeInvalidState, Message: stateErr.Error()}, false
	case errors.Is(err, lifecycle.ErrState):
		return &Error{Status: http.StatusConflict, Code: CodeInvalidState, Message: err.Error()}, false
	case errors.As(err, &revoked):
		return &Error{Status: http.StatusForbidden, Code: CodeKeyRevoked, Message: revoked.Error()}, false
	case errors.Is(err, byok.ErrKeyRevoked):
		return &Error{Status: http.StatusForbidden, Code: CodeKeyRevoked, Message: err.Error()}, false
	case errors.Is(err, byok.ErrKeyUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeKeyUnavailable, RetryAfter: unavailableRetry,
			Message: "the tenant's key provider cannot be reached and the tenant's policy no longer serves from cache; retry later, and check the vault's availability"}, false
	case errors.Is(err, byok.ErrDecrypt):
		return &Error{Status: http.StatusBadRequest, Code: CodeDecryptFailed,
			Message: "the ciphertext did not authenticate: check that it was made for this tenant, scope and aad, and was not altered"}, false
	case errors.Is(err, byok.ErrFormat):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidCiphertext, Field: "ciphertext", Message: err.Error()}, false
	case errors.As(err, &noTenant):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: noTenant.Error(), Field: noTenant.field}, false
	case errors.Is(err, byok.ErrUnknownTenant), errors.Is(err, byok.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error()}, false
	case errors.Is(err, byok.ErrExists):
		return &Error{Status: http.StatusConflict, Code: CodeExists, Message: err.Error()}, false
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "another change to the same record won the race; read it again and retry"}, false
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeTimeout, RetryAfter: time.Second,
			Message: "the request did not finish within this route's time limit; retry, and for large work use the job routes"}, false
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}, true
}

// tenantNotFoundError is a new token's tenant that does not exist. Its
// text names the tenant and what to do, not the store's internals, which
// it wraps (for errors.Is and the log).
type tenantNotFoundError struct {
	tenant string // empty if no lookup said which
	field  string // tenants[i]
	err    error
}

func (e *tenantNotFoundError) Error() string {
	if e.tenant == "" {
		return "a tenant of the token does not exist; create it first (POST /v1/tenants)"
	}
	return fmt.Sprintf("tenant %q does not exist; create it first (POST /v1/tenants)", e.tenant)
}

func (e *tenantNotFoundError) Unwrap() error { return e.err }

// tenantNotFound returns the error for a token that the store refused
// with err (ErrNotFound) because one of tenants does not exist; it asks
// st, when st can say, which one.
func tenantNotFound(ctx context.Context, st Tokens, tenants []string, err error) error {
	e := &tenantNotFoundError{err: err}
	if ts, ok := st.(interface {
		Tenant(context.Context, string) (byok.TenantRecord, error)
	}); ok {
		for i, t := range tenants {
			if _, terr := ts.Tenant(ctx, t); errors.Is(terr, byok.ErrNotFound) {
				e.tenant, e.field = t, fmt.Sprintf("tenants[%d]", i)
				break
			}
		}
	}
	return e
}
