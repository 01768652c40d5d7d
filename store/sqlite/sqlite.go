// Package sqlite is the embedded [store.Store]: one SQLite database file,
// through the pure-Go driver modernc.org/sqlite (no cgo).
//
// # Connections
//
// The database runs in WAL mode. Every write goes through a single
// connection, so writers of one process queue in Go (honouring their ctx)
// instead of spinning on SQLite's lock, and no write of this process ever
// sees SQLITE_BUSY. Reads go through a pool of read-only connections, which
// WAL lets run alongside the writer. Another process writing the same file
// is waited for up to a busy timeout of 10 s. Write transactions begin
// IMMEDIATE, so a transaction that reads before it writes cannot fail to
// upgrade its lock.
//
// # Crash safety
//
// The database runs with synchronous=FULL: the WAL is fsynced at every
// commit, so a write that returned nil survives a power loss or an OS
// crash, not only a crash of the process (which NORMAL already survives).
// byok needs that: a DEK whose row was lost after data was encrypted under
// it, or a customer share rewrapped under a new key version and then lost
// after the old version was retired, would make tenant data unreadable for
// good. The cost is one fsync per write transaction, and byok writes rarely
// (a DEK per process, scope and period; rewraps in batches).
//
// # Schema
//
// The schema is created and upgraded by the embedded, numbered migrations
// migrations/NNNN_name.sql, applied in order when the database is opened,
// each in its own transaction and recorded in table schema_migrations.
// Opening a database whose schema is newer than this code fails rather
// than guess. Times are stored as integer Unix nanoseconds (NULL for the
// zero time) and read back in UTC; wrapped bytes as BLOBs, with nil (NULL)
// kept apart from empty.
//
// DEKs are clustered by (tenant, id), and kind and epoch are in no index,
// so that a rewrap, the bulk write of a re-key, rewrites one row and
// touches no index. ListDEKs therefore walks the tenant's DEKs in id order
// from its cursor and skips those under other tenant keys: a page costs
// the DEKs between the cursor and its last match, and a re-key that pages
// with the cursor walks the tenant's DEKs once in all.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
)

// DB is a [store.Store] on one SQLite database file. It is safe for
// concurrent use.
type DB struct {
	w *sql.DB // one connection, every write
	r *sql.DB // read-only connections
}

var _ store.Store = (*DB)(nil)

// busyTimeout is how long a statement waits for another process's lock.
const busyTimeout = 10 * time.Second

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Open opens the database file at path, creating it if it does not exist,
// and brings its schema up to date. It fails if the schema is newer than
// this code knows. A new file is created with mode 0600, as the platform
// key file is: it holds wrapped keys and token digests. SQLite gives the
// -wal and -shm files the database file's mode.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("store/sqlite: database path %q is invalid: give a file path without '?'", path)
	}
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("store/sqlite: open %s: %w", path, err)
	}
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	if err := migrate(ctx, w, migrationFiles); err != nil {
		w.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	return &DB{w: w, r: r}, nil
}

