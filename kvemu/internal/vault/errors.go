package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ErrNotFound is wrapped by control-API errors about a vault, key, version or
// role assignment that does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is wrapped by control-API errors about a name already in use or
// an object in the wrong state for the request.
var ErrConflict = errors.New("conflict")

// ErrInvalid is wrapped by control-API errors about a malformed argument.
var ErrInvalid = errors.New("invalid argument")

// apiError is a Key Vault error answer: a status, the envelope's code, an
// optional inner code and a message in the service's own words.
type apiError struct {
	status     int
	code       string
	inner      string
	msg        string
	challenge  string        // WWW-Authenticate value for 401s
	retryAfter time.Duration // Retry-After for 429s, 0 for none
}

func (e *apiError) Error() string {
	if e.inner != "" {
		return fmt.Sprintf("%d %s/%s: %s", e.status, e.code, e.inner, e.msg)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.msg)
}

// errorBody is the JSON envelope of every Key Vault error.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code       string       `json:"code"`
	Message    string       `json:"message"`
	InnerError *innerDetail `json:"innererror,omitempty"`
}

type innerDetail struct {
	Code string `json:"code"`
}

func badParameter(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "BadParameter", msg: fmt.Sprintf(format, args...)}
}

func forbidden(inner, format string, args ...any) *apiError {
	return &apiError{status: http.StatusForbidden, code: "Forbidden", inner: inner, msg: fmt.Sprintf(format, args...)}
}

// clip shortens request text echoed in error messages.
func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}

func keyNotFound(name string) *apiError {
	name = clip(name)
	return &apiError{status: http.StatusNotFound, code: "KeyNotFound", msg: fmt.Sprintf(
		"A key with (name/id) %s was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", name)}
}

func deletedKeyNotFound(name string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "KeyNotFound", msg: "Deleted Key not found: " + clip(name)}
}

// write sends e as a Key Vault error envelope.
func (e *apiError) write(w http.ResponseWriter) {
	h := w.Header()
	if e.challenge != "" {
		h.Set("WWW-Authenticate", e.challenge)
	}
	if e.retryAfter > 0 {
		secs := int((e.retryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.Itoa(secs))
	}
	body := errorBody{Error: errorDetail{Code: e.code, Message: e.msg}}
	if e.inner != "" {
		body.Error.InnerError = &innerDetail{Code: e.inner}
	}
	writeJSON(w, e.status, body)
}

// writeJSON sends v with Key Vault's content type and headers.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable: every value written here is built from plain structs.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalServerError","message":"kvemu could not encode its answer."}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
