// Package postgres is the [store.Store] for several replicas of byok that
// share one PostgreSQL database, through github.com/jackc/pgx/v5. Its [DB]
// also keeps the audit log ([audit.Store]), the lifecycle records, jobs
// and health timeline ([lifecycle.Store]) and the HTTP API's tokens
// ([token.Store]); all of them pass the conformance suites in storetest,
// as the SQLite store does.
//
// # Schema
//
// The schema is created and upgraded by the embedded, numbered migrations
// migrations/NNNN_name.sql, applied in order by [Open], each in its own
// transaction and recorded in table schema_migrations. Each migration
// transaction first takes a transaction-level advisory lock, so replicas
// that open the database at the same time apply every migration exactly
// once: the others wait, then find it applied. Opening a database whose
// schema is newer than this code fails rather than guess.
//
// Times are stored as bigint Unix nanoseconds (NULL for the zero time) and
// read back in UTC: timestamptz would keep only microseconds. Wrapped bytes
// are bytea, with nil (NULL) kept apart from empty. Ids and key ids are
// text COLLATE "C", so lists are ordered bytewise as in every backend,
// whatever the database's collation.
//
// PostgreSQL text holds only valid UTF-8 without NUL bytes: an id, key id
// or algorithm name that is not fails with [byok.ErrInvalidInput], lookups
// included.
//
// DEKs have no foreign key to their tenant key: the insert and the rewrap
// check it instead (see migrations/0001_init.sql), which makes a rewrap a
// third faster; tenant keys are never deleted, so the check cannot race.
//
// # Transactions
//
// Every method that writes more than one row runs in one transaction, at
// PostgreSQL's default isolation (read committed). Rewraps send a whole
// batch as arrays in one UPDATE … FROM unnest(…) statement, pipelined with
// the tenant-key check: one round trip per batch. Appends to one audit
// chain take turns on an advisory lock, so replicas never interleave them.
//
// # Cache invalidation across replicas
//
// A replica that changes a tenant's keys or scopes calls [DB.Notify]; every
// replica runs [DB.Listen] with a callback that drops what it caches about
// the tenant (keyring.Forget). Both go over PostgreSQL LISTEN/NOTIFY on one
// channel, [Channel], whose payload is the tenant id.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store"
)

// DB is a [store.Store] on a PostgreSQL database, through a pool of
// connections. It is safe for concurrent use.
type DB struct {
	pool   *pgxpool.Pool
	closed chan struct{} // closed by Close; stops Listen
}

var (
	_ store.Store     = (*DB)(nil)
	_ lifecycle.Store = (*DB)(nil)
	_ audit.Store     = (*DB)(nil)
	_ token.Store     = (*DB)(nil)
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the advisory lock that serialises
// migrations: "byok" in ASCII.
const migrationLock = 0x62796f6b

// Open connects to the database that dsn names (a URL
// postgres://user:password@host:port/dbname?… or libpq keyword/value
// pairs, as pgx parses them, pool settings such as pool_max_conns
// included) and brings its schema up to date. It fails if the schema is
// newer than this code knows. Errors never hold the password.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: the DSN is invalid: %s; check its syntax", parseReason(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: %w", err)
	}
	if err := migrate(ctx, pool, migrationFiles); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store/postgres: open database %q on %s: %w", cfg.ConnConfig.Database, cfg.ConnConfig.Host, err)
	}
	return &DB{pool: pool, closed: make(chan struct{})}, nil
}

// parseReason returns why pgx could not parse a DSN, without the DSN:
// pgx quotes the DSN with its password masked, but only as far as it can
// recognise one ("password = x", with spaces, is not).
func parseReason(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		msg := pe.Error() // "cannot parse `<dsn>`: <reason>"
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			return msg[i+len("`: "):]
		}
	}
	return "it could not be parsed"
}

