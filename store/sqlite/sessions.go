package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/store"
)

var _ store.SessionStore = (*DB)(nil)

// CreateSession implements [store.SessionStore].
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	if err := store.CheckSession(s); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions
			(hash, kind, tenant, token_id, subject, name, created, expires, last_seen, data)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.Hash[:], s.Kind, s.Tenant, s.TokenID, s.Subject, s.Name,
			nanos(s.Created), nanos(s.Expires), nanos(s.LastSeen), nonNil(s.Data))
		if isDuplicate(err) {
			return fmt.Errorf("store/sqlite: a console session with that hash already exists: %w", byok.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("store/sqlite: create console session of %s: %w", s.Subject, err)
		}
		return nil
	})
}

// Session implements [store.SessionStore].
func (db *DB) Session(ctx context.Context, hash [32]byte) (store.Session, error) {
	var s store.Session
	var h []byte
	var created, expires, lastSeen sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT hash, kind, tenant, token_id, subject, name, created, expires, last_seen, data
		FROM console_sessions WHERE hash = ?`, hash[:]).
		Scan(&h, &s.Kind, &s.Tenant, &s.TokenID, &s.Subject, &s.Name, &created, &expires, &lastSeen, &s.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("store/sqlite: no such console session: %w", byok.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("store/sqlite: read console session: %w", err)
	}
	if len(h) != len(s.Hash) {
		return store.Session{}, errors.New("store/sqlite: a stored console session hash is not 32 bytes: the database is corrupt")
	}
	copy(s.Hash[:], h)
	s.Created, s.Expires, s.LastSeen = fromNanos(created), fromNanos(expires), fromNanos(lastSeen)
	if len(s.Data) == 0 {
		s.Data = nil
	}
	return s, nil
}

// TouchSession implements [store.SessionStore].
func (db *DB) TouchSession(ctx context.Context, hash [32]byte, at time.Time) error {
	if err := store.CheckSession(store.Session{Hash: hash, Kind: "operator", Subject: "-", Expires: at, LastSeen: at}); err != nil {
		return err
	}
	return db.updateSession(ctx, "touch", `UPDATE console_sessions SET last_seen = max(coalesce(last_seen, ?1), ?1) WHERE hash = ?2`, nanos(at), hash[:])
}

// SetSessionData implements [store.SessionStore].
func (db *DB) SetSessionData(ctx context.Context, hash [32]byte, data []byte) error {
	if len(data) > store.MaxSessionData {
		return &byok.InputError{Arg: "session data", Reason: fmt.Sprintf("is %d bytes; at most %d", len(data), store.MaxSessionData)}
	}
	return db.updateSession(ctx, "set data of", `UPDATE console_sessions SET data = ?1 WHERE hash = ?2`, nonNil(data), hash[:])
}

func (db *DB) updateSession(ctx context.Context, what, q string, args ...any) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("store/sqlite: %s console session: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("store/sqlite: %s console session: it does not exist: %w", what, byok.ErrNotFound)
		}
		return nil
	})
}

// DeleteSession implements [store.SessionStore].
func (db *DB) DeleteSession(ctx context.Context, hash [32]byte) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE hash = ?`, hash[:]); err != nil {
			return fmt.Errorf("store/sqlite: delete console session: %w", err)
		}
		return nil
	})
}

// DeleteEndedSessions implements [store.SessionStore].
func (db *DB) DeleteEndedSessions(ctx context.Context, now, idleSince time.Time) (int, error) {
	if err := store.CheckSession(store.Session{Hash: [32]byte{1}, Kind: "operator", Subject: "-", Expires: now, LastSeen: idleSince}); err != nil {
		return 0, err
	}
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM console_sessions
			WHERE expires <= ?1 OR (?2 IS NOT NULL AND coalesce(last_seen, created, expires) < ?2)`, nanos(now), nanos(idleSince))
		if err != nil {
			return fmt.Errorf("store/sqlite: delete ended console sessions: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// nonNil stores an empty blob for nil, so that the column is never NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
