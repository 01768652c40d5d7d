package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
)

// CreateTenant implements [byok.Store].
func (db *DB) CreateTenant(ctx context.Context, t byok.TenantRecord, keys []byok.TenantKeyRecord) error {
	if err := store.CheckTenant(t); err != nil {
		return err
	}
	for _, k := range keys {
		if err := store.CheckTenantKey(k); err != nil {
			return err
		}
		if k.Tenant != t.ID {
			return &byok.InputError{Arg: "tenant key", Reason: fmt.Sprintf("is one of tenant %q, not of tenant %q being created", k.Tenant, t.ID)}
		}
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, policy, created) VALUES ($1, $2, $3)`,
			t.ID, int64(t.Policy), nanos(t.Created))
		if db.class(err) == Duplicate {
			return db.errorf("tenant %q already exists: %w", t.ID, byok.ErrExists)
		}
		if err != nil {
			return db.wrap(err, "create tenant %q", t.ID)
		}
		for _, k := range keys {
			if err := db.insertTenantKey(ctx, tx, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Tenant implements [byok.Store].
func (db *DB) Tenant(ctx context.Context, id string) (byok.TenantRecord, error) {
	t, err := scanTenant(db.r.QueryRowContext(ctx, `SELECT id, policy, created FROM tenants WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, db.errorf("tenant %q does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return t, db.wrap(err, "read tenant %q", id)
	}
	return t, nil
}

// SetTenantPolicy implements [byok.Store].
func (db *DB) SetTenantPolicy(ctx context.Context, id string, p byok.Policy) error {
	if err := store.CheckPolicy(p); err != nil {
		return err
	}
	res, err := db.w.ExecContext(ctx, `UPDATE tenants SET policy = $1 WHERE id = $2`, int64(p), id)
	if err != nil {
		return db.wrap(err, "set policy of tenant %q", id)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return db.errorf("tenant %q does not exist: %w", id, byok.ErrNotFound)
	}
	return nil
}