// Close closes the pool and stops every [DB.Listen]. Calls after Close
// fail. It waits for connections in use to be returned.
func (db *DB) Close() error {
	select {
	case <-db.closed:
	default:
		close(db.closed)
	}
	db.pool.Close()
	return nil
}

// migrate applies the migrations of fsys that the database lacks, one
// transaction each.
func migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) error {
	ms, err := store.LoadMigrations(fsys)
	if err != nil {
		return fmt.Errorf("embedded migrations: %w", err)
	}
	for {
		done, err := migrateOne(ctx, pool, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration the database lacks, if any, and
// reports whether the database is up to date. The advisory lock, held
// until the transaction ends, makes concurrent callers take turns.
func migrateOne(ctx context.Context, pool *pgxpool.Pool, ms []store.Migration) (done bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer NOT NULL PRIMARY KEY,
			name    text    NOT NULL,
			applied bigint  NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		latest := len(ms)
		if current > latest {
			return fmt.Errorf("database schema is at version %d, newer than version %d, the latest this build of byok knows: "+
				"run the byok release that last upgraded this database, or a newer one", current, latest)
		}
		if current == latest {
			done = true
			return nil
		}
		m := ms[current]
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, $3)`,
			m.Version, m.Name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		return nil
	})
	return done, err
}

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
	return db.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tenants (id, policy, created) VALUES ($1, $2, $3)`,
			t.ID, int16(t.Policy), nanos(t.Created))
		switch {
		case err == nil:
		case sqlState(err) == uniqueViolation:
			return fmt.Errorf("store/postgres: tenant %q already exists: %w", t.ID, byok.ErrExists)
		default:
			return wrapErr(err, "create tenant %q", t.ID)
		}
		for _, k := range keys {
			if err := insertTenantKey(ctx, tx, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// write runs f in one transaction: committed if f returns nil, rolled
// back otherwise.
func (db *DB) write(ctx context.Context, f func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store/postgres: begin transaction: %w", err)
	}
	if err := f(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store/postgres: commit: %w", err)
	}
	return nil
}

// Tenant implements [byok.Store].
func (db *DB) Tenant(ctx context.Context, id string) (byok.TenantRecord, error) {
	t, err := scanTenant(db.pool.QueryRow(ctx, `SELECT id, policy, created FROM tenants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("store/postgres: tenant %q does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return t, wrapErr(err, "read tenant %q", id)
	}
	return t, nil
}

// SetTenantPolicy implements [byok.Store].
func (db *DB) SetTenantPolicy(ctx context.Context, id string, p byok.Policy) error {
	if err := store.CheckPolicy(p); err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE tenants SET policy = $1 WHERE id = $2`, int16(p), id)
	if err != nil {
		return wrapErr(err, "set policy of tenant %q", id)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store/postgres: tenant %q does not exist: %w", id, byok.ErrNotFound)
	}
	return nil
}

// ListTenants implements [store.Store].
func (db *DB) ListTenants(ctx context.Context, after string, limit int) ([]byok.TenantRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT id, policy, created FROM tenants WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	ts, err := collect(rows, scanTenant)
	if err != nil {
		return nil, wrapErr(err, "list tenants")
	}
	return ts, nil
}

const tenantKeyColumns = `tenant, kind, epoch,
	customer_key_id, customer_alg, customer_ct,
	platform_key_id, platform_alg, platform_ct, created`

// TenantKey implements [byok.Store].
func (db *DB) TenantKey(ctx context.Context, tenant string, kind byok.KeyKind) (byok.TenantKeyRecord, error) {
	k, err := scanTenantKey(db.pool.QueryRow(ctx, `SELECT `+tenantKeyColumns+` FROM tenant_keys
		WHERE tenant = $1 AND kind = $2 ORDER BY epoch DESC LIMIT 1`, tenant, int16(kind)))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, fmt.Errorf("store/postgres: tenant %q has no %s key: %w", tenant, kind, byok.ErrNotFound)
	}
	if err != nil {
		return k, wrapErr(err, "read %s key of tenant %q", kind, tenant)
	}
	return k, nil
}

// TenantKeyEpoch implements [byok.Store].
func (db *DB) TenantKeyEpoch(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32) (byok.TenantKeyRecord, error) {
	k, err := scanTenantKey(db.pool.QueryRow(ctx, `SELECT `+tenantKeyColumns+` FROM tenant_keys
		WHERE tenant = $1 AND kind = $2 AND epoch = $3`, tenant, int16(kind), int64(epoch)))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, fmt.Errorf("store/postgres: %s: %w", keyName(tenant, kind, epoch), byok.ErrNotFound)
	}
	if err != nil {
		return k, wrapErr(err, "read %s", keyName(tenant, kind, epoch))
	}
	return k, nil
}

// TenantKeys implements [store.Store].
func (db *DB) TenantKeys(ctx context.Context, tenant string) ([]byok.TenantKeyRecord, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+tenantKeyColumns+` FROM tenant_keys
		WHERE tenant = $1 ORDER BY kind, epoch`, tenant)
	ks, err := collect(rows, scanTenantKey)
	if err != nil {
		return nil, wrapErr(err, "list tenant keys of tenant %q", tenant)
	}
	return ks, nil
}

// PutTenantKey implements [byok.Store].
func (db *DB) PutTenantKey(ctx context.Context, k byok.TenantKeyRecord) error {
	if err := store.CheckTenantKey(k); err != nil {
		return err
	}
	return insertTenantKey(ctx, db.pool, k)
}

// execer is a *pgxpool.Pool or a pgx.Tx.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertTenantKey(ctx context.Context, e execer, k byok.TenantKeyRecord) error {
	_, err := e.Exec(ctx, `INSERT INTO tenant_keys (tenant, kind, epoch,
		customer_key_id, customer_alg, customer_ct, platform_key_id, platform_alg, platform_ct, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		k.Tenant, int16(k.Kind), int64(k.Epoch),
		k.CustomerShare.KeyID, k.CustomerShare.Algorithm, k.CustomerShare.Ciphertext,
		k.PlatformShare.KeyID, k.PlatformShare.Algorithm, k.PlatformShare.Ciphertext,
		nanos(k.Created))
	switch sqlState(err) {
	case "":
		if err == nil {
			return nil
		}
	case uniqueViolation:
		return fmt.Errorf("store/postgres: %s already exists: %w", keyName(k.Tenant, k.Kind, k.Epoch), byok.ErrExists)
	case foreignKeyViolation:
		return fmt.Errorf("store/postgres: put %s: tenant %q does not exist: %w", keyName(k.Tenant, k.Kind, k.Epoch), k.Tenant, byok.ErrNotFound)
	}
	return wrapErr(err, "put %s", keyName(k.Tenant, k.Kind, k.Epoch))
}

// Scope implements [byok.Store].
func (db *DB) Scope(ctx context.Context, tenant, scope string) (byok.ScopeRecord, error) {
	s, err := scanScope(db.pool.QueryRow(ctx, `SELECT tenant, scope, kind FROM scopes WHERE tenant = $1 AND scope = $2`, tenant, scope))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("store/postgres: scope %q of tenant %q was never set: %w", scope, tenant, byok.ErrNotFound)
	}
	if err != nil {
		return s, wrapErr(err, "read scope %q of tenant %q", scope, tenant)
	}
	return s, nil
}

// PutScope implements [byok.Store].
func (db *DB) PutScope(ctx context.Context, s byok.ScopeRecord) error {
	if err := store.CheckScope(s); err != nil {
		return err
	}
	return upsertScope(ctx, db.pool, s)
}

func upsertScope(ctx context.Context, e execer, s byok.ScopeRecord) error {
	_, err := e.Exec(ctx, `INSERT INTO scopes (tenant, scope, kind) VALUES ($1, $2, $3)
		ON CONFLICT (tenant, scope) DO UPDATE SET kind = excluded.kind`, s.Tenant, s.Scope, int16(s.Kind))
	if sqlState(err) == foreignKeyViolation {
		return fmt.Errorf("store/postgres: put scope %q: tenant %q does not exist: %w", s.Scope, s.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return wrapErr(err, "put scope %q of tenant %q", s.Scope, s.Tenant)
	}
	return nil
}

// ListScopes implements [store.Store].
func (db *DB) ListScopes(ctx context.Context, tenant, after string, limit int) ([]byok.ScopeRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT tenant, scope, kind FROM scopes
		WHERE tenant = $1 AND scope > $2 ORDER BY scope LIMIT $3`, tenant, after, limit)
	ss, err := collect(rows, scanScope)
	if err != nil {
		return nil, wrapErr(err, "list scopes of tenant %q", tenant)
	}
	return ss, nil
}

