package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle/record"
	"github.com/openbyok/byok/store/sqlstore"
)

// A rewrap runs on the writer with foreign keys off; whatever its outcome,
// the writer enforces them again afterwards.
func TestRewrapLeavesForeignKeysOn(t *testing.T) {
	db := openTemp(t, true)
	newTenant(t, db)
	ctx := t.Context()
	ds := fillT(t, db, 4)
	ok := rewrappedAll(ds[:2], byok.CustomerManaged, 2)
	noKey := rewrappedAll(ds[2:3], byok.CustomerManaged, 9)
	noDEK := rewrappedAll([]byok.DEKRecord{dekN("acme", "bot", byok.CustomerManaged, 1, 99)}, byok.CustomerManaged, 2)
	ghostJob := record.JobRecord{Job: record.Job{ID: "j-ghost", Tenant: "ghost", Kind: record.JobRekey, State: record.JobRunning, Created: created}, Epoch: 2}
	job := record.JobRecord{Job: record.Job{ID: "j1", Tenant: "acme", Kind: record.JobRekey, State: record.JobRunning, Created: created}, Epoch: 2}
	for _, tc := range []struct {
		name string
		run  func() error
		want error
	}{
		{"a batch written", func() error { return db.RewrapDEKs(ctx, ok) }, nil},
		{"a tenant key missing", func() error { return db.RewrapDEKs(ctx, noKey) }, byok.ErrNotFound},
		{"a DEK missing", func() error { return db.RewrapDEKs(ctx, noDEK) }, byok.ErrNotFound},
		{"a job of no tenant", func() error { return db.RewrapBatch(ctx, nil, ok, ghostJob) }, byok.ErrNotFound},
		{"a job's batch written", func() error { return db.RewrapBatch(ctx, nil, ok, job) }, nil},
		{"a cancelled context", func() error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			return db.RewrapDEKs(cctx, ok)
		}, context.Canceled},
	} {
		err := tc.run()
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		var on, sync int
		if err := db.w.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&on); err != nil || on != 1 {
			t.Fatalf("after %s: writer's foreign_keys = %d, %v; want 1", tc.name, on, err)
		}
		if err := db.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != synchronousFull {
			t.Fatalf("after %s: writer's synchronous = %d, %v; want %d (FULL)", tc.name, sync, err, synchronousFull)
		}
		_, err = db.w.ExecContext(ctx, `INSERT INTO deks (id, tenant, scope, kind, epoch) VALUES (?, 'acme', 'bot', 2, 7)`, []byte("0123456789abcdef"))
		if classify(err) != sqlstore.MissingParent {
			t.Fatalf("after %s: a DEK under a missing tenant key was stored: %v", tc.name, err)
		}
	}
	if _, err := db.JobRecord(ctx, "j-ghost"); !errors.Is(err, byok.ErrNotFound) {
		t.Errorf("the job of no tenant was stored: %v", err)
	}
	checkRows(t, db, append(ok, ds[2:]...))
}

