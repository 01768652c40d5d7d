package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
	"github.com/openbyok/byok/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t, false)
	})
}

// openTemp opens a new database in t's temporary directory; if closeAtEnd,
// it is closed when t ends.
func openTemp(t testing.TB, closeAtEnd bool) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "byok.db"))
	if err != nil {
		t.Fatal(err)
	}
	if closeAtEnd {
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	return db
}

var created = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

func tenantKey(tenant string, kind byok.KeyKind, epoch uint32) byok.TenantKeyRecord {
	w := kms.Wrapped{KeyID: "local://prk/1", Algorithm: "A256GCM", Ciphertext: []byte{1, 2, 3}}
	return byok.TenantKeyRecord{Tenant: tenant, Kind: kind, Epoch: epoch, CustomerShare: w, PlatformShare: w, Created: created}
}

func dekN(tenant, scope string, kind byok.KeyKind, epoch uint32, n uint64) byok.DEKRecord {
	var id byok.DEKID
	id[0] = 0x80 // never the zero id
	for i := range 8 {
		id[15-i] = byte(n >> (8 * i))
	}
	return byok.DEKRecord{ID: id, Tenant: tenant, Scope: scope, Kind: kind, Epoch: epoch,
		Wrapped: make([]byte, 60), Created: created}
}

// newTenant creates tenant "acme" with platform-managed key epoch 1 and
// customer-managed key epoch 1 and 2.
func newTenant(t testing.TB, db *DB) {
	t.Helper()
	err := db.CreateTenant(context.Background(), byok.TenantRecord{ID: "acme", Policy: byok.Grace, Created: created},
		[]byok.TenantKeyRecord{tenantKey("acme", byok.PlatformManaged, 1), tenantKey("acme", byok.CustomerManaged, 1), tenantKey("acme", byok.CustomerManaged, 2)})
	if err != nil {
		t.Fatal(err)
	}
}

func exec(t *testing.T, db *DB, query string) {
	t.Helper()
	if _, err := db.w.ExecContext(t.Context(), query); err != nil {
		t.Fatal(err)
	}
}

func TestPragmas(t *testing.T) {
	db := openTemp(t, true)
	for _, tc := range []struct {
		pool   string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "foreign_keys", "1"},
		{"writer", "busy_timeout", "10000"},
		{"writer", "wal_autocheckpoint", strconv.Itoa(autocheckpoint)},
		{"reader", "query_only", "1"},
		{"reader", "busy_timeout", "10000"},
		{"reader", "journal_mode", "wal"},
		{"reader", "mmap_size", "0"},
		{"walker", "query_only", "1"},
		{"walker", "foreign_keys", "1"},
		{"writer", "temp_store", "0"}, // DEFAULT: a file; MEMORY on the bulk connection only
		{"walker", "mmap_size", "0"},
	} {
		pool := map[string]*sql.DB{"writer": db.w, "reader": db.r, "walker": db.walk}[tc.pool]
		var got string
		if err := pool.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", tc.pool, tc.pragma, got, tc.want)
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "byok.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	newTenant(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		db, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if _, err := db.Tenant(ctx, "acme"); err != nil {
			t.Errorf("tenant after reopen: %v", err)
		}
		var n, maxV int
		if err := db.r.QueryRowContext(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
			t.Fatal(err)
		}
		ms, err := store.LoadMigrations(migrationFiles)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(ms) || maxV != len(ms) {
			t.Errorf("schema_migrations has %d rows up to version %d, want %d", n, maxV, len(ms))
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCloseTwice: a second Close returns nil, as sql.DB's does, and the
// store stays closed.
func TestCloseTwice(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "byok.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := db.Close(); err != nil {
			t.Fatalf("close %d: %v", i+1, err)
		}
	}
	if _, err := db.Tenant(ctx, "acme"); err == nil {
		t.Fatal("Tenant after Close succeeded, want an error")
	}
}

func TestOpenNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "byok.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO schema_migrations (version, name, applied) VALUES (999, '0999_future.sql', 0)`)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("version 999, newer than version %d", latestVersion(t))) {
		t.Errorf("error %q does not say the schema is newer", msg)
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, path := range []string{
		"",
		filepath.Join(t.TempDir(), "x?mode=ro"),
		filepath.Join(t.TempDir(), "no", "such", "dir", "byok.db"),
	} {
		if db, err := Open(t.Context(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestLoadMigrations(t *testing.T) {
	ms, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	for i, m := range ms {
		if m.Version != i+1 || m.SQL == "" {
			t.Errorf("migration %d: version %d, %d bytes of SQL", i, m.Version, len(m.SQL))
		}
	}

	file := &fstest.MapFile{Data: []byte("CREATE TABLE t (x);")}
	for name, fsys := range map[string]fstest.MapFS{
		"none":       {},
		"gap":        {"migrations/0001_a.sql": file, "migrations/0003_c.sql": file},
		"duplicate":  {"migrations/0001_a.sql": file, "migrations/0001_b.sql": file},
		"from zero":  {"migrations/0000_a.sql": file},
		"no number":  {"migrations/init.sql": file},
		"short":      {"migrations/1_init.sql": file},
		"not number": {"migrations/000x_init.sql": file},
	} {
		if _, err := store.LoadMigrations(fsys); err == nil {
			t.Errorf("%s: LoadMigrations succeeded", name)
		}
	}
	good := fstest.MapFS{"migrations/0001_a.sql": file, "migrations/0002_b.sql": file, "migrations/README": file}
	ms, err = store.LoadMigrations(good)
	if err != nil || len(ms) != 2 || ms[1].Name != "0002_b.sql" {
		t.Errorf("store.LoadMigrations(good) = %+v, %v", ms, err)
	}
}

// TestMigrationFailureRollsBack applies a migration whose second
// statement fails: neither its first statement nor its record remain.
func TestMigrationFailureRollsBack(t *testing.T) {
	db := openTemp(t, true) // at the latest version
	latest := latestVersion(t)
	ms := fstest.MapFS{}
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ms["migrations/"+e.Name()] = &fstest.MapFile{Data: mustRead(t, "migrations/"+e.Name())}
	}
	bad := fmt.Sprintf("%04d_bad.sql", latest+1)
	ms["migrations/"+bad] = &fstest.MapFile{Data: []byte("CREATE TABLE extra (x INTEGER); INSERT INTO no_such_table VALUES (1);")}
	if err := migrate(t.Context(), db.w, ms); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("migrate with a failing migration: %v, want an error naming it", err)
	}
	var n int
	if err := db.w.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE name = 'extra'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("the failed migration's first statement was kept")
	}
	if err := db.w.QueryRowContext(t.Context(), `SELECT max(version) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != latest {
		t.Errorf("schema version after failed migration = %d, want %d", n, latest)
	}
}

// latestVersion is the version of the newest embedded migration.
func latestVersion(t *testing.T) int {
	t.Helper()
	ms, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	return ms[len(ms)-1].Version
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := migrationFiles.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSecondStatementFails makes the second statement of each
// multi-statement write fail with a trigger, and checks that the first
// one's effect is gone.
func TestSecondStatementFails(t *testing.T) {
	ctx := t.Context()
	const pm, cm = byok.PlatformManaged, byok.CustomerManaged

	t.Run("CreateTenant", func(t *testing.T) {
		db := openTemp(t, true)
		exec(t, db, `CREATE TRIGGER fail BEFORE INSERT ON tenant_keys BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
		err := db.CreateTenant(ctx, byok.TenantRecord{ID: "acme", Policy: byok.Grace}, []byok.TenantKeyRecord{tenantKey("acme", pm, 1)})
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("CreateTenant = %v, want the injected failure", err)
		}
		if _, err := db.Tenant(ctx, "acme"); !errors.Is(err, byok.ErrNotFound) {
			t.Errorf("tenant after failed CreateTenant: %v, want ErrNotFound", err)
		}
	})

	t.Run("RewrapDEKs", func(t *testing.T) {
		db := openTemp(t, true)
		newTenant(t, db)
		d1, d2 := dekN("acme", "bot", cm, 1, 1), dekN("acme", "bot", cm, 1, 2)
		for _, d := range []byok.DEKRecord{d1, d2} {
			if err := db.PutDEK(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		exec(t, db, fmt.Sprintf(`CREATE TRIGGER fail BEFORE UPDATE ON deks WHEN NEW.id = x'%x'
			BEGIN SELECT RAISE(ABORT, 'injected failure'); END`, d2.ID))
		r1, r2 := d1, d2
		r1.Epoch, r2.Epoch = 2, 2
		r1.Wrapped, r2.Wrapped = []byte("new"), []byte("new")
		if err := db.RewrapDEKs(ctx, []byok.DEKRecord{r1, r2}); err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("RewrapDEKs = %v, want the injected failure", err)
		}
		got, err := db.DEK(ctx, d1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Epoch != 1 || string(got.Wrapped) == "new" {
			t.Errorf("first DEK after failed RewrapDEKs: epoch %d, rewrapped %t", got.Epoch, string(got.Wrapped) == "new")
		}
	})

	t.Run("MoveScope", func(t *testing.T) {
		db := openTemp(t, true)
		newTenant(t, db)
		d := dekN("acme", "bot", pm, 1, 1)
		if err := db.PutDEK(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := db.PutScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: pm}); err != nil {
			t.Fatal(err)
		}
		exec(t, db, `CREATE TRIGGER fail BEFORE UPDATE ON deks BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
		r := d
		r.Kind, r.Epoch = cm, 2
		err := db.MoveScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: cm}, []byok.DEKRecord{r})
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("MoveScope = %v, want the injected failure", err)
		}
		s, err := db.Scope(ctx, "acme", "bot")
		if err != nil {
			t.Fatal(err)
		}
		if s.Kind != pm {
			t.Errorf("scope kind after failed MoveScope = %v, want %v", s.Kind, pm)
		}
	})

	t.Run("ReplaceShare", func(t *testing.T) {
		db := openTemp(t, true)
		newTenant(t, db)
		exec(t, db, `CREATE TRIGGER fail BEFORE UPDATE ON tenant_keys BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
		err := db.ReplaceShare(ctx, "acme", cm, 1, "local://prk/1", kms.Wrapped{KeyID: "local://prk/2"})
		if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("ReplaceShare = %v, want the injected failure and no sentinel", err)
		}
	})
}