const dekColumns = `id, tenant, scope, kind, epoch, wrapped, created`

// PutDEK implements [byok.Store].
func (db *DB) PutDEK(ctx context.Context, d byok.DEKRecord) error {
	if err := store.CheckDEK(d); err != nil {
		return err
	}
	// The insert happens only if the tenant key exists (see the schema).
	tag, err := db.pool.Exec(ctx, `INSERT INTO deks (id, tenant, scope, kind, epoch, wrapped, created)
		SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (
			SELECT FROM tenant_keys WHERE tenant = $2 AND kind = $4 AND epoch = $5)`,
		d.ID[:], d.Tenant, d.Scope, int16(d.Kind), int64(d.Epoch), d.Wrapped, nanos(d.Created))
	switch {
	case sqlState(err) == uniqueViolation:
		return fmt.Errorf("store/postgres: DEK %x already exists: %w", d.ID, byok.ErrExists)
	case err != nil:
		return wrapErr(err, "put DEK %x", d.ID)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("store/postgres: put DEK %x: %s does not exist: %w", d.ID, keyName(d.Tenant, d.Kind, d.Epoch), byok.ErrNotFound)
	}
	return nil
}

// DEK implements [byok.Store].
func (db *DB) DEK(ctx context.Context, id byok.DEKID) (byok.DEKRecord, error) {
	d, err := scanDEK(db.pool.QueryRow(ctx, `SELECT `+dekColumns+` FROM deks WHERE id = $1`, id[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("store/postgres: DEK %x does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return d, wrapErr(err, "read DEK %x", id)
	}
	return d, nil
}

// ListDEKs implements [store.Store]. It walks the tenant's DEKs in id order
// from the cursor and skips those under other tenant keys (kind and epoch
// are in no index, so that rewraps stay heap-only updates).
func (db *DB) ListDEKs(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32, after byok.DEKID, limit int) ([]byok.DEKRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+dekColumns+` FROM deks
		WHERE tenant = $1 AND kind = $2 AND epoch = $3 AND id > $4 ORDER BY tenant, id LIMIT $5`,
		tenant, int16(kind), int64(epoch), after[:], limit)
	ds, err := collect(rows, scanDEK)
	if err != nil {
		return nil, wrapErr(err, "list DEKs under %s", keyName(tenant, kind, epoch))
	}
	return ds, nil
}

// ListScopeDEKs implements [store.Store].
func (db *DB) ListScopeDEKs(ctx context.Context, tenant, scope string, after byok.DEKID, limit int) ([]byok.DEKRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+dekColumns+` FROM deks
		WHERE tenant = $1 AND scope = $2 AND id > $3 ORDER BY tenant, scope, id LIMIT $4`,
		tenant, scope, after[:], limit)
	ds, err := collect(rows, scanDEK)
	if err != nil {
		return nil, wrapErr(err, "list DEKs of scope %q of tenant %q", scope, tenant)
	}
	return ds, nil
}

// RewrapDEKs implements [store.Store].
func (db *DB) RewrapDEKs(ctx context.Context, recs []byok.DEKRecord) error {
	for _, d := range recs {
		if err := store.CheckRewrap(d); err != nil {
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return db.write(ctx, func(tx pgx.Tx) error { return rewrap(ctx, tx, recs) })
}

// MoveScope implements [store.Store].
func (db *DB) MoveScope(ctx context.Context, s byok.ScopeRecord, rewrapped []byok.DEKRecord) error {
	if err := store.CheckScope(s); err != nil {
		return err
	}
	for _, d := range rewrapped {
		if err := store.CheckRewrap(d); err != nil {
			return err
		}
		if d.Tenant != s.Tenant || d.Scope != s.Scope || d.Kind != s.Kind {
			return &byok.InputError{Arg: "rewrapped DEK", Reason: fmt.Sprintf(
				"%x is a %s DEK of scope %q of tenant %q; moving scope %q of tenant %q to %s takes only %s DEKs of that scope",
				d.ID, d.Kind, d.Scope, d.Tenant, s.Scope, s.Tenant, s.Kind, s.Kind)}
		}
	}
	return db.write(ctx, func(tx pgx.Tx) error {
		if err := upsertScope(ctx, tx, s); err != nil {
			return err
		}
		return rewrap(ctx, tx, rewrapped)
	})
}

// rewrap updates the wrapping of recs in tx with one statement that takes
// the batch as arrays, pipelined with the check that every tenant key the
// batch names exists (deks has no foreign key): one round trip. The
// redundant "d.id = ANY($1)" lets the planner find the batch's rows
// through the primary key instead of hashing the whole table. UPDATE … FROM
// changes a row at most once, so a DEK named twice is sent once, with its
// last record.
func rewrap(ctx context.Context, tx pgx.Tx, recs []byok.DEKRecord) error {
	if len(recs) == 0 {
		return nil
	}
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

	b := &pgx.Batch{}
	b.Queue(`SELECT u.tenant, u.kind, u.epoch FROM unnest($1::text[], $2::smallint[], $3::bigint[]) AS u (tenant, kind, epoch)
		WHERE NOT EXISTS (SELECT FROM tenant_keys k WHERE k.tenant = u.tenant AND k.kind = u.kind AND k.epoch = u.epoch)
		LIMIT 1`, refTenants, refKinds, refEpochs)
	b.Queue(`UPDATE deks d SET kind = u.kind, epoch = u.epoch, wrapped = u.wrapped
		FROM unnest($1::bytea[], $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::bytea[])
			AS u (id, tenant, scope, kind, epoch, wrapped)
		WHERE d.id = ANY($1) AND d.id = u.id AND d.tenant = u.tenant AND d.scope = u.scope`,
		ids, tenants, scopes, kinds, epochs, wrapped)
	br := tx.SendBatch(ctx, b)
	var missing keyRef
	var kind int16
	var epoch int64
	err := br.QueryRow().Scan(&missing.tenant, &kind, &epoch)
	if err == nil {
		br.Close()
		return fmt.Errorf("store/postgres: rewrap DEKs: %s does not exist: %w",
			keyName(missing.tenant, byok.KeyKind(kind), uint32(epoch)), byok.ErrNotFound)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		br.Close()
		return wrapErr(err, "rewrap %d DEKs", n)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wrapErr(err, "rewrap %d DEKs", n)
	}
	if int(tag.RowsAffected()) == n {
		return nil
	}

	var id []byte
	var tenant, scope string
	err = tx.QueryRow(ctx, `SELECT u.id, u.tenant, u.scope FROM unnest($1::bytea[], $2::text[], $3::text[]) AS u (id, tenant, scope)
		WHERE NOT EXISTS (SELECT FROM deks d WHERE d.id = u.id AND d.tenant = u.tenant AND d.scope = u.scope)
		LIMIT 1`, ids, tenants, scopes).Scan(&id, &tenant, &scope)
	if err != nil {
		return wrapErr(err, "rewrap %d DEKs: %d of them do not exist; finding which", n, n-int(tag.RowsAffected()))
	}
	return fmt.Errorf("store/postgres: rewrap DEK %x: no DEK with that id in scope %q of tenant %q: %w", id, scope, tenant, byok.ErrNotFound)
}

// ReplaceShare implements [store.Store].
func (db *DB) ReplaceShare(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32, oldKeyID string, customer kms.Wrapped) error {
	return db.replaceShare(ctx, "customer", tenant, kind, epoch, oldKeyID, customer)
}

// ReplacePlatformShare implements [store.Store].
func (db *DB) ReplacePlatformShare(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32, oldKeyID string, platform kms.Wrapped) error {
	return db.replaceShare(ctx, "platform", tenant, kind, epoch, oldKeyID, platform)
}

// replaceShare compares and swaps the share named by which, "customer" or
// "platform" (the prefix of its columns).
func (db *DB) replaceShare(ctx context.Context, which, tenant string, kind byok.KeyKind, epoch uint32, oldKeyID string, w kms.Wrapped) error {
	if err := store.CheckKeyRef(tenant, kind, epoch); err != nil {
		return err
	}
	name := keyName(tenant, kind, epoch)
	// One statement: the update, and the key id stored before it, read
	// from the same snapshot; no row means no such tenant key.
	var stored string
	var swapped bool
	err := db.pool.QueryRow(ctx, `WITH old AS (
			SELECT `+which+`_key_id AS key_id FROM tenant_keys WHERE tenant = $4 AND kind = $5 AND epoch = $6
		), upd AS (
			UPDATE tenant_keys SET `+which+`_key_id = $1, `+which+`_alg = $2, `+which+`_ct = $3
			WHERE tenant = $4 AND kind = $5 AND epoch = $6 AND `+which+`_key_id = $7
			RETURNING 1
		)
		SELECT old.key_id, EXISTS (SELECT FROM upd) FROM old`,
		w.KeyID, w.Algorithm, w.Ciphertext, tenant, int16(kind), int64(epoch), oldKeyID).Scan(&stored, &swapped)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("store/postgres: replace %s share: %s does not exist: %w", which, name, byok.ErrNotFound)
	case err != nil:
		return wrapErr(err, "replace %s share of %s", which, name)
	case !swapped:
		return fmt.Errorf("store/postgres: replace %s share of %s: it is wrapped under %q, not %q; re-read the key and retry: %w",
			which, name, stored, oldKeyID, store.ErrConflict)
	}
	return nil
}

// ShareInventory implements [store.Store].
func (db *DB) ShareInventory(ctx context.Context) ([]store.ShareCount, error) {
	rows, _ := db.pool.Query(ctx, `SELECT key_id, count(*) FROM (
			SELECT customer_key_id AS key_id FROM tenant_keys
			UNION ALL
			SELECT platform_key_id FROM tenant_keys
		) s GROUP BY key_id ORDER BY key_id`)
	cs, err := collect(rows, scanShareCount)
	if err != nil {
		return nil, wrapErr(err, "share inventory")
	}
	return cs, nil
}

// TenantShareInventory implements [store.Store]. Tenants are never
// deleted, so the existence check and the count need no common snapshot.
func (db *DB) TenantShareInventory(ctx context.Context, tenant string) ([]store.ShareCount, error) {
	var exists bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM tenants WHERE id = $1)`, tenant).Scan(&exists); err != nil {
		return nil, wrapErr(err, "share inventory of tenant %q", tenant)
	}
	if !exists {
		return nil, fmt.Errorf("store/postgres: share inventory: tenant %q does not exist: %w", tenant, byok.ErrNotFound)
	}
	rows, _ := db.pool.Query(ctx, `SELECT key_id, count(*) FROM (
			SELECT customer_key_id AS key_id FROM tenant_keys WHERE tenant = $1
			UNION ALL
			SELECT platform_key_id FROM tenant_keys WHERE tenant = $1
		) s GROUP BY key_id ORDER BY key_id`, tenant)
	cs, err := collect(rows, scanShareCount)
	if err != nil {
		return nil, wrapErr(err, "share inventory of tenant %q", tenant)
	}
	return cs, nil
}

// collect scans every row of rows with scan and closes rows. A query
// error surfaces here, from rows.Err.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	list := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return list, rows.Err()
}

func scanTenant(r pgx.Row) (byok.TenantRecord, error) {
	var t byok.TenantRecord
	var policy int16
	var created *int64
	err := r.Scan(&t.ID, &policy, &created)
	t.Policy, t.Created = byok.Policy(policy), fromNanos(created)
	return t, err
}

func scanTenantKey(r pgx.Row) (byok.TenantKeyRecord, error) {
	var k byok.TenantKeyRecord
	var kind int16
	var epoch int64
	var created *int64
	err := r.Scan(&k.Tenant, &kind, &epoch,
		&k.CustomerShare.KeyID, &k.CustomerShare.Algorithm, &k.CustomerShare.Ciphertext,
		&k.PlatformShare.KeyID, &k.PlatformShare.Algorithm, &k.PlatformShare.Ciphertext,
		&created)
	k.Kind, k.Epoch, k.Created = byok.KeyKind(kind), uint32(epoch), fromNanos(created)
	return k, err
}

func scanScope(r pgx.Row) (byok.ScopeRecord, error) {
	var s byok.ScopeRecord
	var kind int16
	err := r.Scan(&s.Tenant, &s.Scope, &kind)
	s.Kind = byok.KeyKind(kind)
	return s, err
}

func scanDEK(r pgx.Row) (byok.DEKRecord, error) {
	var d byok.DEKRecord
	var id []byte
	var kind int16
	var epoch int64
	var created *int64
	if err := r.Scan(&id, &d.Tenant, &d.Scope, &kind, &epoch, &d.Wrapped, &created); err != nil {
		return d, err
	}
	if len(id) != len(d.ID) {
		return d, fmt.Errorf("stored DEK id is %d bytes, not %d: the database is corrupt", len(id), len(d.ID))
	}
	copy(d.ID[:], id)
	d.Kind, d.Epoch, d.Created = byok.KeyKind(kind), uint32(epoch), fromNanos(created)
	return d, nil
}

func scanShareCount(r pgx.Row) (store.ShareCount, error) {
	var c store.ShareCount
	var n int64
	err := r.Scan(&c.KeyID, &n)
	c.Shares = int(n)
	return c, err
}

// nanos returns t as Unix nanoseconds, or nil (NULL) for the zero time.
// Callers have checked that t is in range ([store.CheckTenant] and
// friends).
func nanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// keyName names a tenant key in errors.
func keyName(tenant string, kind byok.KeyKind, epoch uint32) string {
	return fmt.Sprintf("%s key epoch %d of tenant %q", kind, epoch, tenant)
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

// sqlState returns the SQLSTATE of err, or "" if err is not an error of
// the server.
func sqlState(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// wrapErr wraps a failure of the database in an error that says what was
// being done (format and args). Text PostgreSQL cannot hold becomes an
// [byok.InputError].
func wrapErr(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if s := sqlState(err); s == characterNotInRepertoire || s == untranslatableCharacter {
		return fmt.Errorf("store/postgres: %s: %w", what, &byok.InputError{Arg: "text argument",
			Reason: "is not valid UTF-8 or holds a NUL byte, which PostgreSQL text cannot store"})
	}
	return fmt.Errorf("store/postgres: %s: %w", what, err)
}
