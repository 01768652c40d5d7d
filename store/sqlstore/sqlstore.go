// Package sqlstore is the SQL of byok's relational stores, written once on
// database/sql and shared by store/sqlite and store/postgres. Its [DB]
// implements [store.Store], [store.SessionStore], [record.Store],
// [audit.Store] and [token.Store]; an engine package opens the database,
// applies its migrations and wraps the handles in a DB with its [Dialect].
//
// # What the engines share
//
// The schemas of both engines have the same tables, columns and keys, and
// every statement here is valid on both:
//
//   - Placeholders are numbered, $1, $2, …, and may repeat. PostgreSQL
//     takes them natively; SQLite reads $NNN as a named parameter, which
//     the driver modernc.org/sqlite binds to the NNNth argument.
//   - Times are integer Unix nanoseconds, NULL for the zero time, read back
//     in UTC. Wrapped bytes are BLOB or bytea, with NULL (nil) kept apart
//     from empty: a query selects "col IS NULL" next to each nullable blob.
//   - IN lists are spelled out, one placeholder per value; upserts are
//     INSERT … ON CONFLICT … DO UPDATE, which both engines take.
//
// What differs is in the [Dialect]: how errors are classified, how an
// audit chain is locked, how a batch of DEKs is rewrapped, and whether the
// driver is cheaper without a cancellable context.
//
// # Transactions
//
// Every method that writes more than one row runs in one transaction on
// the writer handle; reads go to the reader handle. The engine decides
// what those are: SQLite gives a single writer connection (writers queue
// in Go) and a pool of read-only connections, PostgreSQL one pool for both
// (read committed, the default).
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/lifecycle/record"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store"
)

// ErrorClass is what a [Dialect] makes of an error of its driver.
type ErrorClass int

// The classes of driver errors the store branches on.
const (
	// OtherError is any error the store does not branch on.
	OtherError ErrorClass = iota
	// Duplicate is a primary key or unique violation: [byok.ErrExists].
	Duplicate
	// MissingParent is a foreign key violation, the row a new row refers
	// to does not exist: [byok.ErrNotFound].
	MissingParent
	// InvalidText is text the engine cannot store (PostgreSQL: not UTF-8,
	// or a NUL byte): [byok.ErrInvalidInput].
	InvalidText
)

// Dialect is what differs between the engines under the shared SQL.
type Dialect struct {
	// Name is the engine's package name; errors start "store/Name: ".
	Name string

	// Classify sorts an error returned by the driver into an
	// [ErrorClass]; it is never called with nil.
	Classify func(err error) ErrorClass

	// LockAuditChain, if not empty, is a statement run first in each
	// append to an audit chain, with the chain's tenant id as $1, that
	// makes appends to one chain take turns until the transaction ends.
	// Leave it empty if the engine already serialises every writer.
	LockAuditChain string

	// Rewrap updates the kind, epoch and wrapping of every DEK of recs in
	// tx, found by id, tenant and scope. It fails, wrapping
	// [byok.ErrNotFound], if a DEK does not exist there or if the tenant
	// key a record names does not exist. recs is not empty and its
	// records have passed [store.CheckRewrap].
	Rewrap func(ctx context.Context, tx *sql.Tx, recs []byok.DEKRecord) error

	// Unchecked, if set, takes w's writer connection, turns the engine's
	// foreign key checks off on it and returns it with release, which
	// turns them on again and gives the connection back (or closes it if
	// it cannot). The batches of a re-key are written on it, where Rewrap
	// checks the tenant keys its records name and the batch checks the
	// tenants of the rows it adds: for an engine whose bulk update takes
	// about twice as long while it enforces foreign keys. Unless durable,
	// its commits need not reach the disk before they return, only before
	// any later durable commit does, and must survive the process being
	// killed: for a job's batches, which carry the job's cursor, so that
	// a power loss rolls back the job's last batches with their cursor
	// and the job redoes them, while the commit that ends the job, a
	// durable one, makes every batch before it durable.
	Unchecked func(ctx context.Context, w *sql.DB, durable bool) (c *sql.Conn, release func(), err error)

	// DetachPages makes the query of a page of DEKs run under a context
	// without cancellation, after checking ctx: for an embedded engine
	// whose driver starts a watcher goroutine for every cancellable
	// statement, and whose statements cannot hang on a network.
	DetachPages bool
}

// DB is the shared store on a writer and a reader handle. It is safe for
// concurrent use.
type DB struct {
	w, r *sql.DB
	walk *sql.DB // a re-key's pages
	d    Dialect
}

var (
	_ store.Store        = (*DB)(nil)
	_ store.SessionStore = (*DB)(nil)
	_ record.Store       = (*DB)(nil)
	_ audit.Store        = (*DB)(nil)
	_ token.Store        = (*DB)(nil)
)

