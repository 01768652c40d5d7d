package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
	"github.com/openbyok/byok/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.NewDatabase(t))
	})
}

// open opens the database dsn names; the caller closes it.
func open(t testing.TB, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// openNew opens a new database that is closed when t ends.
func openNew(t testing.TB) *DB {
	t.Helper()
	db := open(t, pgtest.NewDatabase(t))
	t.Cleanup(func() { db.Close() })
	return db
}

const (
	pm = byok.PlatformManaged
	cm = byok.CustomerManaged
)

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

// newTenant creates tenant id with platform-managed key epoch 1 and
// customer-managed key epochs 1 and 2.
func newTenant(t testing.TB, db *DB, id string) {
	t.Helper()
	err := db.CreateTenant(context.Background(), byok.TenantRecord{ID: id, Policy: byok.Grace, Created: created},
		[]byok.TenantKeyRecord{tenantKey(id, pm, 1), tenantKey(id, cm, 1), tenantKey(id, cm, 2)})
	if err != nil {
		t.Fatal(err)
	}
}

func exec(t testing.TB, db *DB, sql string, args ...any) {
	t.Helper()
	if _, err := db.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

func schemaVersion(t *testing.T, db *DB) (rows, version int) {
	t.Helper()
	if err := db.pool.QueryRow(t.Context(), `SELECT count(*), coalesce(max(version), 0) FROM schema_migrations`).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	return rows, version
}

func TestReopen(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := open(t, dsn)
	newTenant(t, db, "acme")
	db.Close()
	ms, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		db := open(t, dsn)
		if _, err := db.Tenant(t.Context(), "acme"); err != nil {
			t.Errorf("tenant after reopen: %v", err)
		}
		if n, v := schemaVersion(t, db); n != len(ms) || v != len(ms) {
			t.Errorf("schema_migrations has %d rows up to version %d, want %d", n, v, len(ms))
		}
		db.Close()
	}
}

func TestOpenNewerSchema(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := open(t, dsn)
	exec(t, db, `INSERT INTO schema_migrations (version, name, applied) VALUES (999, '0999_future.SQL', 0)`)
	db.Close()
	db, err := Open(t.Context(), dsn)
	if err == nil {
		db.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "version 999, newer than version") {
		t.Errorf("error %q does not say the schema is newer", msg)
	}
}

// TestConcurrentOpen opens one new database from many replicas at once:
// the advisory lock lets each migration run once, and every Open succeeds.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const replicas = 8
	dbs := make([]*DB, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Open: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	ms, _ := store.LoadMigrations(migrationFiles)
	if n, v := schemaVersion(t, dbs[0]); n != len(ms) || v != len(ms) {
		t.Errorf("schema_migrations has %d rows up to version %d, want %d", n, v, len(ms))
	}
	newTenant(t, dbs[replicas-1], "acme")
	if _, err := dbs[0].Tenant(t.Context(), "acme"); err != nil {
		t.Errorf("tenant created by one replica, read by another: %v", err)
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
	file := &fstest.MapFile{Data: []byte("CREATE TABLE t (x int);")}
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
			t.Errorf("%s: loadMigrations succeeded", name)
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
	db := openNew(t)
	ms, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for _, m := range ms {
		fsys["migrations/"+m.Name] = &fstest.MapFile{Data: []byte(m.SQL)}
	}
	bad := fmt.Sprintf("%04d_bad.sql", len(ms)+1)
	fsys["migrations/"+bad] = &fstest.MapFile{Data: []byte("CREATE TABLE extra (x integer); INSERT INTO no_such_table VALUES (1);")}
	if err := migrate(t.Context(), db.pool, fsys); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("migrate with a failing migration: %v, want an error naming it", err)
	}
	var extra *string
	if err := db.pool.QueryRow(t.Context(), `SELECT to_regclass('extra')::text`).Scan(&extra); err != nil {
		t.Fatal(err)
	}
	if extra != nil {
		t.Error("the failed migration's first statement was kept")
	}
	if _, v := schemaVersion(t, db); v != len(ms) {
		t.Errorf("schema version after failed migration = %d, want %d", v, len(ms))
	}
}

func TestOpenErrors(t *testing.T) {
	const password = "s3cret-pa55"
	for name, dsn := range map[string]string{
		"bad port":     "postgres://byok:" + password + "@localhost:notaport/byok",
		"bad keyword":  "host=/tmp password=" + password + " no_such_setting=1 pool_max_conns=x",
		"spaced '='":   "host=/tmp password = " + password + " sslmode=bogus",
		"spaced quote": "host=/tmp password = '" + password + "' port=x",
		"no server":    "host=/nonexistent/dir user=byok password=" + password + " dbname=byok connect_timeout=5",
		"refused port": "postgres://byok:" + password + "@127.0.0.1:1/byok?connect_timeout=5",
	} {
		db, err := Open(t.Context(), dsn)
		if err == nil {
			db.Close()
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("%s: error holds the password: %v", name, err)
		}
		if name == "spaced quote" && !strings.Contains(err.Error(), "invalid port") {
			t.Errorf("%s: error %q does not say what is wrong (invalid port)", name, err)
		}
	}
}

// TestSecondStatementFails makes the second statement of each
// multi-statement write fail with a trigger, and checks that the first
// one's effect is gone.
func TestSecondStatementFails(t *testing.T) {
	ctx := t.Context()
	const fail = `CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected failure'; END $$`
	injected := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("%s = %v, want the injected failure", what, err)
		}
		for _, sentinel := range []error{byok.ErrNotFound, byok.ErrExists, store.ErrConflict, byok.ErrInvalidInput} {
			if errors.Is(err, sentinel) {
				t.Errorf("%s: error %v wraps %v; a database failure wraps no sentinel", what, err, sentinel)
			}
		}
	}

	t.Run("CreateTenant", func(t *testing.T) {
		db := openNew(t)
		exec(t, db, fail)
		exec(t, db, `CREATE TRIGGER fail BEFORE INSERT ON tenant_keys FOR EACH ROW WHEN (NEW.epoch = 2) EXECUTE FUNCTION fail()`)
		err := db.CreateTenant(ctx, byok.TenantRecord{ID: "acme", Policy: byok.Grace},
			[]byok.TenantKeyRecord{tenantKey("acme", pm, 1), tenantKey("acme", cm, 2)})
		injected(t, "CreateTenant", err)
		if _, err := db.Tenant(ctx, "acme"); !errors.Is(err, byok.ErrNotFound) {
			t.Errorf("tenant after failed CreateTenant: %v, want ErrNotFound", err)
		}
		if ks, err := db.TenantKeys(ctx, "acme"); err != nil || len(ks) != 0 {
			t.Errorf("tenant keys after failed CreateTenant: %d, %v; want none", len(ks), err)
		}
	})

	t.Run("RewrapDEKs", func(t *testing.T) {
		db := openNew(t)
		newTenant(t, db, "acme")
		d1, d2 := dekN("acme", "bot", cm, 1, 1), dekN("acme", "bot", cm, 1, 2)
		for _, d := range []byok.DEKRecord{d1, d2} {
			if err := db.PutDEK(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		exec(t, db, fail)
		exec(t, db, fmt.Sprintf(`CREATE TRIGGER fail BEFORE UPDATE ON deks FOR EACH ROW WHEN (NEW.id = '\x%x') EXECUTE FUNCTION fail()`, d2.ID))
		r1, r2 := d1, d2
		r1.Epoch, r2.Epoch = 2, 2
		r1.Wrapped, r2.Wrapped = []byte("new"), []byte("new")
		injected(t, "RewrapDEKs", db.RewrapDEKs(ctx, []byok.DEKRecord{r1, r2}))
		got, err := db.DEK(ctx, d1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Epoch != 1 || string(got.Wrapped) == "new" {
			t.Errorf("first DEK after failed RewrapDEKs: epoch %d, rewrapped %t", got.Epoch, string(got.Wrapped) == "new")
		}
	})

	t.Run("MoveScope", func(t *testing.T) {
		db := openNew(t)
		newTenant(t, db, "acme")
		d := dekN("acme", "bot", pm, 1, 1)
		if err := db.PutDEK(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := db.PutScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: pm}); err != nil {
			t.Fatal(err)
		}
		exec(t, db, fail)
		exec(t, db, `CREATE TRIGGER fail BEFORE UPDATE ON deks FOR EACH ROW EXECUTE FUNCTION fail()`)
		r := d
		r.Kind, r.Epoch = cm, 2
		injected(t, "MoveScope", db.MoveScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: cm}, []byok.DEKRecord{r}))
		s, err := db.Scope(ctx, "acme", "bot")
		if err != nil {
			t.Fatal(err)
		}
		if s.Kind != pm {
			t.Errorf("scope kind after failed MoveScope = %v, want %v", s.Kind, pm)
		}
	})

	t.Run("ReplaceShare", func(t *testing.T) {
		db := openNew(t)
		newTenant(t, db, "acme")
		exec(t, db, fail)
		exec(t, db, `CREATE TRIGGER fail BEFORE UPDATE ON tenant_keys FOR EACH ROW EXECUTE FUNCTION fail()`)
		injected(t, "ReplaceShare", db.ReplaceShare(ctx, "acme", cm, 1, "local://prk/1", kms.Wrapped{KeyID: "local://prk/2"}))
		k, err := db.TenantKeyEpoch(ctx, "acme", cm, 1)
		if err != nil {
			t.Fatal(err)
		}
		if k.CustomerShare.KeyID != "local://prk/1" {
			t.Errorf("customer share after failed ReplaceShare is under %q", k.CustomerShare.KeyID)
		}
	})
}

