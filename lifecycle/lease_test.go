package lifecycle_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle"
)

// hookStore is a lifecycle.Store that runs a hook once, before the first
// call of a method, to interleave another replica deterministically.
type hookStore struct {
	lifecycle.Store
	beforeBatch    func()
	beforeListJobs func()
	once           sync.Once
}

func (h *hookStore) RewrapBatch(ctx context.Context, s *byok.ScopeRecord, recs []byok.DEKRecord, j lifecycle.JobRecord) error {
	if h.beforeBatch != nil {
		h.once.Do(h.beforeBatch)
	}
	return h.Store.RewrapBatch(ctx, s, recs, j)
}

func (h *hookStore) ListJobs(ctx context.Context, tenant string, unfinished bool, limit int) ([]lifecycle.JobRecord, error) {
	if h.beforeListJobs != nil && tenant != "" {
		h.once.Do(h.beforeListJobs)
	}
	return h.Store.ListJobs(ctx, tenant, unfinished, limit)
}

// replica returns a second service over the fixture's store and keys.
func (f *fixture) replica(id string) *lifecycle.Service {
	f.t.Helper()
	svc, err := lifecycle.New(lifecycle.Config{Store: f.db, PlatformKMS: f.platform, PlatformKeyID: "fake:prk", Connectors: []lifecycle.Connector{f.conn},
		Audit: f.audit, PlatformOnlyScopes: []string{"cache"}, BatchSize: 7, Now: f.clock.Now, ReplicaID: id,
		Keyring: byok.Config{CheckInterval: time.Minute}})
	if err != nil {
		f.t.Fatal(err)
	}
	return svc
}

func (f *fixture) job(id string) lifecycle.JobRecord {
	f.t.Helper()
	j, err := f.db.JobRecord(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return j
}

// TestJobLeasedElsewhereIsSkipped: a job another replica holds is left
// alone, without an error or an attempt, until its lease ends; then this
// replica takes it over, finishes it and releases the lease.
func TestJobLeasedElsewhereIsSkipped(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.activate(nil)
	cts := f.encrypt("a", 20)
	j, err := f.svc.Rekey(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if _, ok, err := f.db.ClaimJob(ctx, j.ID, "replica-2", now, now.Add(lifecycle.DefaultJobLease)); err != nil || !ok {
		t.Fatalf("claim by replica-2: %v, %v", ok, err)
	}
	f.tick()
	if got := f.job(j.ID); got.Owner != "replica-2" || got.Done != 0 || got.Attempts != 0 || got.State != lifecycle.JobPending {
		t.Fatalf("job run while replica-2 held it: %+v", got)
	}
	f.clock.Advance(lifecycle.DefaultJobLease)
	f.tick()
	got := f.job(j.ID)
	if got.State != lifecycle.JobDone || got.Owner != lifecycle.DefaultReplicaID || !got.LeaseUntil.IsZero() || got.Attempts != 0 || got.Done != got.Total {
		t.Fatalf("job after replica-2's lease ended: %+v", got)
	}
	f.wantState(lifecycle.StateActive)
	f.decryptAll("a", cts)
}

// TestLostLeaseStopsTheRun: a replica that stalled past its lease while
// another took the job over has its next batch refused as a whole; it
// stops quietly without counting an attempt, and the new owner finishes.
func TestLostLeaseStopsTheRun(t *testing.T) {
	ctx := context.Background()
	hs := &hookStore{}
	const lease = time.Minute
	f := newFixture(t, func(c *lifecycle.Config) {
		hs.Store, c.Store, c.JobLease = c.Store, hs, lease
		c.Keyring.DEKMaxMessages = 1 // a DEK per message
	})
	f.activate(nil)
	cts := f.encrypt("a", 30) // 30 DEKs: batches of 7
	j, err := f.svc.Rekey(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	hs.beforeBatch = func() {
		// The first batch is ready; the replica stalls past its lease and
		// replica-2 claims the job.
		f.clock.Advance(lease)
		now := f.clock.Now()
		if _, ok, err := f.db.ClaimJob(ctx, j.ID, "replica-2", now, now.Add(lease)); err != nil || !ok {
			t.Errorf("takeover by replica-2: %v, %v", ok, err)
		}
	}
	f.tick()
	got := f.job(j.ID)
	if got.Owner != "replica-2" || got.Done != 0 || got.Attempts != 0 || got.Error != "" || got.State == lifecycle.JobDone {
		t.Fatalf("job after the stalled replica's refused batch: %+v", got)
	}
	if n, err := f.db.CountDEKs(ctx, "t1", byok.CustomerManaged, got.Epoch, ""); err != nil || n != 30 {
		t.Fatalf("a refused batch moved DEKs: %d of 30 left below the new epoch, %v", n, err)
	}
	if err := f.replica("replica-2").Tick(ctx); err != nil {
		t.Fatalf("replica-2 Tick: %v", err)
	}
	got = f.job(j.ID)
	if got.State != lifecycle.JobDone || got.Owner != "replica-2" || got.Attempts != 0 || got.Done != 30 || !got.LeaseUntil.IsZero() {
		t.Fatalf("job after replica-2 ran it: %+v", got)
	}
	f.decryptAll("a", cts)
}

// TestSchedulerStartsOneActivation: replica-2 ticks (and activates the
// tenant) between this replica's reading the scheduled record and its
// listing of the tenant's jobs; the record CAS of StartJob keeps this
// replica from starting a second activation.
func TestSchedulerStartsOneActivation(t *testing.T) {
	ctx := context.Background()
	hs := &hookStore{}
	f := newFixture(t, func(c *lifecycle.Config) { hs.Store, c.Store = c.Store, hs })
	f.createTenant()
	f.must(f.svc.Configure(ctx, admin, "t1", f.settings()))
	if r, err := f.svc.Test(ctx, admin, "t1"); err != nil || !r.Passed() {
		t.Fatalf("Test: %+v, %v", r, err)
	}
	f.must(f.svc.Proceed(ctx, admin, "t1", f.clock.Now().Add(time.Hour), nil))
	f.clock.Advance(time.Hour)
	hs.beforeListJobs = func() {
		if err := f.replica("replica-2").Tick(ctx); err != nil {
			t.Errorf("replica-2 Tick: %v", err)
		}
	}
	f.tick()
	f.wantState(lifecycle.StateActive)
	jobs, err := f.db.ListJobs(ctx, "t1", false, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Kind != lifecycle.JobActivate || jobs[0].State != lifecycle.JobDone || jobs[0].Owner != "replica-2" {
		t.Fatalf("jobs of t1 = %+v; want one activation, done by replica-2", jobs)
	}
	if n := f.audit.actions()["key.activate/success"]; n != 1 {
		t.Fatalf("%d key.activate events, want 1", n)
	}
	if st := f.status(); st.Epoch != 1 {
		t.Fatalf("customer-managed epoch after activation = %d, want 1", st.Epoch)
	}
}

// A record left "rotating" with no job is a rotation interrupted by a
// crash, and the next Tick puts it back to active — but not while the
// rotation may still be running on another replica (it runs in the admin's
// request, without a job): only once the record is a job lease old.
func TestInterruptedRotationRecovered(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.activate(nil)
	rec, err := f.db.KeyRecord(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	rec.State, rec.Updated = lifecycle.StateRotating, f.clock.Now()
	rec.Version++
	if err := f.db.PutKeyRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	f.tick()
	f.wantState(lifecycle.StateRotating)
	f.clock.Advance(lifecycle.DefaultJobLease)
	f.tick()
	f.wantState(lifecycle.StateActive)
}