// New returns a DB that writes through w, reads through r (which may be
// w) and reads the pages of a re-key's walk ([DB.ListDEKs]) through walk
// (which may be r), with the dialect d. The database's schema must be up
// to date. The DB owns the handles: [DB.Close] closes them.
func New(w, r, walk *sql.DB, d Dialect) *DB {
	return &DB{w: w, r: r, walk: walk, d: d}
}

// Close closes the writer, reader and walk handles. Calls after Close
// fail.
func (db *DB) Close() error {
	errs := []error{db.w.Close()}
	if db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	if db.walk != db.r && db.walk != db.w {
		errs = append(errs, db.walk.Close())
	}
	return errors.Join(errs...)
}

// write runs f in one write transaction: committed if f returns nil,
// rolled back otherwise.
func (db *DB) write(ctx context.Context, f func(tx *sql.Tx) error) error {
	return db.writeOn(ctx, db.w, f)
}

// bulkWrite is write for a batch of rewraps, on the dialect's unchecked
// connection if it has one, durable or not (see [Dialect.Unchecked]). f
// must check the parents of what it writes, as requireTenant and the
// dialect's Rewrap do.
func (db *DB) bulkWrite(ctx context.Context, durable bool, f func(tx *sql.Tx) error) error {
	if db.d.Unchecked == nil {
		return db.write(ctx, f)
	}
	c, release, err := db.d.Unchecked(ctx, db.w, durable)
	if err != nil {
		return db.wrap(err, "begin transaction")
	}
	defer release()
	return db.writeOn(ctx, c, f)
}

// requireTenant fails, wrapping [byok.ErrNotFound], if tenant does not
// exist: the foreign key check of a row of tenant written by bulkWrite on
// the dialect's unchecked connection (without one, the engine checks).
func (db *DB) requireTenant(ctx context.Context, tx *sql.Tx, tenant, what string) error {
	if db.d.Unchecked == nil {
		return nil
	}
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE id = $1`, tenant).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return db.errorf("%s: tenant %q does not exist: %w", what, tenant, byok.ErrNotFound)
	}
	if err != nil {
		return db.wrap(err, "%s", what)
	}
	return nil
}

// writeOn is write on c, the writer handle or one of its connections.
func (db *DB) writeOn(ctx context.Context, c interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, f func(tx *sql.Tx) error) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return db.wrap(err, "begin transaction")
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return db.wrap(err, "commit")
	}
	return nil
}

// errorf returns an error of this store: "store/NAME: " and the message.
func (db *DB) errorf(format string, args ...any) error {
	return fmt.Errorf("store/%s: %w", db.d.Name, fmt.Errorf(format, args...))
}

// wrap wraps a failure of the database in an error that says what was
// being done (format and args). Text the engine cannot hold becomes an
// [byok.InputError].
func (db *DB) wrap(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if db.class(err) == InvalidText {
		return db.errorf("%s: %w", what, &byok.InputError{Arg: "text argument",
			Reason: "is not valid UTF-8 or holds a NUL byte, which the database's text cannot store"})
	}
	return db.errorf("%s: %w", what, err)
}

// class returns the class of err, [OtherError] for nil.
func (db *DB) class(err error) ErrorClass {
	if err == nil {
		return OtherError
	}
	return db.d.Classify(err)
}

// KeyName names a tenant key in errors.
func KeyName(tenant string, kind byok.KeyKind, epoch uint32) string {
	return fmt.Sprintf("%s key epoch %d of tenant %q", kind, epoch, tenant)
}

// params collects the arguments of a query built piece by piece.
type params []any

// add appends v and returns its placeholder.
func (p *params) add(v any) string {
	*p = append(*p, v)
	return "$" + strconv.Itoa(len(*p))
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect scans every row of rows with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
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

// rawQuery runs q with args, which are driver values, on a walk
// connection straight through its driver, without database/sql's
// conversions and locks per row, and calls row with each row's values,
// which are valid only during the call. Waiting for the connection
// honours ctx; the query itself runs detached from it if the dialect says
// so (DetachPages).
func (db *DB) rawQuery(ctx context.Context, q string, args []any, row func(v []driver.Value) error) error {
	c, err := db.walk.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if db.d.DetachPages {
		ctx = context.WithoutCancel(ctx)
	}
	return c.Raw(func(dc any) error {
		qc, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot run a query", dc)
		}
		named := make([]driver.NamedValue, len(args))
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := qc.QueryContext(ctx, q, named)
		if err != nil {
			return err
		}
		defer rows.Close()
		v := make([]driver.Value, len(rows.Columns()))
		for {
			err := rows.Next(v)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := row(v); err != nil {
				return err
			}
		}
	})
}

// query runs a query on the reader and collects its rows with scan; what
// names the list in errors.
func query[T any](ctx context.Context, db *DB, scan func(scanner) (T, error), what, q string, args ...any) ([]T, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.wrap(err, "%s", what)
	}
	list, err := collect(rows, scan)
	if err != nil {
		return nil, db.wrap(err, "%s", what)
	}
	return list, nil
}

// blob restores the empty slice that a driver may read back as nil: b is
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

// fromNanos is the inverse of nanos.
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}
