package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"sync"

	"modernc.org/sqlite"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/store/sqlstore"
)

// A rewrap is one UPDATE per tenant key a batch rewraps onto, not one per
// DEK: it walks the batch's range of the tenant's rows in key order, and
// SQL function byok_rewrapped(call, id, scope) gives each row its new
// wrapping from the batch, or NULL for a row that is not in it. The call
// is found by a handle bound as a parameter. On the unchecked connection
// a re-key writes on, SQLite updates the range in one pass; checking
// foreign keys, it would collect the rows first and seek each of them and
// its tenant key again, so rewrap checks each tenant key once itself.
//
// A re-key's batch is usually every row of its range that is under
// another epoch of the same kind, so the first UPDATE takes those rows,
// calling byok_rewrapped once per row, and stands only if it rewrapped
// each record of the batch and no other row; otherwise it is rolled back
// to a savepoint and a second UPDATE takes exactly the rows for which
// byok_rewrapped is not NULL, calling it twice per row. MoveScope rewraps
// on the ordinary writer, which enforces foreign keys: the same statements,
// run by SQLite in two passes.

// rewrappedFunc is the SQL function's name.
const rewrappedFunc = "byok_rewrapped"

var (
	// calls maps the handles of the rewrap statements running to their
	// state.
	calls sync.Map // int64 → *rewrapCall
	// handles hands out handles, reusing freed ones: they stay below 256,
	// so boxing one into a driver.Value for byok_rewrapped's arguments
	// costs no allocation per row.
	handles struct {
		sync.Mutex
		free []int64
		next int64
	}
)

// takeHandle returns a handle no running rewrap has.
func takeHandle() int64 {
	handles.Lock()
	defer handles.Unlock()
	if n := len(handles.free); n > 0 {
		h := handles.free[n-1]
		handles.free = handles.free[:n-1]
		return h
	}
	handles.next++
	return handles.next
}

// putHandle gives back a handle taken by takeHandle.
func putHandle(h int64) {
	handles.Lock()
	defer handles.Unlock()
	handles.free = append(handles.free, h)
}

// batch is the records of one rewrap: one tenant key's, sorted by id.
type batch []byok.DEKRecord

// rewrapCall is the state of byok_rewrapped in one statement, which SQLite
// runs on one goroutine.
type rewrapCall struct {
	b     batch
	last  int    // the index of the last record found, or -1
	found []bool // the records found
	hits  int    // records found, each counted once
}

// find returns the index of the record of c.b with id and scope. Rows come
// in key order, often each looked up twice in a row (WHERE, then SET): the
// record after the last one found, or that one again, is tried before a
// search. SQLite may also evaluate the WHERE of every row before any SET
// (when it enforces foreign keys), so hits counts each record once.
func (c *rewrapCall) find(id []byte, scope string) (int, bool) {
	i := c.last + 1
	found := i < len(c.b) && bytes.Equal(c.b[i].ID[:], id)
	if !found && c.last >= 0 && bytes.Equal(c.b[c.last].ID[:], id) {
		i, found = c.last, true
	}
	if !found {
		i, found = slices.BinarySearchFunc(c.b, id, func(d byok.DEKRecord, id []byte) int { return bytes.Compare(d.ID[:], id) })
	}
	if !found || c.b[i].Scope != scope {
		return 0, false
	}
	c.last = i
	if !c.found[i] {
		c.found[i] = true
		c.hits++
	}
	return i, true
}

// rewrapped implements byok_rewrapped. Its arguments are views of SQLite's
// memory, valid during the call only.
func rewrapped(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	h, _ := args[0].(int64)
	v, ok := calls.Load(h)
	if !ok {
		return nil, fmt.Errorf("%s: no rewrap %d is running", rewrappedFunc, h)
	}
	c := v.(*rewrapCall)
	id, _ := args[1].([]byte)
	scope, _ := args[2].(string)
	i, ok := c.find(id, scope)
	if !ok {
		return nil, nil
	}
	return c.b[i].Wrapped, nil
}

// drv is the driver of this package's connections: modernc.org/sqlite's,
// with byok_rewrapped, which only they see.
var drv = func() *sqlite.Driver {
	d := &sqlite.Driver{}
	d.MustRegisterFunction(rewrappedFunc, &sqlite.FunctionImpl{NArgs: 3, Scalar: rewrapped, VolatileArgs: true})
	return d
}()

// connector opens connections of drv to a data source name.
type connector string

func (c connector) Connect(context.Context) (driver.Conn, error) { return drv.Open(string(c)) }
func (c connector) Driver() driver.Driver                        { return drv }