// The rewrap of random batches over tables of interleaved DEKs of several
// kinds, epochs and scopes leaves exactly what rewrapping each record in
// turn leaves: every tier of rewrap (one pass, filtered pass, row by row)
// and its failures, against a model.
func TestRewrapMatchesModel(t *testing.T) {
	db := openTemp(t, true)
	ctx := t.Context()
	newTenant(t, db)
	if err := db.CreateTenant(ctx, byok.TenantRecord{ID: "globex", Policy: byok.Grace, Created: created},
		[]byok.TenantKeyRecord{tenantKey("globex", byok.CustomerManaged, 1), tenantKey("globex", byok.CustomerManaged, 2)}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []struct {
		kind  byok.KeyKind
		epoch uint32
	}{{byok.PlatformManaged, 1}, {byok.CustomerManaged, 1}, {byok.CustomerManaged, 2}, {byok.CustomerManaged, 9}}
	model := map[byok.DEKID]byok.DEKRecord{}
	var all []byok.DEKRecord
	for i := range 400 {
		tenant, scope := "acme", []string{"bot", "mail", "logs"}[i%3]
		if i%7 == 0 {
			tenant = "globex"
		}
		k := keys[rng.IntN(3)]
		if tenant == "globex" {
			k = keys[1+rng.IntN(2)]
		}
		d := dekN(tenant, scope, k.kind, k.epoch, uint64(rng.Uint32()))
		d.Wrapped = fmt.Appendf(nil, "w%d", i)
		if _, dup := model[d.ID]; dup {
			continue
		}
		if err := db.PutDEK(ctx, d); err != nil {
			t.Fatal(err)
		}
		model[d.ID], all = d, append(all, d)
	}
	for round := range 300 {
		// A batch: a random run of the table's DEKs (in id order or not),
		// some rewrapped onto another key, some naming a missing DEK or the
		// wrong scope, some twice.
		var recs []byok.DEKRecord
		start := rng.IntN(len(all))
		to := keys[1+rng.IntN(2)]
		if round%10 == 0 {
			to = keys[rng.IntN(4)]
		}
		for _, d := range all[start:min(len(all), start+1+rng.IntN(60))] {
			cur := model[d.ID]
			if rng.IntN(4) == 0 {
				continue
			}
			r := cur
			r.Kind, r.Epoch, r.Wrapped = to.kind, to.epoch, fmt.Appendf(nil, "r%d-%x", round, d.ID[12:])
			switch rng.IntN(100) {
			case 0:
				r.ID[1] ^= 0xff // missing
			case 1:
				r.Scope += "-other"
			case 2:
				recs = append(recs, r) // named twice: the last wins
				r.Wrapped = append(r.Wrapped, '!')
			case 3:
				r.Wrapped = nil
			}
			recs = append(recs, r)
		}
		switch rng.IntN(3) {
		case 0:
			rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
		case 1: // in id order, as a re-key's page is
			slices.SortStableFunc(recs, func(a, b byok.DEKRecord) int { return bytes.Compare(a.ID[:], b.ID[:]) })
		}
		if len(recs) == 0 {
			continue
		}
		want := applyModel(model, recs)
		err := db.RewrapDEKs(ctx, recs)
		if (want != nil) != (err == nil) {
			for _, r := range recs {
				c, ok := model[r.ID]
				t.Logf("%s %s %s %d %x | %v %s %s %s %d", r.Tenant, r.Scope, r.Kind, r.Epoch, r.ID, ok, c.Tenant, c.Scope, c.Kind, c.Epoch)
			}
			t.Fatalf("round %d: RewrapDEKs = %v, want success %t", round, err, want != nil)
		}
		if err != nil && !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("round %d: RewrapDEKs = %v, want ErrNotFound", round, err)
		}
		if want != nil {
			model = want
		}
	}
	var rows []byok.DEKRecord
	for _, d := range model {
		rows = append(rows, d)
	}
	checkRows(t, db, rows)
}

// applyModel returns model after recs, each rewrapped in turn, or nil if
// one of them fails: its DEK is missing, in another scope, or its tenant
// key does not exist (tenant keys are those of newTenant and globex's 1
// and 2, not epoch 9).
func applyModel(model map[byok.DEKID]byok.DEKRecord, recs []byok.DEKRecord) map[byok.DEKID]byok.DEKRecord {
	next := make(map[byok.DEKID]byok.DEKRecord, len(model))
	for id, d := range model {
		next[id] = d
	}
	for _, r := range recs {
		cur, ok := next[r.ID]
		if !ok || cur.Tenant != r.Tenant || cur.Scope != r.Scope || r.Epoch == 9 ||
			(r.Tenant == "globex" && r.Kind == byok.PlatformManaged) {
			return nil
		}
		cur.Kind, cur.Epoch, cur.Wrapped = r.Kind, r.Epoch, r.Wrapped
		next[r.ID] = cur
	}
	return next
}

