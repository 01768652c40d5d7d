package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/store/sqlstore"
)

// rewrap implements [sqlstore.Dialect.Rewrap] with one statement that
// takes the batch as arrays: it updates the DEKs and, from the same
// snapshot, finds a tenant key the batch names that does not exist (deks
// has no foreign key), so that a batch costs one round trip. The redundant
// "d.id = ANY($1)" lets the planner find the batch's rows through the
// primary key instead of hashing the whole table. UPDATE … FROM changes a
// row at most once, so a DEK named twice is sent once, with its last
// record. On an error the caller rolls the transaction back, updates
// included.
func rewrap(ctx context.Context, tx *sql.Tx, recs []byok.DEKRecord) error {
	type keyRef struct {
		tenant string
		kind   byok.KeyKind
		epoch  uint32
	}
	last := make(map[byok.DEKID]int, len(recs))
	refs := make(map[keyRef]bool)
	for i, d := range recs {
		last[d.ID] = i
		refs[keyRef{d.Tenant, d.Kind, d.Epoch}] = true
	}
	var refTenants []string
	var refKinds []int16
	var refEpochs []int64
	for r := range refs {
		refTenants, refKinds, refEpochs = append(refTenants, r.tenant), append(refKinds, int16(r.kind)), append(refEpochs, int64(r.epoch))
	}
	n := len(last)
	ids, tenants, scopes := make([][]byte, 0, n), make([]string, 0, n), make([]string, 0, n)
	kinds, epochs, wrapped := make([]int16, 0, n), make([]int64, 0, n), make([][]byte, 0, n)
	for i := range recs {
		d := &recs[i]
		if last[d.ID] != i {
			continue
		}
		ids, tenants, scopes = append(ids, d.ID[:]), append(tenants, d.Tenant), append(scopes, d.Scope)
		kinds, epochs, wrapped = append(kinds, int16(d.Kind)), append(epochs, int64(d.Epoch)), append(wrapped, d.Wrapped)
	}

	var updated int64
	var missing sql.NullString
	var kind, epoch sql.NullInt64
	err := tx.QueryRowContext(ctx, `WITH upd AS (
			UPDATE deks d SET kind = u.kind, epoch = u.epoch, wrapped = u.wrapped
			FROM unnest($1::bytea[], $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::bytea[])
				AS u (id, tenant, scope, kind, epoch, wrapped)
			WHERE d.id = ANY($1) AND d.id = u.id AND d.tenant = u.tenant AND d.scope = u.scope
			RETURNING 1
		), missing AS (
			SELECT u.tenant, u.kind, u.epoch FROM unnest($7::text[], $8::smallint[], $9::bigint[]) AS u (tenant, kind, epoch)
			WHERE NOT EXISTS (SELECT FROM tenant_keys k WHERE k.tenant = u.tenant AND k.kind = u.kind AND k.epoch = u.epoch)
			LIMIT 1
		)
		SELECT (SELECT count(*) FROM upd), (SELECT tenant FROM missing), (SELECT kind FROM missing), (SELECT epoch FROM missing)`,
		ids, tenants, scopes, kinds, epochs, wrapped, refTenants, refKinds, refEpochs).Scan(&updated, &missing, &kind, &epoch)
	if err != nil {
		return wrapErr(err, "rewrap %d DEKs", n)
	}
	if missing.Valid {
		return fmt.Errorf("store/postgres: rewrap DEKs: %s does not exist: %w",
			sqlstore.KeyName(missing.String, byok.KeyKind(kind.Int64), uint32(epoch.Int64)), byok.ErrNotFound)
	}
	if int(updated) == n {
		return nil
	}

	var id []byte
	var tenant, scope string
	err = tx.QueryRowContext(ctx, `SELECT u.id, u.tenant, u.scope FROM unnest($1::bytea[], $2::text[], $3::text[]) AS u (id, tenant, scope)
		WHERE NOT EXISTS (SELECT FROM deks d WHERE d.id = u.id AND d.tenant = u.tenant AND d.scope = u.scope)
		LIMIT 1`, ids, tenants, scopes).Scan(&id, &tenant, &scope)
	if err != nil {
		return wrapErr(err, "rewrap %d DEKs: %d of them do not exist; finding which", n, n-int(updated))
	}
	return fmt.Errorf("store/postgres: rewrap DEK %x: no DEK with that id in scope %q of tenant %q: %w", id, scope, tenant, byok.ErrNotFound)
}

// SQLSTATE codes this package branches on.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	// characterNotInRepertoire: text that is not valid UTF-8, or holds NUL.
	characterNotInRepertoire = "22021"
	// untranslatableCharacter: likewise, for some conversions.
	untranslatableCharacter = "22P05"
)

// classify implements [sqlstore.Dialect.Classify] on SQLSTATE codes.
func classify(err error) sqlstore.ErrorClass {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return sqlstore.OtherError
	}
	switch e.Code {
	case uniqueViolation:
		return sqlstore.Duplicate
	case foreignKeyViolation:
		return sqlstore.MissingParent
	case characterNotInRepertoire, untranslatableCharacter:
		return sqlstore.InvalidText
	}
	return sqlstore.OtherError
}

// wrapErr wraps a failure of the database in an error that says what was
// being done (format and args). Text PostgreSQL cannot hold becomes an
// [byok.InputError].
func wrapErr(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if classify(err) == sqlstore.InvalidText {
		return fmt.Errorf("store/postgres: %s: %w", what, &byok.InputError{Arg: "text argument",
			Reason: "is not valid UTF-8 or holds a NUL byte, which PostgreSQL text cannot store"})
	}
	return fmt.Errorf("store/postgres: %s: %w", what, err)
}
