package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/store"
)

const dekColumns = `id, tenant, scope, kind, epoch, wrapped, wrapped IS NULL, created`

// PutDEK implements [byok.Store]. The insert happens only if the DEK's
// tenant key exists: PostgreSQL's deks has no foreign key to it (see its
// schema), and SQLite's foreign key then never fires.
func (db *DB) PutDEK(ctx context.Context, d byok.DEKRecord) error {
	if err := store.CheckDEK(d); err != nil {
		return err
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO deks (id, tenant, scope, kind, epoch, wrapped, created)
		SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (
			SELECT 1 FROM tenant_keys WHERE tenant = $2 AND kind = $4 AND epoch = $5)`,
		d.ID[:], d.Tenant, d.Scope, int64(d.Kind), int64(d.Epoch), d.Wrapped, nanos(d.Created))
	switch class := db.class(err); {
	case class == Duplicate:
		return db.errorf("DEK %x already exists: %w", d.ID, byok.ErrExists)
	case err != nil && class != MissingParent:
		return db.wrap(err, "put DEK %x", d.ID)
	case err == nil:
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
	}
	// No row inserted, or a foreign key violation: no such tenant key.
	return db.errorf("put DEK %x: %s does not exist: %w", d.ID, KeyName(d.Tenant, d.Kind, d.Epoch), byok.ErrNotFound)
}

// DEK implements [byok.Store].
func (db *DB) DEK(ctx context.Context, id byok.DEKID) (byok.DEKRecord, error) {
	d, err := scanDEK(db.r.QueryRowContext(ctx, `SELECT `+dekColumns+` FROM deks WHERE id = $1`, id[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return d, db.errorf("DEK %x does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return d, db.wrap(err, "read DEK %x", id)
	}
	return d, nil
}

// ListDEKs implements [store.Store]. It walks the tenant's DEKs in id order
// from the cursor and skips those under other tenant keys: kind and epoch
// are in no index, so that a rewrap rewrites one row and touches no index,
// and a re-key that pages from its cursor reads each of the tenant's DEKs
// once, however many older epochs they are under.
func (db *DB) ListDEKs(ctx context.Context, tenant string, kind byok.KeyKind, belowEpoch uint32, after byok.DEKID, limit int) ([]byok.DEKRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("list DEKs of tenant %q under its %s keys below epoch %d", tenant, kind, belowEpoch)
	if err := ctx.Err(); err != nil {
		return nil, db.wrap(err, "%s", what)
	}
	// A page is a re-key's hot loop: it runs straight on the driver and
	// does not read the columns the query fixes.
	ds := make([]byok.DEKRecord, 0, min(limit, 10_000))
	var wrappings arena
	err := db.rawQuery(ctx, `SELECT id, scope, wrapped, wrapped IS NULL, created, epoch FROM deks
		WHERE tenant = $1 AND kind = $2 AND epoch < $3 AND id > $4 ORDER BY tenant, id LIMIT $5`,
		[]any{tenant, int64(kind), int64(belowEpoch), after[:], int64(limit)}, func(v []driver.Value) error {
			d := byok.DEKRecord{Tenant: tenant, Kind: kind}
			if err := rawDEK(v, &d, &wrappings); err != nil {
				return err
			}
			ds = append(ds, d)
			return nil
		})
	if err != nil {
		return nil, db.wrap(err, "%s", what)
	}
	return ds, nil
}

// rawDEK sets d's id, scope, wrapping (copied into a), creation time and
// epoch from the driver's values of id, scope, wrapped, wrapped IS NULL,
// created and epoch.
func rawDEK(v []driver.Value, d *byok.DEKRecord, a *arena) error {
	id, _ := v[0].([]byte)
	scope, ok := v[1].(string)
	wrapped, isBlob := v[2].([]byte)
	null, isBool := v[3].(bool)
	if n, isInt := v[3].(int64); isInt {
		null, isBool = n != 0, true
	}
	created, isTime := v[4].(int64)
	epoch, isEpoch := v[5].(int64)
	if len(id) != len(d.ID) || !ok || (!isBlob && v[2] != nil) || !isBool || (!isTime && v[4] != nil) || !isEpoch || epoch < 0 || epoch > math.MaxUint32 {
		return fmt.Errorf("stored DEK %x of scope %q is not an id of %d bytes, a scope, a wrapping, a time and an epoch: the database is corrupt",
			id, scope, len(d.ID))
	}
	d.Epoch = uint32(epoch)
	copy(d.ID[:], id)
	d.Scope = scope
	if !null {
		d.Wrapped = a.copy(wrapped)
	}
	d.Created = fromNanos(sql.NullInt64{Int64: created, Valid: v[4] != nil})
	return nil
}

// arena copies byte slices into shared blocks: one allocation for many
// small slices that live as long as each other.
type arena []byte

// copy returns a copy of b in a, not nil even if b is empty, with no room
// to append into its neighbour.
func (a *arena) copy(b []byte) []byte {
	if *a == nil || cap(*a)-len(*a) < len(b) {
		*a = make([]byte, 0, max(16<<10, len(b)))
	}
	start := len(*a)
	*a = append(*a, b...)
	return (*a)[start:len(*a):len(*a)]
}

// ListScopeDEKs implements [store.Store].
func (db *DB) ListScopeDEKs(ctx context.Context, tenant, scope string, after byok.DEKID, limit int) ([]byok.DEKRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	return query(ctx, db, scanDEK, fmt.Sprintf("list DEKs of scope %q of tenant %q", scope, tenant), `SELECT `+dekColumns+` FROM deks
		WHERE tenant = $1 AND scope = $2 AND id > $3 ORDER BY tenant, scope, id LIMIT $4`,
		tenant, scope, after[:], limit)
}

// RewrapDEKs implements [store.Store].
func (db *DB) RewrapDEKs(ctx context.Context, recs []byok.DEKRecord) error {
	if err := checkMove(nil, recs); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	return db.bulkWrite(ctx, true, func(tx *sql.Tx) error { return db.d.Rewrap(ctx, tx, recs) })
}

// MoveScope implements [store.Store].
func (db *DB) MoveScope(ctx context.Context, s byok.ScopeRecord, rewrapped []byok.DEKRecord) error {
	if err := checkMove(&s, rewrapped); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := db.upsertScope(ctx, tx, s); err != nil {
			return err
		}
		return db.rewrap(ctx, tx, rewrapped)
	})
}

// checkMove checks the arguments of a move of scope s (if s is not nil)
// that rewraps recs, or of a rewrap of recs.
func checkMove(s *byok.ScopeRecord, recs []byok.DEKRecord) error {
	if s != nil {
		if err := store.CheckScope(*s); err != nil {
			return err
		}
	}
	for _, d := range recs {
		if err := store.CheckRewrap(d); err != nil {
			return err
		}
		if s != nil && (d.Tenant != s.Tenant || d.Scope != s.Scope || d.Kind != s.Kind) {
			return &byok.InputError{Arg: "rewrapped DEK", Reason: fmt.Sprintf(
				"%x is a %s DEK of scope %q of tenant %q; moving scope %q of tenant %q to %s takes only %s DEKs of that scope",
				d.ID, d.Kind, d.Scope, d.Tenant, s.Scope, s.Tenant, s.Kind, s.Kind)}
		}
	}
	return nil
}

// rewrap is the dialect's Rewrap, which does nothing for no records.
func (db *DB) rewrap(ctx context.Context, tx *sql.Tx, recs []byok.DEKRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return db.d.Rewrap(ctx, tx, recs)
}

// CountDEKs implements [record.Store].
func (db *DB) CountDEKs(ctx context.Context, tenant string, kind byok.KeyKind, belowEpoch uint32, scope string) (int64, error) {
	var n int64
	var err error
	if scope == "" {
		err = db.r.QueryRowContext(ctx, `SELECT count(*) FROM deks WHERE tenant = $1 AND kind = $2 AND epoch < $3`,
			tenant, int64(kind), int64(belowEpoch)).Scan(&n)
	} else {
		err = db.r.QueryRowContext(ctx, `SELECT count(*) FROM deks WHERE tenant = $1 AND scope = $2 AND kind = $3 AND epoch < $4`,
			tenant, scope, int64(kind), int64(belowEpoch)).Scan(&n)
	}
	if err != nil {
		return 0, db.wrap(err, "count DEKs of tenant %q", tenant)
	}
	return n, nil
}

func scanDEK(s scanner) (byok.DEKRecord, error) {
	var d byok.DEKRecord
	var id []byte
	var null bool
	var created sql.NullInt64
	if err := s.Scan(&id, &d.Tenant, &d.Scope, &d.Kind, &d.Epoch, &d.Wrapped, &null, &created); err != nil {
		return d, err
	}
	if len(id) != len(d.ID) {
		return d, fmt.Errorf("stored DEK id is %d bytes, not %d: the database is corrupt", len(id), len(d.ID))
	}
	copy(d.ID[:], id)
	d.Wrapped = blob(d.Wrapped, null)
	d.Created = fromNanos(created)
	return d, nil
}
