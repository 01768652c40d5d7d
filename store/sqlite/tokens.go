package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store"
)

var _ token.Store = (*DB)(nil)

// CreateToken implements [token.Store]: the token and its tenants in one
// transaction.
func (db *DB) CreateToken(ctx context.Context, r token.Record) error {
	if err := token.Check(r); err != nil {
		return &byok.InputError{Arg: "token", Reason: err.Error()}
	}
	if err := errors.Join(checkTokenTime("created", r.Created), checkTokenTime("expires", r.Expires),
		checkTokenTime("revoked", r.Revoked)); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, kind, hash, name, created, expires, revoked)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.ID, string(r.Kind), r.Hash[:], r.Name, nanos(r.Created), nanos(r.Expires), nanos(r.Revoked))
		if isDuplicate(err) {
			return fmt.Errorf("store/sqlite: token %s already exists: %w", r.ID, byok.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("store/sqlite: create token %s: %w", r.ID, err)
		}
		for _, t := range r.Tenants {
			_, err := tx.ExecContext(ctx, `INSERT INTO token_tenants (token, tenant) VALUES (?, ?)`, r.ID, t)
			if isMissingParent(err) {
				return fmt.Errorf("store/sqlite: create token %s: tenant %q does not exist: %w", r.ID, t, byok.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("store/sqlite: create token %s: %w", r.ID, err)
			}
		}
		return nil
	})
}

// Token implements [token.Store].
func (db *DB) Token(ctx context.Context, id string) (token.Record, error) {
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return token.Record{}, fmt.Errorf("store/sqlite: read token %s: %w", id, err)
	}
	defer tx.Rollback()
	r, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("store/sqlite: token %s does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("store/sqlite: read token %s: %w", id, err)
	}
	if r.Tenants, err = tokenTenants(ctx, tx, id); err != nil {
		return r, err
	}
	return r, nil
}

// ListTokens implements [token.Store].
func (db *DB) ListTokens(ctx context.Context, after string, limit int) ([]token.Record, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list tokens: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list tokens: %w", err)
	}
	rs, err := collect(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list tokens: %w", err)
	}
	for i := range rs {
		if rs[i].Tenants, err = tokenTenants(ctx, tx, rs[i].ID); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// RevokeToken implements [token.Store].
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	if err := checkTokenTime("revoked", at); err != nil {
		return err
	}
	if at.IsZero() {
		return &byok.InputError{Arg: "revocation time", Reason: "is zero; give the time the token is revoked"}
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked = coalesce(revoked, ?) WHERE id = ?`, nanos(at), id)
		if err != nil {
			return fmt.Errorf("store/sqlite: revoke token %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("store/sqlite: revoke token %s: it does not exist: %w", id, byok.ErrNotFound)
		}
		return nil
	})
}

const tokenColumns = `id, kind, hash, name, created, expires, revoked`

func scanToken(s scanner) (token.Record, error) {
	var r token.Record
	var hash []byte
	var created, expires, revoked sql.NullInt64
	if err := s.Scan(&r.ID, &r.Kind, &hash, &r.Name, &created, &expires, &revoked); err != nil {
		return r, err
	}
	if len(hash) != len(r.Hash) {
		return r, fmt.Errorf("stored hash of token %s is %d bytes, not %d: the database is corrupt", r.ID, len(hash), len(r.Hash))
	}
	copy(r.Hash[:], hash)
	r.Created, r.Expires, r.Revoked = fromNanos(created), fromNanos(expires), fromNanos(revoked)
	return r, nil
}

// tokenTenants returns the tenants of token id, sorted.
func tokenTenants(ctx context.Context, tx *sql.Tx, id string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT tenant FROM token_tenants WHERE token = ? ORDER BY tenant`, id)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: read tenants of token %s: %w", id, err)
	}
	ts, err := collect(rows, func(s scanner) (string, error) {
		var t string
		return t, s.Scan(&t)
	})
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: read tenants of token %s: %w", id, err)
	}
	if len(ts) == 0 {
		return nil, nil
	}
	return ts, nil
}

// checkTokenTime reports, as an error wrapping [byok.ErrInvalidInput], a
// time that is neither zero nor in the range every backend stores exactly.
func checkTokenTime(what string, t time.Time) error {
	if t.IsZero() || (!t.Before(store.MinTime) && !t.After(store.MaxTime)) {
		return nil
	}
	return &byok.InputError{Arg: "token " + what + " time", Reason: fmt.Sprintf("is %s; it must be zero or between %s and %s",
		t.UTC().Format(time.RFC3339), store.MinTime.Format(time.RFC3339), store.MaxTime.Format(time.RFC3339))}
}
