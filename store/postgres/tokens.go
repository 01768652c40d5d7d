package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store"
)

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
	return db.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tokens (id, kind, hash, name, created, expires, revoked)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			r.ID, string(r.Kind), r.Hash[:], r.Name, nanos(r.Created), nanos(r.Expires), nanos(r.Revoked))
		if sqlState(err) == uniqueViolation {
			return fmt.Errorf("store/postgres: token %s already exists: %w", r.ID, byok.ErrExists)
		}
		if err != nil {
			return wrapErr(err, "create token %s", r.ID)
		}
		for _, t := range r.Tenants {
			_, err := tx.Exec(ctx, `INSERT INTO token_tenants (token, tenant) VALUES ($1, $2)`, r.ID, t)
			if sqlState(err) == foreignKeyViolation {
				return fmt.Errorf("store/postgres: create token %s: tenant %q does not exist: %w", r.ID, t, byok.ErrNotFound)
			}
			if err != nil {
				return wrapErr(err, "create token %s", r.ID)
			}
		}
		return nil
	})
}

// tokenColumns selects a token and, in the same snapshot, its tenants.
const tokenColumns = `id, kind, hash, name, created, expires, revoked,
	ARRAY (SELECT tenant FROM token_tenants WHERE token = tokens.id ORDER BY tenant)`

// Token implements [token.Store].
func (db *DB) Token(ctx context.Context, id string) (token.Record, error) {
	r, err := scanToken(db.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("store/postgres: token %s does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return r, wrapErr(err, "read token %s", id)
	}
	return r, nil
}

// ListTokens implements [token.Store].
func (db *DB) ListTokens(ctx context.Context, after string, limit int) ([]token.Record, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	rs, err := collect(rows, scanToken)
	if err != nil {
		return nil, wrapErr(err, "list tokens")
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
	tag, err := db.pool.Exec(ctx, `UPDATE tokens SET revoked = coalesce(revoked, $1) WHERE id = $2`, nanos(at), id)
	if err != nil {
		return wrapErr(err, "revoke token %s", id)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store/postgres: revoke token %s: it does not exist: %w", id, byok.ErrNotFound)
	}
	return nil
}

func scanToken(row pgx.Row) (token.Record, error) {
	var r token.Record
	var kind string
	var hash []byte
	var created, expires, revoked *int64
	if err := row.Scan(&r.ID, &kind, &hash, &r.Name, &created, &expires, &revoked, &r.Tenants); err != nil {
		return r, err
	}
	if len(hash) != len(r.Hash) {
		return r, fmt.Errorf("stored hash of token %s is %d bytes, not %d: the database is corrupt", r.ID, len(hash), len(r.Hash))
	}
	copy(r.Hash[:], hash)
	r.Kind = token.Kind(kind)
	r.Created, r.Expires, r.Revoked = fromNanos(created), fromNanos(expires), fromNanos(revoked)
	if len(r.Tenants) == 0 {
		r.Tenants = nil
	}
	return r, nil
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
