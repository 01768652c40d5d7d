package lifecycle_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/internal/fakeclock"
	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// counter is an Auditor that counts successful actions across replicas.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) Record(ctx context.Context, e audit.Event) (audit.Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[e.Action+"/"+string(e.Outcome)]++
	return e, nil
}

func (c *counter) count(action string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[action]
}

// pgReplicas is two services (replicas "a" and "b"), each with its own
// pool, over one PostgreSQL database, sharing the platform key, the
// customer's vault (a kmstest.Fake) and a fake clock.
type pgReplicas struct {
	a, b  *lifecycle.Service
	db    *postgres.DB // a's store
	clock *fakeclock.Clock
	conn  *connector
	audit *counter
	cmk   string
}

func newPGReplicas(t *testing.T) *pgReplicas {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	platform, customer := kmstest.NewFake(), kmstest.NewFake()
	r := &pgReplicas{clock: fakeclock.New(t0), audit: &counter{n: map[string]int{}}, cmk: customer.AddKey("cmk"),
		conn: &connector{f: customer}}
	prk := platform.AddKey("prk")
	open := func(id string) (*lifecycle.Service, *postgres.DB) {
		db, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		svc, err := lifecycle.New(lifecycle.Config{Store: db, PlatformKMS: platform, PlatformKeyID: prk, Connectors: []lifecycle.Connector{r.conn},
			Audit: r.audit, BatchSize: 100, Now: r.clock.Now, ReplicaID: id,
			Keyring: byok.Config{CheckInterval: time.Minute, DEKMaxMessages: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return svc, db
	}
	r.a, r.db = open("a")
	r.b, _ = open("b")
	return r
}

// schedule takes tenant from nothing to scheduled, with its enforcement
// date in an hour, on replica a.
func (r *pgReplicas) schedule(t *testing.T, tenant string) {
	t.Helper()
	ctx := context.Background()
	if err := r.a.CreateTenant(ctx, operator, tenant, byok.Grace, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.a.Configure(ctx, admin, tenant, azure.Settings(r.cmk, azure.Options{DirectoryID: "dir-1", ClientID: "app-1", Credential: azure.CredentialPlatformApp}, lifecycle.Secret{})); err != nil {
		t.Fatal(err)
	}
	if rep, err := r.a.Test(ctx, admin, tenant); err != nil || !rep.Passed() {
		t.Fatalf("Test: %+v, %v", rep, err)
	}
	if _, err := r.a.Proceed(ctx, admin, tenant, r.clock.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
}

// tickBoth runs both replicas' Tick at once and fails on either's error.
func (r *pgReplicas) tickBoth(t *testing.T) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, svc := range []*lifecycle.Service{r.a, r.b} {
		wg.Go(func() { errs[i] = svc.Tick(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Tick of replica %c: %v", 'a'+i, err)
		}
	}
}

// TestReplicasActivateOnce: tenants whose enforcement date passed, two
// replicas ticking at once: each tenant gets exactly one activation job,
// run by one replica, and ends active.
func TestReplicasActivateOnce(t *testing.T) {
	ctx := context.Background()
	r := newPGReplicas(t)
	const tenants = 6
	for i := range tenants {
		r.schedule(t, fmt.Sprintf("t%d", i))
	}
	r.clock.Advance(time.Hour)
	r.tickBoth(t)
	for i := range tenants {
		tenant := fmt.Sprintf("t%d", i)
		jobs, err := r.db.ListJobs(ctx, tenant, false, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 || jobs[0].Kind != lifecycle.JobActivate || jobs[0].State != lifecycle.JobDone || jobs[0].Attempts != 0 {
			t.Fatalf("jobs of %s = %+v; want one activation, done at the first attempt", tenant, jobs)
		}
		for _, svc := range []*lifecycle.Service{r.a, r.b} {
			ck, err := svc.Status(ctx, tenant)
			if err != nil || ck.State != lifecycle.StateActive || ck.Epoch != 1 {
				t.Fatalf("status of %s = %+v, %v; want active at epoch 1", tenant, ck, err)
			}
		}
	}
	if n := r.audit.count("key.activate/success"); n != tenants {
		t.Fatalf("%d key.activate events for %d tenants", n, tenants)
	}
	if n := r.audit.count("job.activate/success"); n != tenants {
		t.Fatalf("%d job.activate events for %d tenants", n, tenants)
	}
}

// TestReplicasRekeyOnce: a re-key of a tenant with a few thousand DEKs,
// both replicas ticking at once: one replica runs the job, the other
// skips it quietly; the job finishes once, with no failed attempt, and
// every DEK is under the new epoch and decrypts on either replica.
func TestReplicasRekeyOnce(t *testing.T) {
	ctx := context.Background()
	r := newPGReplicas(t)
	r.schedule(t, "t1")
	r.clock.Advance(time.Hour)
	r.tickBoth(t)
	const deks = 2500
	cts := make([][]byte, deks)
	for i := range cts {
		ct, err := r.a.Keyring().Encrypt(ctx, "t1", "a", []byte(fmt.Sprint(i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		cts[i] = ct
	}
	j, err := r.a.Rekey(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if j.Total != deks {
		t.Fatalf("re-key job counts %d DEKs, want %d", j.Total, deks)
	}
	r.tickBoth(t)
	got, err := r.db.JobRecord(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != lifecycle.JobDone || got.Done != deks || got.Attempts != 0 || got.Error != "" || !got.LeaseUntil.IsZero() ||
		(got.Owner != "a" && got.Owner != "b") {
		t.Fatalf("re-key job = %+v; want done once, all %d DEKs, no failed attempt, lease released", got, deks)
	}
	if n := r.audit.count("job.rekey/success"); n != 1 {
		t.Fatalf("%d job.rekey events, want 1", n)
	}
	if n, err := r.db.CountDEKs(ctx, "t1", byok.CustomerManaged, got.Epoch, ""); err != nil || n != 0 {
		t.Fatalf("%d DEKs left below epoch %d, %v", n, got.Epoch, err)
	}
	if n, err := r.db.CountDEKs(ctx, "t1", byok.CustomerManaged, got.Epoch+1, ""); err != nil || n != deks {
		t.Fatalf("%d DEKs under epoch %d, want %d, %v", n, got.Epoch, deks, err)
	}
	for _, svc := range []*lifecycle.Service{r.a, r.b} {
		svc.Keyring().Forget("t1")
		if ck, err := svc.Status(ctx, "t1"); err != nil || ck.State != lifecycle.StateActive {
			t.Fatalf("status after the re-key = %+v, %v", ck, err)
		}
		for i, ct := range cts {
			pt, err := svc.Keyring().Decrypt(ctx, "t1", "a", ct, nil)
			if err != nil || string(pt) != fmt.Sprint(i) {
				t.Fatalf("Decrypt #%d after the re-key: %q, %v", i, pt, err)
			}
		}
	}
}
