package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
)

// scheduleMany creates n tenants ("m0000", …) with scope a, configures
// each with keyID(i) (the fixture's key if nil), tests it and proceeds
// with one enforcement date an hour ahead, and returns their ids.
func (f *fixture) scheduleMany(n int, keyID func(i int) string) []string {
	f.t.Helper()
	ctx := context.Background()
	at := f.clock.Now().Add(time.Hour)
	var ids []string
	for i := range n {
		id := fmt.Sprintf("m%04d", i)
		if err := f.svc.CreateTenant(ctx, operator, id, byok.Grace, []string{"a"}); err != nil {
			f.t.Fatal(err)
		}
		s := f.settings()
		if keyID != nil {
			s.KeyID = keyID(i)
		}
		f.must(f.svc.Configure(ctx, admin, id, s))
		if r, err := f.svc.Test(ctx, admin, id); err != nil || !r.Passed() {
			f.t.Fatalf("Test %s: %+v, %v", id, r, err)
		}
		f.must(f.svc.Proceed(ctx, admin, id, at, nil))
		ids = append(ids, id)
	}
	return ids
}

func (f *fixture) stateOf(tenant string) lifecycle.State {
	f.t.Helper()
	ck, err := f.svc.Status(context.Background(), tenant)
	if err != nil {
		f.t.Fatal(err)
	}
	return ck.State
}

