package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/server/token"
)

// IssueToken creates a token of kind for tenants, labelled name, valid for
// ttl (0: it never expires), stores its record in st, and returns its
// text, to hand to its holder once: only a digest is stored. `byok serve`
// and `byok demo` call it to create the first operator token; the API's
// POST /v1/tokens calls it for the others. Tenants of tenant-admin and
// service tokens must exist.
func IssueToken(ctx context.Context, st Tokens, kind token.Kind, tenants []string, name string, ttl time.Duration) (string, token.Record, error) {
	return issueToken(ctx, st, kind, tenants, name, ttl, time.Now())
}

func issueToken(ctx context.Context, st Tokens, kind token.Kind, tenants []string, name string, ttl time.Duration, now time.Time) (string, token.Record, error) {
	text, rec, err := token.New(kind, tenants, name, now, ttl)
	if err != nil {
		return "", token.Record{}, &byok.InputError{Arg: "token", Reason: err.Error()}
	}
	if err := st.CreateToken(ctx, rec); err != nil {
		if errors.Is(err, byok.ErrNotFound) {
			return "", token.Record{}, tenantNotFound(ctx, st, tenants, err)
		}
		return "", token.Record{}, fmt.Errorf("server: store the new %s token: %w", kind, err)
	}
	return text, rec, nil
}

// unauthenticated is the one answer for a token that is missing,
// malformed, unknown or whose secret does not match: it says which of the
// first two it is, never which of the last two.
func unauthenticated(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: msg}
}

// authenticate finds and checks the bearer token of r.
func (s *server) authenticate(ctx context.Context, r *http.Request) (token.Record, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return token.Record{}, unauthenticated("this route needs a token: send the header Authorization: Bearer <token>")
	}
	scheme, text, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return token.Record{}, unauthenticated("the Authorization header must read Bearer <token>")
	}
	kind, id, secret, err := token.Parse(text)
	if err != nil {
		return token.Record{}, unauthenticated("the bearer token is not a byok token (byok_<kind>_<id>_<secret>); copy it whole")
	}
	rec, err := s.tokens.Token(ctx, id)
	if errors.Is(err, byok.ErrNotFound) {
		// Spend the same work as for a known id.
		token.Record{}.Verify(secret)
		return token.Record{}, unauthenticated("the bearer token is not valid; ask for a new one")
	}
	if err != nil {
		return token.Record{}, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, RetryAfter: time.Second,
			Message: "tokens cannot be checked now: the store is unavailable; retry"}
	}
	if !rec.Verify(secret) || rec.Kind != kind {
		return token.Record{}, unauthenticated("the bearer token is not valid; ask for a new one")
	}
	if !rec.Revoked.IsZero() {
		return token.Record{}, &Error{Status: http.StatusUnauthorized, Code: CodeTokenRevoked,
			Message: "the bearer token was revoked at " + rec.Revoked.UTC().Format(time.RFC3339) + "; ask for a new one"}
	}
	if !rec.Active(s.cfg.Now()) {
		return token.Record{}, &Error{Status: http.StatusUnauthorized, Code: CodeTokenExpired,
			Message: "the bearer token expired at " + rec.Expires.UTC().Format(time.RFC3339) + "; ask for a new one"}
	}
	return rec, nil
}

// authorize checks that tok may call a route that requires a, on tenant
// (the route's {tenant}, or ""). A token of the right kind that does not
// hold tenant gets the 404 of a tenant that does not exist.
func authorize(a auth, tok token.Record, tenant string) error {
	var want token.Kind
	switch a {
	case authOperator:
		want = token.Operator
	case authTenantAdmin:
		want = token.TenantAdmin
	case authService:
		want = token.Service
	}
	if tok.Kind != want {
		return &Error{Status: http.StatusForbidden, Code: CodeForbidden,
			Message: fmt.Sprintf("this route needs a %s token; this is a %s token", want, tok.Kind)}
	}
	if a != authOperator && !tok.HasTenant(tenant) {
		return notFoundTenant(tenant)
	}
	return nil
}

// notFoundTenant is the answer for a tenant that does not exist or that
// the caller's token does not hold: the two are indistinguishable.
func notFoundTenant(tenant string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound,
		Message: fmt.Sprintf("tenant %q does not exist or this token does not hold it", tenant)}
}