// fillT stores n DEKs of scope bot of acme under its customer-managed key 1.
func fillT(t *testing.T, db *DB, n int) []byok.DEKRecord {
	t.Helper()
	var ds []byok.DEKRecord
	for i := range n {
		d := dekN("acme", "bot", byok.CustomerManaged, 1, uint64(i))
		d.Wrapped = fmt.Appendf(nil, "old %d", i)
		if err := db.PutDEK(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

// rewrappedAll returns ds rewrapped onto (kind, epoch) with new wrappings.
func rewrappedAll(ds []byok.DEKRecord, kind byok.KeyKind, epoch uint32) []byok.DEKRecord {
	out := make([]byok.DEKRecord, len(ds))
	for i, d := range ds {
		d.Kind, d.Epoch, d.Wrapped = kind, epoch, fmt.Appendf(nil, "new %x", d.ID)
		out[i] = d
	}
	return out
}

// checkRows checks that the deks table holds exactly want.
func checkRows(t *testing.T, db *DB, want []byok.DEKRecord) {
	t.Helper()
	var n int
	if err := db.r.QueryRowContext(t.Context(), `SELECT count(*) FROM deks`).Scan(&n); err != nil || n != len(want) {
		t.Fatalf("deks holds %d rows (%v), want %d", n, err, len(want))
	}
	for _, w := range want {
		got, err := db.DEK(t.Context(), w.ID)
		if err != nil {
			t.Fatalf("DEK %x: %v", w.ID, err)
		}
		if got.Tenant != w.Tenant || got.Scope != w.Scope || got.Kind != w.Kind || got.Epoch != w.Epoch || !reflect.DeepEqual(got.Wrapped, w.Wrapped) {
			t.Fatalf("DEK %x:\n got %+v\nwant %+v", w.ID, got, w)
		}
	}
}

// A connection left inside a transaction, where turning foreign keys on
// again has no effect, is closed rather than given back without them.
func TestUncheckedDropsAConnectionItCannotCheckAgain(t *testing.T) {
	db := openTemp(t, true)
	ctx := t.Context()
	c, release, err := unchecked(ctx, db.w, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	release()
	var on int
	if err := db.w.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&on); err != nil || on != 1 {
		t.Fatalf("writer's foreign_keys after a release inside a transaction = %d, %v; want 1", on, err)
	}
	newTenant(t, db) // the writer is not stuck in the abandoned transaction
}

// A job's batches are written on a connection that does not sync its
// commits; RewrapDEKs, which carries no cursor to redo it by, on one that
// does.
func TestOnlyJobBatchesSkipTheSync(t *testing.T) {
	var syncs []int
	orig := dialect.Unchecked
	dialect.Unchecked = func(ctx context.Context, w *sql.DB, durable bool) (*sql.Conn, func(), error) {
		c, release, err := orig(ctx, w, durable)
		if err == nil {
			var sync int
			if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
				t.Error(err)
			}
			syncs = append(syncs, sync)
		}
		return c, release, err
	}
	t.Cleanup(func() { dialect.Unchecked = orig })
	db := openTemp(t, true)
	newTenant(t, db)
	ctx := t.Context()
	ds := fillT(t, db, 4)
	if err := db.RewrapDEKs(ctx, rewrappedAll(ds[:2], byok.CustomerManaged, 2)); err != nil {
		t.Fatal(err)
	}
	job := record.JobRecord{Job: record.Job{ID: "j1", Tenant: "acme", Kind: record.JobRekey, State: record.JobRunning, Created: created}, Epoch: 2}
	if err := db.RewrapBatch(ctx, nil, rewrappedAll(ds[2:], byok.CustomerManaged, 2), job); err != nil {
		t.Fatal(err)
	}
	if want := []int{synchronousFull, 1}; !slices.Equal(syncs, want) {
		t.Fatalf("synchronous on the unchecked connection of RewrapDEKs, then RewrapBatch: %v; want %v (FULL, then NORMAL)", syncs, want)
	}
}

// The unchecked connection enforces no foreign keys and, for a job's
// batches (not durable), does not sync its commits; given back, it is the
// writer again.
func TestUncheckedPragmas(t *testing.T) {
	db := openTemp(t, true)
	ctx := t.Context()
	read := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) []pragma {
		t.Helper()
		var got []pragma
		for _, p := range writerPragmas {
			v := pragma{name: p.name}
			if err := q.QueryRowContext(ctx, `PRAGMA `+p.name).Scan(&v.value); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		return got
	}
	if got := read(db.w); !slices.Equal(got, writerPragmas) {
		t.Fatalf("writer: %v, want %v", got, writerPragmas)
	}
	for _, tc := range []struct {
		durable bool
		want    []pragma
	}{
		{true, []pragma{{"foreign_keys", 0}, {"temp_store", tempStoreMemory}, {"synchronous", synchronousFull}, {"wal_autocheckpoint", autocheckpoint}}},
		{false, []pragma{{"foreign_keys", 0}, {"temp_store", tempStoreMemory}, {"synchronous", synchronousNormal}, {"wal_autocheckpoint", bulkAutocheckpoint}}},
	} {
		c, release, err := unchecked(ctx, db.w, tc.durable)
		if err != nil {
			t.Fatal(err)
		}
		if got := read(c); !slices.Equal(got, tc.want) {
			t.Errorf("unchecked (durable %t): %v, want %v", tc.durable, got, tc.want)
		}
		release()
		if got := read(db.w); !slices.Equal(got, writerPragmas) {
			t.Errorf("writer after an unchecked connection (durable %t): %v, want %v", tc.durable, got, writerPragmas)
		}
	}
}

// A job's batch, whose commit does not checkpoint, wakes the
// checkpointer, which copies the whole WAL into the database file; a
// durable rewrap does not.
func TestCheckpointAfterJobBatch(t *testing.T) {
	db := openTemp(t, true)
	type result struct {
		log, copied int
		err         error
	}
	checked := make(chan result, 4)
	db.ck.checked = func(log, copied int, err error) { checked <- result{log, copied, err} }
	newTenant(t, db)
	ctx := t.Context()
	ds := fillT(t, db, 6)
	if err := db.RewrapDEKs(ctx, rewrappedAll(ds[:3], byok.CustomerManaged, 2)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-checked:
		t.Fatalf("a checkpoint (%+v) ran before any job's batch", r)
	default:
	}
	job := record.JobRecord{Job: record.Job{ID: "j1", Tenant: "acme", Kind: record.JobRekey, State: record.JobRunning, Created: created}, Epoch: 2}
	if err := db.RewrapBatch(ctx, nil, rewrappedAll(ds[3:], byok.CustomerManaged, 2), job); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-checked:
		if r.err != nil || r.log == 0 || r.copied != r.log {
			t.Fatalf("checkpoint after a job's batch: %d of %d WAL frames copied, %v; want all of them", r.copied, r.log, r.err)
		}
	case <-ctx.Done():
		t.Fatal("no checkpoint after a job's batch")
	}
}

// The filtered pass is judged by records found once each, also when
// SQLite runs it in two passes (WHERE for every row, then SET), as it does
// on a connection that enforces foreign keys: a scope move's.
func TestFilteredPassWithForeignKeysOn(t *testing.T) {
	db := openTemp(t, true)
	newTenant(t, db)
	ctx := t.Context()
	var b batch
	for i := range 10 {
		d := dekN("acme", "bot", byok.PlatformManaged, 1, uint64(i))
		if err := db.PutDEK(ctx, d); err != nil {
			t.Fatal(err)
		}
		d.Kind, d.Epoch, d.Wrapped = byok.CustomerManaged, 2, fmt.Appendf(nil, "new %d", i)
		b = append(b, d)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ok, err := rewrapRange(ctx, tx, b, `UPDATE deks NOT INDEXED SET kind = ?1, epoch = ?2, wrapped = byok_rewrapped(?3, id, scope)
		WHERE tenant = ?4 AND id BETWEEN ?5 AND ?6 AND byok_rewrapped(?3, id, scope) IS NOT NULL`)
	if err != nil || !ok {
		t.Fatalf("filtered pass with foreign keys on = %t, %v; want true", ok, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	checkRows(t, db, b)
}

// A page waits for a walker connection only as long as its context lets
// it.
func TestListDEKsWaitHonoursContext(t *testing.T) {
	db := openTemp(t, true)
	newTenant(t, db)
	ctx := t.Context()
	for range 2 { // every walker connection busy
		c, err := db.walk.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	cctx, cancel := context.WithCancel(ctx)
	go cancel()
	if _, err := db.ListDEKs(cctx, "acme", byok.CustomerManaged, 2, byok.DEKID{}, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListDEKs with its context cancelled = %v, want context.Canceled", err)
	}
}