// TestText checks that text PostgreSQL cannot store is invalid input,
// for writes and lookups alike, and that nothing is written.
func TestText(t *testing.T) {
	db := openNew(t)
	ctx := t.Context()
	newTenant(t, db, "acme")
	for _, bad := range []string{"a\x00b", "\xff\xfe"} {
		_, err := db.Tenant(ctx, bad)
		if !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("Tenant(%q): %v, want ErrInvalidInput", bad, err)
		}
		err = db.CreateTenant(ctx, byok.TenantRecord{ID: bad, Policy: byok.Grace}, nil)
		if !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("CreateTenant(%q): %v, want ErrInvalidInput", bad, err)
		}
		err = db.PutScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: bad, Kind: cm})
		if !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("PutScope(%q): %v, want ErrInvalidInput", bad, err)
		}
		k := tenantKey("acme", cm, 3)
		k.CustomerShare.KeyID = bad
		if err := db.PutTenantKey(ctx, k); !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("PutTenantKey with key id %q: %v, want ErrInvalidInput", bad, err)
		}
	}
	ts, err := db.ListTenants(ctx, "", 10)
	if err != nil || len(ts) != 1 {
		t.Errorf("tenants after invalid text: %+v, %v; want acme alone", ts, err)
	}
	if _, err := db.TenantKeyEpoch(ctx, "acme", cm, 3); !errors.Is(err, byok.ErrNotFound) {
		t.Errorf("tenant key with invalid key id was stored: %v", err)
	}
}

