package sqlstore

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
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			r.ID, string(r.Kind), r.Hash[:], r.Name, nanos(r.Created), nanos(r.Expires), nanos(r.Revoked))
		if db.class(err) == Duplicate {
			return db.errorf("token %s already exists: %w", r.ID, byok.ErrExists)
		}
		if err != nil {
			return db.wrap(err, "create token %s", r.ID)
		}
		for _, t := range r.Tenants {
			_, err := tx.ExecContext(ctx, `INSERT INTO token_tenants (token, tenant) VALUES ($1, $2)`, r.ID, t)
			if db.class(err) == MissingParent {
				return db.errorf("create token %s: tenant %q does not exist: %w", r.ID, t, byok.ErrNotFound)
			}
			if err != nil {
				return db.wrap(err, "create token %s", r.ID)
			}
		}
		return nil
	})
}

// tokenColumns selects a token and one of its tenants (NULL if it has
// none) from tokens t joined with token_tenants tt: one row per tenant,
// in one statement, hence one snapshot.
const tokenColumns = `t.id, t.kind, t.hash, t.name, t.created, t.expires, t.revoked, tt.tenant`

// Token implements [token.Store].
func (db *DB) Token(ctx context.Context, id string) (token.Record, error) {
	rs, err := db.tokens(ctx, fmt.Sprintf("read token %s", id), `SELECT `+tokenColumns+`
		FROM tokens t LEFT JOIN token_tenants tt ON tt.token = t.id
		WHERE t.id = $1 ORDER BY tt.tenant`, id)
	if err != nil {
		return token.Record{}, err
	}
	if len(rs) == 0 {
		return token.Record{}, db.errorf("token %s does not exist: %w", id, byok.ErrNotFound)
	}
	return rs[0], nil
}

// ListTokens implements [token.Store].
func (db *DB) ListTokens(ctx context.Context, after string, limit int) ([]token.Record, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	return db.tokens(ctx, "list tokens", `SELECT `+tokenColumns+`
		FROM (SELECT id, kind, hash, name, created, expires, revoked FROM tokens WHERE id > $1 ORDER BY id LIMIT $2) t LEFT JOIN token_tenants tt ON tt.token = t.id
		ORDER BY t.id, tt.tenant`, after, limit)
}

// tokens runs a query of tokenColumns ordered by token id and returns its
// tokens, each with its tenants; what names the query in errors.
func (db *DB) tokens(ctx context.Context, what, q string, args ...any) ([]token.Record, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.wrap(err, "%s", what)
	}
	defer rows.Close()
	rs := []token.Record{}
	for rows.Next() {
		r, tenant, err := scanToken(rows)
		if err != nil {
			return nil, db.wrap(err, "%s", what)
		}
		if n := len(rs); n == 0 || rs[n-1].ID != r.ID {
			rs = append(rs, r)
		}
		if tenant.Valid {
			last := &rs[len(rs)-1]
			last.Tenants = append(last.Tenants, tenant.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap(err, "%s", what)
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
	res, err := db.w.ExecContext(ctx, `UPDATE tokens SET revoked = coalesce(revoked, $1) WHERE id = $2`, nanos(at), id)
	if err != nil {
		return db.wrap(err, "revoke token %s", id)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return db.errorf("revoke token %s: it does not exist: %w", id, byok.ErrNotFound)
	}
	return nil
}

// scanToken scans a row of tokenColumns.
func scanToken(s scanner) (token.Record, sql.NullString, error) {
	var r token.Record
	var hash []byte
	var created, expires, revoked sql.NullInt64
	var tenant sql.NullString
	if err := s.Scan(&r.ID, &r.Kind, &hash, &r.Name, &created, &expires, &revoked, &tenant); err != nil {
		return r, tenant, err
	}
	if len(hash) != len(r.Hash) {
		return r, tenant, fmt.Errorf("stored hash of token %s is %d bytes, not %d: the database is corrupt", r.ID, len(hash), len(r.Hash))
	}
	copy(r.Hash[:], hash)
	r.Created, r.Expires, r.Revoked = fromNanos(created), fromNanos(expires), fromNanos(revoked)
	return r, tenant, nil
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