// TestTwoHandles writes through two handles on one file at once, as two
// processes would: the busy timeout, not an error, resolves the contention.
func TestTwoHandles(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "byok.db")
	var dbs [2]*DB
	for i := range dbs {
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	newTenant(t, dbs[0])
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		db := dbs[w%2]
		wg.Go(func() {
			for i := range each {
				d := dekN("acme", "bot", byok.CustomerManaged, 1, uint64(w*each+i))
				if err := db.PutDEK(ctx, d); err != nil {
					errs <- err
				}
				// A read-then-write transaction: IMMEDIATE keeps it from
				// failing to upgrade its lock.
				if err := db.ReplaceShare(ctx, "acme", byok.PlatformManaged, 1, "local://prk/1",
					kms.Wrapped{KeyID: "local://prk/1"}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := dbs[1].ListScopeDEKs(ctx, "acme", "bot", byok.DEKID{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != workers*each {
		t.Errorf("%d DEKs stored, want %d", len(got), workers*each)
	}
}

func TestCanceledContext(t *testing.T) {
	db := openTemp(t, true)
	newTenant(t, db)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.PutDEK(ctx, dekN("acme", "bot", byok.PlatformManaged, 1, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("PutDEK with canceled ctx: %v, want context.Canceled", err)
	}
	if _, err := db.Tenant(ctx, "acme"); !errors.Is(err, context.Canceled) {
		t.Errorf("Tenant with canceled ctx: %v, want context.Canceled", err)
	}
	if _, err := db.DEK(t.Context(), dekN("acme", "bot", byok.PlatformManaged, 1, 1).ID); !errors.Is(err, byok.ErrNotFound) {
		t.Errorf("DEK after canceled PutDEK: %v, want ErrNotFound", err)
	}
}

func BenchmarkPutDEK(b *testing.B) {
	db := openTemp(b, true)
	newTenant(b, db)
	ctx := context.Background()
	var n uint64
	for b.Loop() {
		n++
		if err := db.PutDEK(ctx, dekN("acme", "bot", byok.CustomerManaged, 1, n)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutDEKParallel(b *testing.B) {
	db := openTemp(b, true)
	newTenant(b, db)
	ctx := context.Background()
	var mu sync.Mutex
	var n uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			d := dekN("acme", "bot", byok.CustomerManaged, 1, n)
			mu.Unlock()
			if err := db.PutDEK(ctx, d); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// fill stores n DEKs under customer-managed epoch 1 in batches.
func fill(b *testing.B, db *DB, n int) []byok.DEKRecord {
	b.Helper()
	ctx := context.Background()
	ds := make([]byok.DEKRecord, n)
	for i := range ds {
		ds[i] = dekN("acme", "bot", byok.CustomerManaged, 1, uint64(i))
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	for _, d := range ds {
		if _, err := tx.ExecContext(ctx, `INSERT INTO deks (id, tenant, scope, kind, epoch, wrapped, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			d.ID[:], d.Tenant, d.Scope, int64(d.Kind), int64(d.Epoch), d.Wrapped, d.Created.UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return ds
}

func BenchmarkDEK(b *testing.B) {
	db := openTemp(b, true)
	newTenant(b, db)
	ds := fill(b, db, 10000)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := db.DEK(ctx, ds[i%len(ds)].ID); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkDEKParallel(b *testing.B) {
	db := openTemp(b, true)
	newTenant(b, db)
	ds := fill(b, db, 10000)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := db.DEK(ctx, ds[i%len(ds)].ID); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkRewrapDEKs rewraps batches of 1000 DEKs of a table of 100,000,
// alternating between epochs 1 and 2, as a re-key job does.
func BenchmarkRewrapDEKs(b *testing.B) {
	const total, batch = 100_000, 1000
	db := openTemp(b, true)
	newTenant(b, db)
	ds := fill(b, db, total)
	ctx := context.Background()
	recs := make([]byok.DEKRecord, batch)
	round := 0
	for b.Loop() {
		start := (round * batch) % total
		epoch := uint32(2 - (round*batch/total)%2)
		for i := range recs {
			recs[i] = ds[start+i]
			recs[i].Epoch = epoch
		}
		if err := db.RewrapDEKs(ctx, recs); err != nil {
			b.Fatal(err)
		}
		round++
	}
	b.ReportMetric(float64(round*batch)/b.Elapsed().Seconds(), "DEKs/s")
}

// The database file and its -wal and -shm files are private to the
// service's user, as the platform key file is, whatever the umask.
func TestOpenCreatesPrivateFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "byok.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The migrations have written: the -wal and -shm files exist while the
	// database is open.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(f), perm)
		}
	}
}
