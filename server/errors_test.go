package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/store"
)

func TestErrorFor(t *testing.T) {
	revoked := &byok.RevokedError{Tenant: "acme", Kind: byok.CustomerManaged, Reason: kms.ReasonDenied, DetectedAt: epoch}
	for _, tc := range []struct {
		name     string
		err      error
		status   int
		code     string
		field    string
		internal bool
	}{
		{"api error", &Error{Status: 401, Code: CodeUnauthenticated, Message: "m"}, 401, CodeUnauthenticated, "", false},
		{"body too large", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), 413, CodeBodyTooLarge, "", false},
		{"field error", &lifecycle.FieldError{Field: "enforce_at", Reason: "is in the past"}, 400, CodeInvalidInput, "enforce_at", false},
		{"input error", fmt.Errorf("x: %w", &byok.InputError{Arg: "scope", Reason: "is empty"}), 400, CodeInvalidInput, "scope", false},
		{"bare invalid input", byok.ErrInvalidInput, 400, CodeInvalidInput, "", false},
		{"state error", &lifecycle.StateError{Tenant: "acme", State: lifecycle.StateDraft, Op: lifecycle.OpRotate, Reason: "not active"}, 409, CodeInvalidState, "", false},
		{"revoked", fmt.Errorf("decrypt: %w", revoked), 403, CodeKeyRevoked, "", false},
		{"unavailable", &byok.UnavailableError{Tenant: "acme", Err: errors.New("timeout")}, 503, CodeKeyUnavailable, "", false},
		{"decrypt", fmt.Errorf("x: %w", byok.ErrDecrypt), 400, CodeDecryptFailed, "", false},
		{"format", &byok.FormatError{Reason: "unknown version 7"}, 400, CodeInvalidCiphertext, "ciphertext", false},
		{"unknown tenant", fmt.Errorf("%w %q", byok.ErrUnknownTenant, "x"), 404, CodeNotFound, "", false},
		{"not found", fmt.Errorf("token: %w", byok.ErrNotFound), 404, CodeNotFound, "", false},
		{"exists", fmt.Errorf("tenant: %w", byok.ErrExists), 409, CodeExists, "", false},
		{"conflict", fmt.Errorf("cas: %w", store.ErrConflict), 409, CodeConflict, "", false},
		{"deadline", fmt.Errorf("store: %w", context.DeadlineExceeded), 503, CodeTimeout, "", false},
		{"anything else", errors.New("disk on fire at /var/lib/byok"), 500, CodeInternal, "", true},
	} {
		e, internal := errorFor(tc.err)
		if e.Status != tc.status || e.Code != tc.code || e.Field != tc.field || internal != tc.internal {
			t.Errorf("%s: errorFor = %d %s field %q internal %v; want %d %s field %q internal %v",
				tc.name, e.Status, e.Code, e.Field, internal, tc.status, tc.code, tc.field, tc.internal)
		}
		if e.Message == "" {
			t.Errorf("%s: empty message", tc.name)
		}
		if internal && strings.Contains(e.Message, "disk") {
			t.Errorf("%s: an internal error's details reach the client: %q", tc.name, e.Message)
		}
		if tc.code == CodeKeyRevoked && !strings.Contains(e.Message, string(kms.ReasonDenied)) {
			t.Errorf("%s: message %q does not give the revocation's reason", tc.name, e.Message)
		}
		if tc.status == 503 && e.RetryAfter <= 0 {
			t.Errorf("%s: 503 without Retry-After", tc.name)
		}
	}
}

// TestInternalErrorAnswer checks the whole path of an unexpected error:
// 500 with a request id to quote, details in the log only.
func TestInternalErrorAnswer(t *testing.T) {
	e := newEnv(t)
	e.db.Close() // every store call now fails unexpectedly
	r := e.do(t, "GET", "/v1/platform-key/inventory", e.operator, nil)
	// The closed store fails token lookups first: 503, not 500.
	if r.status != 503 || r.errCode() != CodeUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("request with the store down = %d %s, want 503 unavailable with Retry-After", r.status, r.body)
	}
	r = e.do(t, "GET", "/readyz", "", nil)
	if r.status != 503 || !strings.Contains(string(r.body), "store") {
		t.Fatalf("readyz with the store down = %d %s, want 503 naming the store", r.status, r.body)
	}
}

// brokenInventory is a lifecycle whose platform key inventory fails
// unexpectedly.
type brokenInventory struct{ Lifecycle }

func (brokenInventory) PlatformInventory(context.Context) ([]lifecycle.PlatformVersion, error) {
	return nil, errors.New("disk on fire at /var/lib/byok")
}

func TestInternalErrorIsLoggedNotShown(t *testing.T) {
	e := newEnv(t)
	h, err := New(Config{Lifecycle: brokenInventory{e.lc}, Store: e.db, Audit: e.log, PlatformKMS: e.platform,
		PlatformKeyID: "fake:prk", Logger: slog.New(slog.NewJSONHandler(lockedWriter{w: e.logs}, nil)), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/platform-key/inventory", nil)
	req.Header.Set("Authorization", "Bearer "+e.operator)
	h.ServeHTTP(rec, req)
	id := rec.Header().Get("X-Request-Id")
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), id) || strings.Contains(rec.Body.String(), "disk") {
		t.Fatalf("internal error = %d %s; want 500 quoting request id %s and no details", rec.Code, rec.Body, id)
	}
	if logs := e.logText(); !strings.Contains(logs, "disk on fire") || !strings.Contains(logs, id) {
		t.Fatalf("the log lacks the internal error's details or its request id:\n%s", logs)
	}
}

// A token for a tenant that does not exist is a not_found that names the
// tenant and its field, in words an operator acts on, not the store's.
func TestTokenForMissingTenant(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme", "chat")
	for _, kind := range []string{"service", "tenant-admin"} {
		tenants := []string{"acme", "initech"}
		field := "tenants[1]"
		if kind == "tenant-admin" {
			tenants, field = []string{"initech"}, "tenants[0]"
		}
		r := e.do(t, "POST", "/v1/tokens", e.operator, map[string]any{"kind": kind, "tenants": tenants})
		var b errorBody
		r.decode(t, &b)
		want := `tenant "initech" does not exist; create it first (POST /v1/tenants)`
		if r.status != 404 || b.Error.Code != CodeNotFound || b.Error.Field != field || b.Error.Message != want {
			t.Errorf("%s token for a missing tenant: %d %s, want 404 not_found, field %s, message %q", kind, r.status, r.body, field, want)
		}
	}
}