// ListTenants implements [store.Store].
func (db *DB) ListTenants(ctx context.Context, after string, limit int) ([]byok.TenantRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	return query(ctx, db, scanTenant, "list tenants",
		`SELECT id, policy, created FROM tenants WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

const tenantKeyColumns = `tenant, kind, epoch,
	customer_key_id, customer_alg, customer_ct, customer_ct IS NULL,
	platform_key_id, platform_alg, platform_ct, platform_ct IS NULL, created`

// TenantKey implements [byok.Store].
func (db *DB) TenantKey(ctx context.Context, tenant string, kind byok.KeyKind) (byok.TenantKeyRecord, error) {
	k, err := scanTenantKey(db.r.QueryRowContext(ctx, `SELECT `+tenantKeyColumns+` FROM tenant_keys
		WHERE tenant = $1 AND kind = $2 ORDER BY epoch DESC LIMIT 1`, tenant, int64(kind)))
	if errors.Is(err, sql.ErrNoRows) {
		return k, db.errorf("tenant %q has no %s key: %w", tenant, kind, byok.ErrNotFound)
	}
	if err != nil {
		return k, db.wrap(err, "read %s key of tenant %q", kind, tenant)
	}
	return k, nil
}

// TenantKeyEpoch implements [byok.Store].
func (db *DB) TenantKeyEpoch(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32) (byok.TenantKeyRecord, error) {
	k, err := scanTenantKey(db.r.QueryRowContext(ctx, `SELECT `+tenantKeyColumns+` FROM tenant_keys
		WHERE tenant = $1 AND kind = $2 AND epoch = $3`, tenant, int64(kind), int64(epoch)))
	if errors.Is(err, sql.ErrNoRows) {
		return k, db.errorf("%s: %w", KeyName(tenant, kind, epoch), byok.ErrNotFound)
	}
	if err != nil {
		return k, db.wrap(err, "read %s", KeyName(tenant, kind, epoch))
	}
	return k, nil
}

// TenantKeys implements [store.Store].
func (db *DB) TenantKeys(ctx context.Context, tenant string) ([]byok.TenantKeyRecord, error) {
	return query(ctx, db, scanTenantKey, fmt.Sprintf("list tenant keys of tenant %q", tenant),
		`SELECT `+tenantKeyColumns+` FROM tenant_keys WHERE tenant = $1 ORDER BY kind, epoch`, tenant)
}

// PutTenantKey implements [byok.Store].
func (db *DB) PutTenantKey(ctx context.Context, k byok.TenantKeyRecord) error {
	if err := store.CheckTenantKey(k); err != nil {
		return err
	}
	return db.insertTenantKey(ctx, db.w, k)
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (db *DB) insertTenantKey(ctx context.Context, e execer, k byok.TenantKeyRecord) error {
	_, err := e.ExecContext(ctx, `INSERT INTO tenant_keys (tenant, kind, epoch,
		customer_key_id, customer_alg, customer_ct, platform_key_id, platform_alg, platform_ct, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		k.Tenant, int64(k.Kind), int64(k.Epoch),
		k.CustomerShare.KeyID, k.CustomerShare.Algorithm, k.CustomerShare.Ciphertext,
		k.PlatformShare.KeyID, k.PlatformShare.Algorithm, k.PlatformShare.Ciphertext,
		nanos(k.Created))
	name := KeyName(k.Tenant, k.Kind, k.Epoch)
	switch {
	case err == nil:
		return nil
	case db.class(err) == Duplicate:
		return db.errorf("%s already exists: %w", name, byok.ErrExists)
	case db.class(err) == MissingParent:
		return db.errorf("put %s: tenant %q does not exist: %w", name, k.Tenant, byok.ErrNotFound)
	}
	return db.wrap(err, "put %s", name)
}

// Scope implements [byok.Store].
func (db *DB) Scope(ctx context.Context, tenant, scope string) (byok.ScopeRecord, error) {
	s, err := scanScope(db.r.QueryRowContext(ctx, `SELECT tenant, scope, kind FROM scopes WHERE tenant = $1 AND scope = $2`, tenant, scope))
	if errors.Is(err, sql.ErrNoRows) {
		return s, db.errorf("scope %q of tenant %q was never set: %w", scope, tenant, byok.ErrNotFound)
	}
	if err != nil {
		return s, db.wrap(err, "read scope %q of tenant %q", scope, tenant)
	}
	return s, nil
}

// PutScope implements [byok.Store].
func (db *DB) PutScope(ctx context.Context, s byok.ScopeRecord) error {
	if err := store.CheckScope(s); err != nil {
		return err
	}
	return db.upsertScope(ctx, db.w, s)
}

func (db *DB) upsertScope(ctx context.Context, e execer, s byok.ScopeRecord) error {
	_, err := e.ExecContext(ctx, `INSERT INTO scopes (tenant, scope, kind) VALUES ($1, $2, $3)
		ON CONFLICT (tenant, scope) DO UPDATE SET kind = excluded.kind`, s.Tenant, s.Scope, int64(s.Kind))
	if db.class(err) == MissingParent {
		return db.errorf("put scope %q: tenant %q does not exist: %w", s.Scope, s.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return db.wrap(err, "put scope %q of tenant %q", s.Scope, s.Tenant)
	}
	return nil
}

// ListScopes implements [store.Store].
func (db *DB) ListScopes(ctx context.Context, tenant, after string, limit int) ([]byok.ScopeRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	return query(ctx, db, scanScope, fmt.Sprintf("list scopes of tenant %q", tenant), `SELECT tenant, scope, kind FROM scopes
		WHERE tenant = $1 AND scope > $2 ORDER BY scope LIMIT $3`, tenant, after, limit)
}

// ReplaceShare implements [store.Store].
func (db *DB) ReplaceShare(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32, oldKeyID string, customer kms.Wrapped) error {
	if err := store.CheckKeyRef(tenant, kind, epoch); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		return db.swapShare(ctx, tx, "replace", "customer", tenant, kind, epoch, oldKeyID, customer)
	})
}

// ReplacePlatformShare implements [store.Store].
func (db *DB) ReplacePlatformShare(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32, oldKeyID string, platform kms.Wrapped) error {
	if err := store.CheckKeyRef(tenant, kind, epoch); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		return db.swapShare(ctx, tx, "replace", "platform", tenant, kind, epoch, oldKeyID, platform)
	})
}