// createPrivate creates an empty file at path with mode 0600 if nothing is
// there yet, so that SQLite opens it rather than creating it with the
// umask's mode (0644 usually). SQLite treats an empty file as a new
// database.
func createPrivate(path string) error {
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// dsn returns the driver's data source name for the writer or a reader.
func dsn(path string, reader bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	if reader {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

// Close closes the database. Calls after Close fail.
func (db *DB) Close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}

// migrate applies the migrations of fsys that db lacks, one transaction
// each.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := store.LoadMigrations(fsys)
	if err != nil {
		return fmt.Errorf("embedded migrations: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY,
		name    TEXT    NOT NULL,
		applied INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for {
		done, err := migrateOne(ctx, db, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration db lacks, if any, and reports
// whether db is up to date.
func migrateOne(ctx context.Context, db *sql.DB, ms []store.Migration) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	latest := len(ms)
	if current > latest {
		return false, fmt.Errorf("database schema is at version %d, newer than version %d, the latest this build of byok knows: "+
			"run the byok release that last upgraded this database, or a newer one", current, latest)
	}
	if current == latest {
		return true, nil
	}
	m := ms[current]
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit migration %s: %w", m.Name, err)
	}
	return false, nil
}

// write runs f in one write transaction: committed if f returns nil,
// rolled back otherwise.
func (db *DB) write(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store/sqlite: begin transaction: %w", err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store/sqlite: commit: %w", err)
	}
	return nil
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
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, policy, created) VALUES (?, ?, ?)`,
			t.ID, int64(t.Policy), nanos(t.Created))
		if isDuplicate(err) {
			return fmt.Errorf("store/sqlite: tenant %q already exists: %w", t.ID, byok.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("store/sqlite: create tenant %q: %w", t.ID, err)
		}
		for _, k := range keys {
			if err := insertTenantKey(ctx, tx, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Tenant implements [byok.Store].
func (db *DB) Tenant(ctx context.Context, id string) (byok.TenantRecord, error) {
	t, err := scanTenant(db.r.QueryRowContext(ctx, `SELECT id, policy, created FROM tenants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("store/sqlite: tenant %q does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("store/sqlite: read tenant %q: %w", id, err)
	}
	return t, nil
}

// SetTenantPolicy implements [byok.Store].
func (db *DB) SetTenantPolicy(ctx context.Context, id string, p byok.Policy) error {
	if err := store.CheckPolicy(p); err != nil {
		return err
	}
	res, err := db.w.ExecContext(ctx, `UPDATE tenants SET policy = ? WHERE id = ?`, int64(p), id)
	if err != nil {
		return fmt.Errorf("store/sqlite: set policy of tenant %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("store/sqlite: tenant %q does not exist: %w", id, byok.ErrNotFound)
	}
	return nil
}

// ListTenants implements [store.Store].
func (db *DB) ListTenants(ctx context.Context, after string, limit int) ([]byok.TenantRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, policy, created FROM tenants WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list tenants: %w", err)
	}
	ts, err := collect(rows, scanTenant)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list tenants: %w", err)
	}
	return ts, nil
}

const tenantKeyColumns = `tenant, kind, epoch,
	customer_key_id, customer_alg, customer_ct, customer_ct IS NULL,
	platform_key_id, platform_alg, platform_ct, platform_ct IS NULL, created`

// TenantKey implements [byok.Store].
func (db *DB) TenantKey(ctx context.Context, tenant string, kind byok.KeyKind) (byok.TenantKeyRecord, error) {
	k, err := scanTenantKey(db.r.QueryRowContext(ctx, `SELECT `+tenantKeyColumns+` FROM tenant_keys
		WHERE tenant = ? AND kind = ? ORDER BY epoch DESC LIMIT 1`, tenant, int64(kind)))
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("store/sqlite: tenant %q has no %s key: %w", tenant, kind, byok.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("store/sqlite: read %s key of tenant %q: %w", kind, tenant, err)
	}
	return k, nil
}

// TenantKeyEpoch implements [byok.Store].
func (db *DB) TenantKeyEpoch(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32) (byok.TenantKeyRecord, error) {
	k, err := scanTenantKey(db.r.QueryRowContext(ctx, `SELECT `+tenantKeyColumns+` FROM tenant_keys
		WHERE tenant = ? AND kind = ? AND epoch = ?`, tenant, int64(kind), int64(epoch)))
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("store/sqlite: %s: %w", keyName(tenant, kind, epoch), byok.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("store/sqlite: read %s: %w", keyName(tenant, kind, epoch), err)
	}
	return k, nil
}

// TenantKeys implements [store.Store].
func (db *DB) TenantKeys(ctx context.Context, tenant string) ([]byok.TenantKeyRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+tenantKeyColumns+` FROM tenant_keys
		WHERE tenant = ? ORDER BY kind, epoch`, tenant)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list tenant keys of tenant %q: %w", tenant, err)
	}
	ks, err := collect(rows, scanTenantKey)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list tenant keys of tenant %q: %w", tenant, err)
	}
	return ks, nil
}