// TestActivationsNotCapped: tenants sharing an enforcement date are all
// activated by the first Tick on the date, however many there are: a
// tick used to run at most 1,000 jobs, and now lists them page after page
// (7 here, so 40 tenants take 6 pages).
func TestActivationsNotCapped(t *testing.T) {
	defer lifecycle.SetJobPage(7)()
	const n = 40
	f := newFixture(t, nil)
	ids := f.scheduleMany(n, nil)
	f.clock.Advance(time.Hour)
	f.tick()
	ctx := context.Background()
	active, err := f.db.ListKeyRecords(ctx, "", n+1, lifecycle.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != n {
		t.Fatalf("one Tick on the enforcement date activated %d of %d tenants", len(active), n)
	}
	if jobs, err := f.db.ListJobs(ctx, "", true, 10); err != nil || len(jobs) != 0 {
		t.Fatalf("unfinished jobs after the Tick: %d, %v", len(jobs), err)
	}
	for _, id := range ids {
		if ck := f.must(f.svc.Status(ctx, id)); ck.Job == nil || ck.Job.State != lifecycle.JobDone || ck.Job.Attempts != 0 {
			t.Fatalf("activation job of %s: %+v", id, ck.Job)
		}
	}
}

// TestMonitorOneCallPerTenant: the monitor checks each BYOK tenant with
// one unwrap of its customer share per check interval and none of the
// platform key; a tenant whose key a data call checked within the
// interval is not called; a check of a cached key keeps it valid for the
// data path; an idle tenant's revocation is detected at its next check.
func TestMonitorOneCallPerTenant(t *testing.T) {
	const n = 12
	ctx := context.Background()
	f := newFixture(t, nil)
	idle := f.customer.AddKey("idle")
	ids := f.scheduleMany(n, func(i int) string {
		if i == n-1 {
			return idle
		}
		return f.cmk + "/v1" // versioned: no Describe for auto-rotation
	})
	f.clock.Advance(time.Hour)
	f.tick() // activates every tenant
	for _, id := range ids {
		if st := f.stateOf(id); st != lifecycle.StateActive {
			t.Fatalf("%s is %s after the enforcement date", id, st)
		}
	}
	reset := func() {
		f.customer.ResetCalls()
		f.platform.ResetCalls()
	}
	calls := func(what string, unwraps, platform int64) {
		t.Helper()
		c, p := f.customer.Calls(), f.platform.Calls()
		if c.Unwrap != unwraps || p.Unwrap+p.Wrap != platform {
			t.Fatalf("%s: %d customer unwraps (%d describes) and %d platform calls, want %d and %d", what, c.Unwrap, c.Describe, p.Unwrap+p.Wrap, unwraps, platform)
		}
		reset()
	}

	// The activation checked every key a minute ago at most: one interval
	// on, the monitor calls each customer vault once, the platform never.
	f.clock.Advance(time.Minute)
	reset()
	f.tick()
	calls("first monitor pass", n, 0)
	f.tick()
	calls("a second Tick within the interval", 0, 0)

	// Half the tenants are used half an interval on: their data calls
	// check their keys (customer and platform share). At the end of the
	// interval the monitor spares them.
	f.clock.Advance(30 * time.Second)
	for _, id := range ids[:n/2] {
		if _, err := f.svc.Keyring().Encrypt(ctx, id, "a", []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	calls("data calls loading the keys", n/2, n/2) // and a platform unwrap each
	f.clock.Advance(30 * time.Second)
	before := f.svc.MonitorStats()
	f.tick()
	calls("monitor after data calls", n-n/2, 0)
	if st := f.svc.MonitorStats(); st.Skipped-before.Skipped != n/2 || st.Checks-before.Checks != n-n/2 {
		t.Errorf("monitor stats moved from %+v to %+v, want %d skipped and %d checked", before, st, n/2, n-n/2)
	}

	// Those keys are cached now; the monitor's next check of them (an
	// unwrap of the customer share only) keeps them valid: the data path
	// makes no call of its own.
	f.clock.Advance(30 * time.Second)
	f.tick()
	calls("monitor of the used tenants' cached keys", n/2, 0)
	for _, id := range ids[:n/2] {
		if _, err := f.svc.Keyring().Encrypt(ctx, id, "a", []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	calls("data calls after the monitor's check", 0, 0)

	// The idle tenant's key is revoked: its next check (one interval after
	// the last) detects it, and its data fails closed.
	f.customer.FailKey(idle, kms.Authoritative, kms.ReasonDenied)
	revokedAt := f.clock.Now()
	f.clock.Advance(30 * time.Second)
	f.tick()
	last := ids[n-1]
	if st := f.stateOf(last); st != lifecycle.StateRevoked {
		t.Fatalf("idle tenant after its key was revoked: %s", st)
	}
	tl, err := f.svc.Timeline(ctx, last, 1)
	if err != nil || len(tl) != 1 || tl[0].Kind != lifecycle.HealthRevoked || tl[0].DetectedAt.Sub(revokedAt) > time.Minute {
		t.Fatalf("timeline of the idle tenant: %+v, %v", tl, err)
	}
	if _, err := f.svc.Keyring().Encrypt(ctx, last, "a", []byte("x"), nil); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Encrypt for the revoked idle tenant: %v", err)
	}
	if st := f.stateOf(ids[0]); st != lifecycle.StateActive {
		t.Fatalf("another tenant is %s", st)
	}
}

// TestPrefetch: a new replica on the store warms every active tenant's
// customer key (one customer unwrap and one platform unwrap each), after
// which data calls make no provider call; requests are served while the
// warm-up waits on a slow vault.
func TestPrefetch(t *testing.T) {
	const n = 10
	ctx := context.Background()
	f := newFixture(t, nil)
	ids := f.scheduleMany(n, nil)
	f.clock.Advance(time.Hour)
	f.tick()
	// A second replica over the same store, with cold caches.
	svc, err := lifecycle.New(lifecycle.Config{Store: f.db, PlatformKMS: f.platform, PlatformKeyID: "fake:prk", Connectors: []lifecycle.Connector{f.conn},
		Now: f.clock.Now, Keyring: byok.Config{CheckInterval: time.Minute}, PrefetchWorkers: 2, ReplicaID: "replica-2"})
	if err != nil {
		t.Fatal(err)
	}
	// The customer's vault holds every call: the warm-up waits on it,
	// while a request on a platform-managed scope (new scope b) is served.
	f.customer.ResetCalls()
	gate := f.customer.Block()
	type result struct {
		st  lifecycle.PrefetchStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := svc.Prefetch(ctx)
		done <- result{st, err}
	}()
	<-gate.Entered()
	<-gate.Entered() // both workers wait at the vault
	if _, err := svc.Keyring().Encrypt(ctx, ids[0], "b", []byte("served"), nil); err != nil {
		t.Fatalf("a request during the warm-up: %v", err)
	}
	f.platform.ResetCalls() // no warm-up call reached the platform key yet: each waits on its customer unwrap
	gate.Release()
	r := <-done
	if r.err != nil || r.st.Tenants != n || r.st.Warm != n || r.st.Failed != 0 {
		t.Fatalf("Prefetch: %+v, %v", r.st, r.err)
	}
	if c, p := f.customer.Calls(), f.platform.Calls(); c.Unwrap != n || p.Unwrap != n {
		t.Fatalf("warming %d tenants made %d customer and %d platform unwraps", n, c.Unwrap, p.Unwrap)
	}
	f.customer.ResetCalls()
	f.platform.ResetCalls()
	for _, id := range ids {
		if _, err := svc.Keyring().Encrypt(ctx, id, "a", []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if c, p := f.customer.Calls(), f.platform.Calls(); c.Unwrap+c.Wrap != 0 || p.Unwrap != 0 {
		t.Fatalf("data calls after the warm-up made %d customer and %d platform unwraps", c.Unwrap+c.Wrap, p.Unwrap)
	}
}

// failingRecords is a store whose KeyRecord fails once armed, after
// letting pass the reads it was told to.
type failingRecords struct {
	lifecycle.Store
	armed atomic.Bool
	pass  atomic.Int32
}

func (s *failingRecords) KeyRecord(ctx context.Context, tenant string) (lifecycle.Record, error) {
	if s.armed.Load() && s.pass.Add(-1) < 0 {
		return lifecycle.Record{}, errors.New("the store is down")
	}
	return s.Store.KeyRecord(ctx, tenant)
}

// TestTickErrorNamesTheTenant: when the record of a tenant whose health
// just changed cannot be read again, the Tick's error names that tenant
// (it once named "", the tenant of the zero record the failed read
// returned).
func TestTickErrorNamesTheTenant(t *testing.T) {
	var st *failingRecords
	f := newFixture(t, func(c *lifecycle.Config) {
		st = &failingRecords{Store: c.Store}
		c.Store = st
	})
	f.activate(nil)
	f.customer.Fail(kms.Authoritative, kms.ReasonDenied)
	f.clock.Advance(2 * time.Minute)
	// The check resolves the tenant's provider (one read), finds the key
	// revoked and records it; the read of the record after that fails.
	st.pass.Store(1)
	st.armed.Store(true)
	err := f.svc.Tick(context.Background())
	if err == nil || !strings.Contains(err.Error(), `tenant "t1"`) {
		t.Fatalf("Tick with the store down after a revocation: %v, want an error that names tenant \"t1\"", err)
	}
}
