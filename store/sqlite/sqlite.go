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
// A re-key reads its pages through two more read-only connections, so
// that jobs never hold the readers that DEK lookups need; a walker closes
// after a minute unused. No connection maps the database file into memory
// (mmap_size): in WAL mode SQLite unmaps the file at the start of every
// read transaction that follows a commit, so a walk reading a page of DEKs
// after each batch took a page fault per page, which cost a re-key about
// a sixth of its rate against reading the pages with pread. The writer
// runs the batches of a re-key or a scope move job with foreign keys off,
// checking the tenant keys and tenants they name itself: a rewrap is then
// one pass over the batch's range of rows, and with its temporary files in
// memory (temp_store=MEMORY): the statement journal of a rewrap's
// savepoint, which holds the pages a batch changed, is rollback data of
// the open transaction only, never needed after a crash, and on disk it
// cost a write system call per page.
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
// The one exception is the batches of a job (a re-key, a scope move),
// written with synchronous=NORMAL: in WAL mode such a commit is in the
// operating system's cache when it returns and survives a crash of the
// process, and the next FULL commit, or a checkpoint, syncs it with every
// frame before it. A power loss may roll back the job's last batches, with
// the cursor they carry, and the job redoes them; the job's end and
// anything that depends on its batches (the tenant's state, a version
// safe to retire) are written FULL, or read only once the job is done.
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
//
// # Shared SQL
//
// The queries are those of store/sqlstore, shared with the PostgreSQL
// store; this package opens the database, migrates it and supplies the
// SQLite dialect: error codes, the rewrap of a batch, and statements that
// run without a cancellable context where the driver would start a
// goroutine per statement to watch it.
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

	"github.com/openbyok/byok/store"
	"github.com/openbyok/byok/store/sqlstore"
)

// DB is a [store.Store] on one SQLite database file, and the other stores
// of [sqlstore.DB]. It is safe for concurrent use.
type DB struct {
	*sqlstore.DB
	w    *sql.DB // one connection, every write
	r    *sql.DB // read-only connections
	walk *sql.DB // read-only connections that map the file
	ck   *checkpointer
}

var _ store.Store = (*DB)(nil)

// dialect is SQLite's [sqlstore.Dialect].
var dialect = sqlstore.Dialect{
	Name:        "sqlite",
	Classify:    classify,
	Rewrap:      rewrap,
	Unchecked:   unchecked,
	DetachPages: true,
}

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
	w := sql.OpenDB(connector(dsn(path, writer)))
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	if err := migrate(ctx, w, migrationFiles); err != nil {
		w.Close()
		return nil, fmt.Errorf("store/sqlite: open %s: %w", path, err)
	}
	r := sql.OpenDB(connector(dsn(path, reader)))
	readers := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	walk := sql.OpenDB(connector(dsn(path, walker)))
	walk.SetMaxOpenConns(2)
	walk.SetMaxIdleConns(2)
	walk.SetConnMaxIdleTime(walkIdle)
	ckdb := sql.OpenDB(connector(dsn(path, checkpointing)))
	ckdb.SetMaxOpenConns(1)
	ck := newCheckpointer(ckdb)
	d := dialect
	bulk := d.Unchecked
	d.Unchecked = func(ctx context.Context, w *sql.DB, durable bool) (*sql.Conn, func(), error) {
		c, release, err := bulk(ctx, w, durable)
		if err != nil || durable {
			return c, release, err
		}
		return c, func() { release(); ck.signal() }, nil
	}
	return &DB{DB: sqlstore.New(w, r, walk, d), w: w, r: r, walk: walk, ck: ck}, nil
}

// Close stops the checkpointer and closes the connections. Calls after
// Close fail.
func (db *DB) Close() error {
	return errors.Join(db.ck.close(), db.DB.Close())
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

// role is what a connection is for.
type role int

const (
	writer        role = iota // every write
	reader                    // reads
	walker                    // a re-key's pages
	checkpointing             // the checkpoints after a job's batches
)

const (
	// walkIdle is how long a walker connection stays open unused: its
	// page cache counts in the process's resident memory until then.
	walkIdle = time.Minute
)

// dsn returns the driver's data source name for a connection of role.
func dsn(path string, role role) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	switch role {
	case writer:
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
	case reader, walker:
		q.Add("_pragma", "query_only(1)")
	}
	return path + "?" + q.Encode()
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