// PutTenantKey implements [byok.Store].
func (db *DB) PutTenantKey(ctx context.Context, k byok.TenantKeyRecord) error {
	if err := store.CheckTenantKey(k); err != nil {
		return err
	}
	return insertTenantKey(ctx, db.w, k)
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertTenantKey(ctx context.Context, e execer, k byok.TenantKeyRecord) error {
	_, err := e.ExecContext(ctx, `INSERT INTO tenant_keys (tenant, kind, epoch,
		customer_key_id, customer_alg, customer_ct, platform_key_id, platform_alg, platform_ct, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.Tenant, int64(k.Kind), int64(k.Epoch),
		k.CustomerShare.KeyID, k.CustomerShare.Algorithm, k.CustomerShare.Ciphertext,
		k.PlatformShare.KeyID, k.PlatformShare.Algorithm, k.PlatformShare.Ciphertext,
		nanos(k.Created))
	switch {
	case err == nil:
		return nil
	case isDuplicate(err):
		return fmt.Errorf("store/sqlite: %s already exists: %w", keyName(k.Tenant, k.Kind, k.Epoch), byok.ErrExists)
	case isMissingParent(err):
		return fmt.Errorf("store/sqlite: put %s: tenant %q does not exist: %w", keyName(k.Tenant, k.Kind, k.Epoch), k.Tenant, byok.ErrNotFound)
	}
	return fmt.Errorf("store/sqlite: put %s: %w", keyName(k.Tenant, k.Kind, k.Epoch), err)
}

// Scope implements [byok.Store].
func (db *DB) Scope(ctx context.Context, tenant, scope string) (byok.ScopeRecord, error) {
	s, err := scanScope(db.r.QueryRowContext(ctx, `SELECT tenant, scope, kind FROM scopes WHERE tenant = ? AND scope = ?`, tenant, scope))
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("store/sqlite: scope %q of tenant %q was never set: %w", scope, tenant, byok.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("store/sqlite: read scope %q of tenant %q: %w", scope, tenant, err)
	}
	return s, nil
}

// PutScope implements [byok.Store].
func (db *DB) PutScope(ctx context.Context, s byok.ScopeRecord) error {
	if err := store.CheckScope(s); err != nil {
		return err
	}
	return upsertScope(ctx, db.w, s)
}

func upsertScope(ctx context.Context, e execer, s byok.ScopeRecord) error {
	_, err := e.ExecContext(ctx, `INSERT INTO scopes (tenant, scope, kind) VALUES (?, ?, ?)
		ON CONFLICT (tenant, scope) DO UPDATE SET kind = excluded.kind`, s.Tenant, s.Scope, int64(s.Kind))
	if isMissingParent(err) {
		return fmt.Errorf("store/sqlite: put scope %q: tenant %q does not exist: %w", s.Scope, s.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: put scope %q of tenant %q: %w", s.Scope, s.Tenant, err)
	}
	return nil
}

// ListScopes implements [store.Store].
func (db *DB) ListScopes(ctx context.Context, tenant, after string, limit int) ([]byok.ScopeRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT tenant, scope, kind FROM scopes
		WHERE tenant = ? AND scope > ? ORDER BY scope LIMIT ?`, tenant, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list scopes of tenant %q: %w", tenant, err)
	}
	ss, err := collect(rows, scanScope)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list scopes of tenant %q: %w", tenant, err)
	}
	return ss, nil
}

const dekColumns = `id, tenant, scope, kind, epoch, wrapped, wrapped IS NULL, created`

// PutDEK implements [byok.Store].
func (db *DB) PutDEK(ctx context.Context, d byok.DEKRecord) error {
	if err := store.CheckDEK(d); err != nil {
		return err
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO deks (id, tenant, scope, kind, epoch, wrapped, created)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		d.ID[:], d.Tenant, d.Scope, int64(d.Kind), int64(d.Epoch), d.Wrapped, nanos(d.Created))
	switch {
	case err == nil:
		return nil
	case isDuplicate(err):
		return fmt.Errorf("store/sqlite: DEK %x already exists: %w", d.ID, byok.ErrExists)
	case isMissingParent(err):
		return fmt.Errorf("store/sqlite: put DEK %x: %s does not exist: %w", d.ID, keyName(d.Tenant, d.Kind, d.Epoch), byok.ErrNotFound)
	}
	return fmt.Errorf("store/sqlite: put DEK %x: %w", d.ID, err)
}