// unchecked implements [sqlstore.Dialect.Unchecked]: foreign_keys off,
// temp_store MEMORY (a batch's savepoint journal, as large as the pages
// the batch changes, stays off the disk) and, unless durable, synchronous
// NORMAL, under which a commit in WAL mode survives the process being
// killed (it is in the operating system's cache) and is synced to the
// disk by the next FULL commit or checkpoint, and wal_autocheckpoint
// raised to bulkAutocheckpoint (Open has the checkpointer copy the WAL
// after the batch instead). The foreign_keys pragma has no effect inside
// a transaction, so the pragmas are set on the connection before one
// begins; a connection whose pragmas do not read back as the writer's
// afterwards (a pragma failed, or the transaction is still open on it)
// is closed, never reused.
func unchecked(ctx context.Context, w *sql.DB, durable bool) (*sql.Conn, func(), error) {
	c, err := w.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	release := func() {
		ctx := context.WithoutCancel(ctx)
		err := setPragmas(ctx, c, writerPragmas)
		if err != nil {
			c.Raw(func(any) error { return driver.ErrBadConn })
		}
		c.Close()
	}
	set := []pragma{{"foreign_keys", 0}, {"temp_store", tempStoreMemory}}
	if !durable {
		set = append(set, pragma{"synchronous", synchronousNormal}, pragma{"wal_autocheckpoint", bulkAutocheckpoint})
	}
	if err := setPragmas(ctx, c, set); err != nil {
		release()
		return nil, nil, err
	}
	return c, release, nil
}

// pragma is a setting of a connection and its value.
type pragma struct {
	name  string
	value int
}

// writerPragmas are the writer's settings that unchecked changes.
var writerPragmas = []pragma{{"foreign_keys", 1}, {"temp_store", tempStoreDefault}, {"synchronous", synchronousFull}, {"wal_autocheckpoint", autocheckpoint}}

// setPragmas sets ps on c and checks that each reads back as set.
func setPragmas(ctx context.Context, c *sql.Conn, ps []pragma) error {
	for _, p := range ps {
		var got int
		_, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA %s = %d`, p.name, p.value))
		if err == nil {
			err = c.QueryRowContext(ctx, `PRAGMA `+p.name).Scan(&got)
		}
		if err == nil && got != p.value {
			err = fmt.Errorf("PRAGMA %s is %d after setting it to %d", p.name, got, p.value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// PRAGMA synchronous's values for NORMAL and for FULL, the writer's; PRAGMA
// temp_store's for DEFAULT, the writer's (a file), and for MEMORY.
const (
	synchronousNormal = 1
	synchronousFull   = 2
	tempStoreDefault  = 0
	tempStoreMemory   = 2
)

// rewrap implements [sqlstore.Dialect.Rewrap]: the tenant keys recs name
// checked to exist, then recs grouped by tenant key, each group written by
// one UPDATE over its id range of the tenant's rows. A group whose UPDATE
// did not rewrap each of its records (one is missing or in another scope)
// is written again DEK by DEK, which names the missing DEK; so are recs
// that name a DEK twice (in their order, so that the last record wins) or
// hold a nil wrapping (NULL, which byok_rewrapped keeps for the rows it
// leaves alone).
func rewrap(ctx context.Context, tx *sql.Tx, recs []byok.DEKRecord) error {
	if err := checkKeys(ctx, tx, recs); err != nil {
		return err
	}
	if slices.ContainsFunc(recs, func(d byok.DEKRecord) bool { return d.Wrapped == nil }) {
		return rewrapRows(ctx, tx, recs)
	}
	sorted := recs // a re-key's page: one tenant key, in id order
	if !oneKeyInOrder(recs) {
		sorted = slices.Clone(recs)
		slices.SortFunc(sorted, func(a, b byok.DEKRecord) int { return bytes.Compare(a.ID[:], b.ID[:]) })
		for i := 1; i < len(sorted); i++ {
			if sorted[i].ID == sorted[i-1].ID {
				return rewrapRows(ctx, tx, recs)
			}
		}
		slices.SortStableFunc(sorted, func(a, b byok.DEKRecord) int {
			return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Epoch, b.Epoch))
		})
	}
	for len(sorted) > 0 {
		n := 1
		for n < len(sorted) && sameKey(sorted[n], sorted[0]) {
			n++
		}
		if err := rewrapGroup(ctx, tx, sorted[:n]); err != nil {
			return err
		}
		sorted = sorted[n:]
	}
	return nil
}

// sameKey reports whether a and b are under the same tenant key.
func sameKey(a, b byok.DEKRecord) bool {
	return a.Tenant == b.Tenant && a.Kind == b.Kind && a.Epoch == b.Epoch
}

// oneKeyInOrder reports whether recs are under one tenant key, in strictly
// increasing id order (so no id repeats).
func oneKeyInOrder(recs []byok.DEKRecord) bool {
	for i := 1; i < len(recs); i++ {
		if !sameKey(recs[i], recs[0]) || bytes.Compare(recs[i-1].ID[:], recs[i].ID[:]) >= 0 {
			return false
		}
	}
	return true
}

// checkKeys fails, wrapping [byok.ErrNotFound], if a tenant key that recs
// name does not exist: the check of their foreign key, which the unchecked
// connection does not make.
func checkKeys(ctx context.Context, tx *sql.Tx, recs []byok.DEKRecord) error {
	type key struct {
		tenant string
		kind   byok.KeyKind
		epoch  uint32
	}
	checked := map[key]bool{}
	for _, d := range recs {
		k := key{d.Tenant, d.Kind, d.Epoch}
		if checked[k] {
			continue
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM tenant_keys WHERE tenant = ? AND kind = ? AND epoch = ?`,
			d.Tenant, int64(d.Kind), int64(d.Epoch)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store/sqlite: rewrap DEK %x: %s does not exist: %w", d.ID, sqlstore.KeyName(d.Tenant, d.Kind, d.Epoch), byok.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store/sqlite: rewrap DEKs: %w", err)
		}
		checked[k] = true
	}
	return nil
}