// TestReplicas runs 16 goroutines over two handles on one database, as
// two replicas would: every DEK insert is kept, and of racing
// compare-and-swaps from the same key version exactly one wins.
func TestReplicas(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	var dbs [2]*DB
	for i := range dbs {
		dbs[i] = open(t, dsn)
		defer dbs[i].Close()
	}
	newTenant(t, dbs[0], "acme")
	const workers, each = 16, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wins int
	errs := make(chan error, workers*(each+1))
	for w := range workers {
		db := dbs[w%2]
		wg.Go(func() {
			for i := range each {
				if err := db.PutDEK(ctx, dekN("acme", "bot", cm, 1, uint64(w*each+i))); err != nil {
					errs <- err
				}
			}
			err := db.ReplaceShare(ctx, "acme", pm, 1, "local://prk/1", kms.Wrapped{KeyID: fmt.Sprintf("local://prk/w%d", w)})
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, store.ErrConflict):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if wins != 1 {
		t.Errorf("%d of %d racing ReplaceShare from one version succeeded, want 1", wins, workers)
	}
	got, err := dbs[1].ListScopeDEKs(ctx, "acme", "bot", byok.DEKID{}, 2*workers*each)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != workers*each {
		t.Errorf("%d DEKs stored, want %d", len(got), workers*each)
	}
}

func TestCanceledContext(t *testing.T) {
	db := openNew(t)
	newTenant(t, db, "acme")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d := dekN("acme", "bot", pm, 1, 1)
	if err := db.PutDEK(ctx, d); !errors.Is(err, context.Canceled) {
		t.Errorf("PutDEK with canceled ctx: %v, want context.Canceled", err)
	}
	if err := db.RewrapDEKs(ctx, []byok.DEKRecord{d}); !errors.Is(err, context.Canceled) {
		t.Errorf("RewrapDEKs with canceled ctx: %v, want context.Canceled", err)
	}
	if _, err := db.Tenant(ctx, "acme"); !errors.Is(err, context.Canceled) {
		t.Errorf("Tenant with canceled ctx: %v, want context.Canceled", err)
	}
	if _, err := db.DEK(t.Context(), d.ID); !errors.Is(err, byok.ErrNotFound) {
		t.Errorf("DEK after canceled PutDEK: %v, want ErrNotFound", err)
	}
}

// putDEKs inserts n DEKs numbered from 0 under (tenant, kind, epoch) with
// COPY, and returns them. It then analyzes the table, as autovacuum would
// soon after such a load, so that queries are planned with statistics.
func putDEKs(t testing.TB, db *DB, tenant string, kind byok.KeyKind, epoch uint32, n int) []byok.DEKRecord {
	t.Helper()
	ds := make([]byok.DEKRecord, n)
	rows := make([][]any, n)
	for i := range ds {
		ds[i] = dekN(tenant, "bot", kind, epoch, uint64(i))
		d := &ds[i]
		rows[i] = []any{d.ID[:], d.Tenant, d.Scope, int16(d.Kind), int64(d.Epoch), d.Wrapped, d.Created.UnixNano()}
	}
	_, err := db.pool.CopyFrom(context.Background(), []string{"deks"},
		[]string{"id", "tenant", "scope", "kind", "epoch", "wrapped", "created"}, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatal(err)
	}
	exec(t, db, `ANALYZE deks`)
	return ds
}
