package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/store"
)

// CreateSession implements [store.SessionStore].
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	if err := store.CheckSession(s); err != nil {
		return err
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO console_sessions
		(hash, kind, tenant, token_id, subject, name, created, expires, last_seen, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		s.Hash[:], s.Kind, s.Tenant, s.TokenID, s.Subject, s.Name,
		nanos(s.Created), nanos(s.Expires), nanos(s.LastSeen), nonNil(s.Data))
	if db.class(err) == Duplicate {
		return db.errorf("a console session with that hash already exists: %w", byok.ErrExists)
	}
	if err != nil {
		return db.wrap(err, "create console session of %s", s.Subject)
	}
	return nil
}

// Session implements [store.SessionStore].
func (db *DB) Session(ctx context.Context, hash [32]byte) (store.Session, error) {
	var s store.Session
	var h []byte
	var created, expires, lastSeen sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT hash, kind, tenant, token_id, subject, name, created, expires, last_seen, data
		FROM console_sessions WHERE hash = $1`, hash[:]).
		Scan(&h, &s.Kind, &s.Tenant, &s.TokenID, &s.Subject, &s.Name, &created, &expires, &lastSeen, &s.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, db.errorf("no such console session: %w", byok.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, db.wrap(err, "read console session")
	}
	if len(h) != len(s.Hash) {
		return store.Session{}, db.errorf("a stored console session hash is not 32 bytes: the database is corrupt")
	}
	copy(s.Hash[:], h)
	s.Created, s.Expires, s.LastSeen = fromNanos(created), fromNanos(expires), fromNanos(lastSeen)
	if len(s.Data) == 0 {
		s.Data = nil
	}
	return s, nil
}

// TouchSession implements [store.SessionStore]: last_seen only moves
// forward.
func (db *DB) TouchSession(ctx context.Context, hash [32]byte, at time.Time) error {
	if err := store.CheckSession(store.Session{Hash: hash, Kind: "operator", Subject: "-", Expires: at, LastSeen: at}); err != nil {
		return err
	}
	return db.updateSession(ctx, "touch", `UPDATE console_sessions
		SET last_seen = CASE WHEN last_seen IS NULL OR last_seen < $1 THEN $1 ELSE last_seen END WHERE hash = $2`,
		nanos(at), hash[:])
}

// SetSessionData implements [store.SessionStore].
func (db *DB) SetSessionData(ctx context.Context, hash [32]byte, data []byte) error {
	if len(data) > store.MaxSessionData {
		return &byok.InputError{Arg: "session data", Reason: fmt.Sprintf("is %d bytes; at most %d", len(data), store.MaxSessionData)}
	}
	return db.updateSession(ctx, "set data of", `UPDATE console_sessions SET data = $1 WHERE hash = $2`, nonNil(data), hash[:])
}

// updateSession runs q, an update of one session; what names it in
// errors.
func (db *DB) updateSession(ctx context.Context, what, q string, args ...any) error {
	res, err := db.w.ExecContext(ctx, q, args...)
	if err != nil {
		return db.wrap(err, "%s console session", what)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return db.errorf("%s console session: it does not exist: %w", what, byok.ErrNotFound)
	}
	return nil
}

// DeleteSession implements [store.SessionStore].
func (db *DB) DeleteSession(ctx context.Context, hash [32]byte) error {
	if _, err := db.w.ExecContext(ctx, `DELETE FROM console_sessions WHERE hash = $1`, hash[:]); err != nil {
		return db.wrap(err, "delete console session")
	}
	return nil
}

// DeleteEndedSessions implements [store.SessionStore].
func (db *DB) DeleteEndedSessions(ctx context.Context, now, idleSince time.Time) (int, error) {
	if err := store.CheckSession(store.Session{Hash: [32]byte{1}, Kind: "operator", Subject: "-", Expires: now, LastSeen: idleSince}); err != nil {
		return 0, err
	}
	res, err := db.w.ExecContext(ctx, `DELETE FROM console_sessions
		WHERE expires <= $1 OR (CAST($2 AS bigint) IS NOT NULL AND coalesce(last_seen, created, expires) < CAST($2 AS bigint))`,
		nanos(now), nanos(idleSince))
	if err != nil {
		return 0, db.wrap(err, "delete ended console sessions")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, db.wrap(err, "delete ended console sessions")
	}
	return int(n), nil
}

// nonNil stores an empty blob for nil, so that the column is never NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