// rewrapGroup rewraps b, whose records share a tenant key.
func rewrapGroup(ctx context.Context, tx *sql.Tx, b batch) error {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT rewrap`); err != nil {
		return fmt.Errorf("store/sqlite: rewrap DEKs: %w", err)
	}
	ok, err := rewrapRange(ctx, tx, b, `UPDATE deks NOT INDEXED SET epoch = ?2, wrapped = byok_rewrapped(?3, id, scope)
		WHERE tenant = ?4 AND id BETWEEN ?5 AND ?6 AND kind = ?1 AND epoch <> ?2`)
	if err == nil && !ok {
		if _, err = tx.ExecContext(ctx, `ROLLBACK TO rewrap`); err == nil {
			ok, err = rewrapRange(ctx, tx, b, `UPDATE deks NOT INDEXED SET kind = ?1, epoch = ?2, wrapped = byok_rewrapped(?3, id, scope)
				WHERE tenant = ?4 AND id BETWEEN ?5 AND ?6 AND byok_rewrapped(?3, id, scope) IS NOT NULL`)
		}
	}
	if err != nil {
		// Leave the transaction as it was before the group, for a caller
		// that goes on with it.
		rctx := context.WithoutCancel(ctx)
		tx.ExecContext(rctx, `ROLLBACK TO rewrap`)
		tx.ExecContext(rctx, `RELEASE rewrap`)
		return fmt.Errorf("store/sqlite: rewrap DEKs: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `RELEASE rewrap`); err != nil {
		return fmt.Errorf("store/sqlite: rewrap DEKs: %w", err)
	}
	if ok {
		return nil
	}
	return rewrapRows(ctx, tx, b)
}

// rewrapRange runs query, an UPDATE of rows in the id range of b with
// byok_rewrapped, and reports whether it rewrapped each record of b and
// no other row.
func rewrapRange(ctx context.Context, tx *sql.Tx, b batch, query string) (bool, error) {
	d, c := b[0], &rewrapCall{b: b, last: -1, found: make([]bool, len(b))}
	h := takeHandle()
	calls.Store(h, c)
	defer func() {
		calls.Delete(h)
		putHandle(h)
	}()
	res, err := tx.ExecContext(ctx, query, int64(d.Kind), int64(d.Epoch), h, d.Tenant, b[0].ID[:], b[len(b)-1].ID[:])
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == int64(len(b)) && c.hits == len(b), err
}

// rewrapRows rewraps recs one UPDATE each, checking each row count.
// NOT INDEXED makes SQLite find each row by the primary key (tenant, id)
// instead of through index deks_by_id and then the primary key.
func rewrapRows(ctx context.Context, tx *sql.Tx, recs []byok.DEKRecord) error {
	stmt, err := tx.PrepareContext(ctx, `UPDATE deks NOT INDEXED SET kind = ?, epoch = ?, wrapped = ?
		WHERE id = ? AND tenant = ? AND scope = ?`)
	if err != nil {
		return fmt.Errorf("store/sqlite: rewrap DEKs: %w", err)
	}
	defer stmt.Close()
	// One row's update takes microseconds: ctx is checked between rows,
	// and each row runs under a context without cancellation, for which
	// the driver starts no watcher goroutine.
	rowCtx := context.WithoutCancel(ctx)
	for i := range recs {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("store/sqlite: rewrap DEKs: %w", err)
			}
		}
		d := &recs[i]
		res, err := stmt.ExecContext(rowCtx, int64(d.Kind), int64(d.Epoch), d.Wrapped, d.ID[:], d.Tenant, d.Scope)
		if classify(err) == sqlstore.MissingParent {
			return fmt.Errorf("store/sqlite: rewrap DEK %x: %s does not exist: %w", d.ID, sqlstore.KeyName(d.Tenant, d.Kind, d.Epoch), byok.ErrNotFound)
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