// swapShare compares and swaps, in tx, the share named by which,
// "customer" or "platform" (the prefix of its columns): it fails with
// [store.ErrConflict] if the share is not wrapped under oldKeyID. verb
// names the operation in errors.
func (db *DB) swapShare(ctx context.Context, tx *sql.Tx, verb, which, tenant string, kind byok.KeyKind, epoch uint32, oldKeyID string, w kms.Wrapped) error {
	name := KeyName(tenant, kind, epoch)
	res, err := tx.ExecContext(ctx, `UPDATE tenant_keys SET `+which+`_key_id = $1, `+which+`_alg = $2, `+which+`_ct = $3
		WHERE tenant = $4 AND kind = $5 AND epoch = $6 AND `+which+`_key_id = $7`,
		w.KeyID, w.Algorithm, w.Ciphertext, tenant, int64(kind), int64(epoch), oldKeyID)
	if err != nil {
		return db.wrap(err, "%s %s share of %s", verb, which, name)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	var stored string
	err = tx.QueryRowContext(ctx, `SELECT `+which+`_key_id FROM tenant_keys WHERE tenant = $1 AND kind = $2 AND epoch = $3`,
		tenant, int64(kind), int64(epoch)).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return db.errorf("%s %s share: %s does not exist: %w", verb, which, name, byok.ErrNotFound)
	}
	if err != nil {
		return db.wrap(err, "%s %s share of %s", verb, which, name)
	}
	return db.errorf("%s %s share of %s: it is wrapped under %q, not %q; re-read the key and retry: %w",
		verb, which, name, stored, oldKeyID, store.ErrConflict)
}

// ShareInventory implements [store.Store].
func (db *DB) ShareInventory(ctx context.Context) ([]store.ShareCount, error) {
	return query(ctx, db, scanShareCount, "share inventory", `SELECT key_id, count(*) FROM (
			SELECT customer_key_id AS key_id FROM tenant_keys
			UNION ALL
			SELECT platform_key_id FROM tenant_keys
		) s GROUP BY key_id ORDER BY key_id`)
}

// TenantShareInventory implements [store.Store]. Tenants are never
// deleted, so the existence check and the count need no common snapshot.
func (db *DB) TenantShareInventory(ctx context.Context, tenant string) ([]store.ShareCount, error) {
	var exists bool
	if err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)`, tenant).Scan(&exists); err != nil {
		return nil, db.wrap(err, "share inventory of tenant %q", tenant)
	}
	if !exists {
		return nil, db.errorf("share inventory: tenant %q does not exist: %w", tenant, byok.ErrNotFound)
	}
	return query(ctx, db, scanShareCount, fmt.Sprintf("share inventory of tenant %q", tenant), `SELECT key_id, count(*) FROM (
			SELECT customer_key_id AS key_id FROM tenant_keys WHERE tenant = $1
			UNION ALL
			SELECT platform_key_id FROM tenant_keys WHERE tenant = $1
		) s GROUP BY key_id ORDER BY key_id`, tenant)
}

func scanTenant(s scanner) (byok.TenantRecord, error) {
	var t byok.TenantRecord
	var created sql.NullInt64
	err := s.Scan(&t.ID, &t.Policy, &created)
	t.Created = fromNanos(created)
	return t, err
}

func scanTenantKey(s scanner) (byok.TenantKeyRecord, error) {
	var k byok.TenantKeyRecord
	var cNull, pNull bool
	var created sql.NullInt64
	err := s.Scan(&k.Tenant, &k.Kind, &k.Epoch,
		&k.CustomerShare.KeyID, &k.CustomerShare.Algorithm, &k.CustomerShare.Ciphertext, &cNull,
		&k.PlatformShare.KeyID, &k.PlatformShare.Algorithm, &k.PlatformShare.Ciphertext, &pNull,
		&created)
	k.CustomerShare.Ciphertext = blob(k.CustomerShare.Ciphertext, cNull)
	k.PlatformShare.Ciphertext = blob(k.PlatformShare.Ciphertext, pNull)
	k.Created = fromNanos(created)
	return k, err
}

func scanScope(s scanner) (byok.ScopeRecord, error) {
	var r byok.ScopeRecord
	err := s.Scan(&r.Tenant, &r.Scope, &r.Kind)
	return r, err
}

func scanShareCount(s scanner) (store.ShareCount, error) {
	var c store.ShareCount
	err := s.Scan(&c.KeyID, &c.Shares)
	return c, err
}
