// Package postgres is the [store.Store] for several replicas of byok that
// share one PostgreSQL database, through github.com/jackc/pgx/v5 and its
// database/sql driver. Its [DB] also keeps, as [sqlstore.DB] does, the
// audit log, the lifecycle records, jobs and health timeline, the HTTP
// API's tokens and the console's sessions; all of them pass the
// conformance suites in storetest, as the SQLite store does.
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
// The queries are those of store/sqlstore, shared with the SQLite store,
// run through pgx's database/sql driver on the pool that [Open] creates;
// this package supplies the PostgreSQL dialect. Every method that writes
// more than one row runs in one transaction, at PostgreSQL's default
// isolation (read committed). Rewraps send a whole batch as arrays in one
// statement that updates the DEKs and checks their tenant keys: one round
// trip per batch. Appends to one audit chain take turns on an advisory
// lock, so replicas never interleave them.
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
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openbyok/byok/store"
	"github.com/openbyok/byok/store/sqlstore"
)

// DB is a [store.Store] on a PostgreSQL database, through a pool of
// connections, and the other stores of [sqlstore.DB]. It is safe for
// concurrent use.
type DB struct {
	*sqlstore.DB
	pool   *pgxpool.Pool
	closed chan struct{} // closed by Close; stops Listen
}

var _ store.Store = (*DB)(nil)

// auditLock is the first key of the advisory lock that serialises appends
// to one audit chain ("audt" in ASCII); the second is the hash of the
// chain's tenant id.
const auditLock = 0x61756474

// dialect is PostgreSQL's [sqlstore.Dialect].
var dialect = sqlstore.Dialect{
	Name:           "postgres",
	Classify:       classify,
	LockAuditChain: fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d, hashtext($1))`, auditLock),
	Rewrap:         rewrap,
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the advisory lock that serialises
// migrations: "byok" in ASCII.
const migrationLock = 0x62796f6b

// Open connects to the database that dsn names (a URL
// postgres://user:password@host:port/dbname?… or libpq keyword/value
// pairs, as pgx parses them, pool settings such as pool_max_conns
// included) and brings its schema up to date. It fails if the schema is
// newer than this code knows. Errors never hold the password. The shared
// SQL runs through pgx's database/sql driver on the pool, which lends each
// call a connection and keeps none idle outside the pool.
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
	sdb := stdlib.OpenDBFromPool(pool)
	return &DB{DB: sqlstore.New(sdb, sdb, sdb, dialect), pool: pool, closed: make(chan struct{})}, nil
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
	err := db.DB.Close()
	db.pool.Close()
	return err
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