// DEK implements [byok.Store].
func (db *DB) DEK(ctx context.Context, id byok.DEKID) (byok.DEKRecord, error) {
	d, err := scanDEK(db.r.QueryRowContext(ctx, `SELECT `+dekColumns+` FROM deks WHERE id = ?`, id[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("store/sqlite: DEK %x does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("store/sqlite: read DEK %x: %w", id, err)
	}
	return d, nil
}

// ListDEKs implements [store.Store].
func (db *DB) ListDEKs(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32, after byok.DEKID, limit int) ([]byok.DEKRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store/sqlite: list DEKs under %s: %w", keyName(tenant, kind, epoch), err)
	}
	// A page of a re-key job takes milliseconds: it runs under a context
	// without cancellation, for which the driver watches no row.
	rows, err := db.r.QueryContext(context.WithoutCancel(ctx), `SELECT `+dekColumns+` FROM deks
		WHERE tenant = ? AND kind = ? AND epoch = ? AND id > ? ORDER BY id LIMIT ?`,
		tenant, int64(kind), int64(epoch), after[:], limit)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list DEKs under %s: %w", keyName(tenant, kind, epoch), err)
	}
	ds, err := collectN(rows, scanDEK, min(limit, 10_000))
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list DEKs under %s: %w", keyName(tenant, kind, epoch), err)
	}
	return ds, nil
}

// ListScopeDEKs implements [store.Store].
func (db *DB) ListScopeDEKs(ctx context.Context, tenant, scope string, after byok.DEKID, limit int) ([]byok.DEKRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+dekColumns+` FROM deks
		WHERE tenant = ? AND scope = ? AND id > ? ORDER BY id LIMIT ?`,
		tenant, scope, after[:], limit)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list DEKs of scope %q of tenant %q: %w", scope, tenant, err)
	}
	ds, err := collect(rows, scanDEK)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list DEKs of scope %q of tenant %q: %w", scope, tenant, err)
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
	return db.write(ctx, func(tx *sql.Tx) error { return rewrap(ctx, tx, recs) })
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
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := upsertScope(ctx, tx, s); err != nil {
			return err
		}
		return rewrap(ctx, tx, rewrapped)
	})
}

