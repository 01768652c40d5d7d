package store

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// Session is a signed-in browser of the web console, as it is stored so
// that any replica serves it. Only the SHA-256 digest of the session's id
// (the cookie's 256-bit secret) is stored, never the id.
type Session struct {
	// Hash is the SHA-256 of the session's id: its key.
	Hash [32]byte
	// Kind is the role: "operator" or "tenant-admin".
	Kind string
	// Tenant is a tenant admin's tenant; "" for an operator.
	Tenant string
	// TokenID is the API token the user signed in with, re-read on every
	// request so that revoking it ends the session; "" for a sign-in
	// through OpenID Connect.
	TokenID string
	// Subject is who signed in, the audit actor's id: "token:<id>" or
	// "oidc:<issuer>#<subject>".
	Subject string
	// Name is shown in the pages' header (a user's name); may be empty.
	Name string
	// Created is when the session began; Expires when it ends whatever
	// its use; LastSeen when it was last used (the idle timeout counts
	// from it).
	Created, Expires, LastSeen time.Time
	// Data is opaque to the store (the console seals it under a key
	// derived from the session's id): at most MaxSessionData bytes.
	Data []byte
}

// MaxSessionData bounds [Session.Data].
const MaxSessionData = 64 << 10

// SessionStore keeps the web console's sessions. Implementations are safe
// for concurrent use, and every replica over one database sees the same
// sessions. Errors wrap [byok.ErrNotFound], [byok.ErrExists] or
// [byok.ErrInvalidInput] as [Store]'s do, and never contain a hash or
// Data.
type SessionStore interface {
	// CreateSession stores a new session ([CheckSession] first). A
	// session with the same hash fails with [byok.ErrExists].
	CreateSession(ctx context.Context, s Session) error
	// Session returns the session with that hash, or an error wrapping
	// [byok.ErrNotFound]. It returns sessions whatever their times:
	// the caller decides whether one has ended.
	Session(ctx context.Context, hash [32]byte) (Session, error)
	// TouchSession moves LastSeen forward to at (never back), or fails
	// with [byok.ErrNotFound].
	TouchSession(ctx context.Context, hash [32]byte, at time.Time) error
	// SetSessionData replaces Data, or fails with [byok.ErrNotFound].
	SetSessionData(ctx context.Context, hash [32]byte, data []byte) error
	// DeleteSession ends a session at once, for every replica. Deleting
	// a session that does not exist is not an error (sign-out twice).
	DeleteSession(ctx context.Context, hash [32]byte) error
	// DeleteEndedSessions deletes every session whose Expires is not
	// after now, or whose LastSeen is before idleSince (the zero time
	// deletes none for idleness), and returns how many it deleted.
	DeleteEndedSessions(ctx context.Context, now, idleSince time.Time) (int, error)
}

// CheckSession reports, as an error wrapping [byok.ErrInvalidInput], why s
// cannot be stored.
func CheckSession(s Session) error {
	switch {
	case s.Hash == [32]byte{}:
		return invalid("session hash", "is all zero; give the SHA-256 of the session's id")
	case s.Kind != "operator" && s.Kind != "tenant-admin":
		return invalid("session kind", fmt.Sprintf("is %q; it must be operator or tenant-admin", s.Kind))
	case s.Kind == "tenant-admin" && s.Tenant == "":
		return invalid("session tenant", "is empty; a tenant admin's session names its tenant")
	case s.Kind == "operator" && s.Tenant != "":
		return invalid("session tenant", "is set for an operator; an operator's session names no tenant")
	case s.Subject == "":
		return invalid("session subject", "is empty; name who signed in (token:<id> or oidc:<issuer>#<subject>)")
	case s.Expires.IsZero():
		return invalid("session expiry", "is zero; every session ends")
	case len(s.Data) > MaxSessionData:
		return invalid("session data", fmt.Sprintf("is %d bytes; at most %d", len(s.Data), MaxSessionData))
	}
	for _, f := range []struct{ name, v string }{{"session tenant", s.Tenant}, {"session token id", s.TokenID},
		{"session subject", s.Subject}, {"session name", s.Name}} {
		if len(f.v) > 1024 || !utf8.ValidString(f.v) {
			return invalid(f.name, "is longer than 1024 bytes or not UTF-8")
		}
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"session created", s.Created}, {"session expires", s.Expires}, {"session last seen", s.LastSeen}} {
		if err := checkTime(f.name, f.t); err != nil {
			return err
		}
	}
	return nil
}