// rewrap updates the wrapping of recs in tx with one prepared statement.
// NOT INDEXED makes SQLite find each row by the primary key (tenant, id)
// instead of through index deks_by_id and then the primary key: a third
// fewer B-tree seeks on the hot path of a re-key.
func rewrap(ctx context.Context, tx *sql.Tx, recs []byok.DEKRecord) error {
	if len(recs) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `UPDATE deks NOT INDEXED SET kind = ?, epoch = ?, wrapped = ?
		WHERE id = ? AND tenant = ? AND scope = ?`)
	if err != nil {
		return fmt.Errorf("store/sqlite: rewrap DEKs: %w", err)
	}
	defer stmt.Close()
	// One row's update takes microseconds: ctx is checked between rows,
	// and each row runs under a context without cancellation, for which
	// the driver starts no watcher goroutine (a tenth of the CPU of a re-key in its profile).
	rowCtx := context.WithoutCancel(ctx)
	for i := range recs {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("store/sqlite: rewrap DEKs: %w", err)
			}
		}
		d := &recs[i]
		res, err := stmt.ExecContext(rowCtx, int64(d.Kind), int64(d.Epoch), d.Wrapped, d.ID[:], d.Tenant, d.Scope)
		if isMissingParent(err) {
			return fmt.Errorf("store/sqlite: rewrap DEK %x: %s does not exist: %w", d.ID, keyName(d.Tenant, d.Kind, d.Epoch), byok.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store/sqlite: rewrap DEK %x: %w", d.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("store/sqlite: rewrap DEK %x: no DEK with that id in scope %q of tenant %q: %w", d.ID, d.Scope, d.Tenant, byok.ErrNotFound)
		}
	}
	return nil
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
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tenant_keys SET `+which+`_key_id = ?, `+which+`_alg = ?, `+which+`_ct = ?
			WHERE tenant = ? AND kind = ? AND epoch = ? AND `+which+`_key_id = ?`,
			w.KeyID, w.Algorithm, w.Ciphertext, tenant, int64(kind), int64(epoch), oldKeyID)
		if err != nil {
			return fmt.Errorf("store/sqlite: replace %s share of %s: %w", which, name, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
		var stored string
		err = tx.QueryRowContext(ctx, `SELECT `+which+`_key_id FROM tenant_keys WHERE tenant = ? AND kind = ? AND epoch = ?`,
			tenant, int64(kind), int64(epoch)).Scan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store/sqlite: replace %s share: %s does not exist: %w", which, name, byok.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store/sqlite: replace %s share of %s: %w", which, name, err)
		}
		return fmt.Errorf("store/sqlite: replace %s share of %s: it is wrapped under %q, not %q; re-read the key and retry: %w",
			which, name, stored, oldKeyID, store.ErrConflict)
	})
}

// ShareInventory implements [store.Store].
func (db *DB) ShareInventory(ctx context.Context) ([]store.ShareCount, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT key_id, count(*) FROM (
			SELECT customer_key_id AS key_id FROM tenant_keys
			UNION ALL
			SELECT platform_key_id FROM tenant_keys
		) GROUP BY key_id ORDER BY key_id`)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: share inventory: %w", err)
	}
	cs, err := collect(rows, scanShareCount)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: share inventory: %w", err)
	}
	return cs, nil
}

// TenantShareInventory implements [store.Store].
func (db *DB) TenantShareInventory(ctx context.Context, tenant string) ([]store.ShareCount, error) {
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: share inventory of tenant %q: %w", tenant, err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE id = ?`, tenant).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store/sqlite: share inventory: tenant %q does not exist: %w", tenant, byok.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: share inventory of tenant %q: %w", tenant, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT key_id, count(*) FROM (
			SELECT customer_key_id AS key_id FROM tenant_keys WHERE tenant = ?1
			UNION ALL
			SELECT platform_key_id FROM tenant_keys WHERE tenant = ?1
		) GROUP BY key_id ORDER BY key_id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: share inventory of tenant %q: %w", tenant, err)
	}
	cs, err := collect(rows, scanShareCount)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: share inventory of tenant %q: %w", tenant, err)
	}
	return cs, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect scans every row of rows with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	return collectN(rows, scan, 0)
}

// collectN is collect into a list with room for n.
func collectN[T any](rows *sql.Rows, scan func(scanner) (T, error), n int) ([]T, error) {
	defer rows.Close()
	list := make([]T, 0, n)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return list, rows.Err()
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

func scanShareCount(s scanner) (store.ShareCount, error) {
	var c store.ShareCount
	err := s.Scan(&c.KeyID, &c.Shares)
	return c, err
}

// blob restores the empty slice that the driver reads back as nil: b is
// nil only if the column was NULL.
func blob(b []byte, null bool) []byte {
	if b == nil && !null {
		return []byte{}
	}
	return b
}

// nanos returns t as Unix nanoseconds, or NULL for the zero time. Callers
// have checked that t is in range ([store.CheckTenant] and friends).
func nanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// keyName names a tenant key in errors.
func keyName(tenant string, kind byok.KeyKind, epoch uint32) string {
	return fmt.Sprintf("%s key epoch %d of tenant %q", kind, epoch, tenant)
}

func code(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isDuplicate reports whether err is a primary key or unique violation.
func isDuplicate(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// isMissingParent reports whether err is a foreign key violation: the row
// a new row refers to does not exist.
func isMissingParent(err error) bool {
	return code(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
