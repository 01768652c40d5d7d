package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
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

// activeOwnKeys creates n tenants as scheduleMany does, each on a key of
// its own in the customer vault (named prefix and its index, pinned to
// its first version), and activates them; it returns their ids and the
// versionless ids of their keys.
func (f *fixture) activeOwnKeys(n int, prefix string) (ids, keys []string) {
	f.t.Helper()
	keys = make([]string, n)
	ids = f.scheduleMany(n, func(i int) string {
		keys[i] = f.customer.AddKey(fmt.Sprintf("%s%d", prefix, i))
		return keys[i] + "/v1"
	})
	f.clock.Advance(time.Hour)
	f.tick()
	return ids, keys
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

// vaultSpy is a customer vault over a fake that counts the Unwraps and
// Describes started, by versionless key id, and holds the Unwraps of the
// keys held says until release is closed.
type vaultSpy struct {
	*kmstest.Fake
	held    func(key string) bool // nil holds nothing
	release chan struct{}
	entered chan string // the key of each held Unwrap as it starts waiting

	// inFlight counts the held keys' Unwraps between their start and
	// their return (held or not: after release they pass); maxInFlight is
	// its highest value.
	inFlight, maxInFlight atomic.Int64

	mu    sync.Mutex
	calls map[string]int
}

func newVaultSpy(f *kmstest.Fake, held func(key string) bool) *vaultSpy {
	return &vaultSpy{Fake: f, held: held, release: make(chan struct{}), entered: make(chan string, 1000), calls: make(map[string]int)}
}

func (v *vaultSpy) record(keyID string) string {
	key, _, _ := strings.Cut(keyID, "/")
	v.mu.Lock()
	v.calls[key]++
	v.mu.Unlock()
	return key
}

// callsOf returns the calls started on key so far.
func (v *vaultSpy) callsOf(key string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls[key]
}

func (v *vaultSpy) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	key := v.record(w.KeyID)
	if v.held == nil || !v.held(key) {
		return v.Fake.Unwrap(ctx, w)
	}
	n := v.inFlight.Add(1)
	defer v.inFlight.Add(-1)
	for m := v.maxInFlight.Load(); n > m && !v.maxInFlight.CompareAndSwap(m, n); m = v.maxInFlight.Load() {
	}
	v.entered <- key
	select {
	case <-v.release:
	case <-ctx.Done(): // the fake fails the call
	}
	return v.Fake.Unwrap(ctx, w)
}

func (v *vaultSpy) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	v.record(keyID)
	return v.Fake.Describe(ctx, keyID)
}

// spyConnector is the fixture's connector whose providers are one spy.
type spyConnector struct {
	*connector
	vault *vaultSpy
}

func (c spyConnector) Provider(ctx context.Context, s lifecycle.KeySettings) (kms.Provider, error) {
	return c.vault, nil
}

// monitorLists is a store that counts the listings of Run's monitor (of
// active, revoked and rotating records).
type monitorLists struct {
	lifecycle.Store
	n atomic.Int64
}

func (s *monitorLists) ListKeyRecords(ctx context.Context, after string, limit int, states ...lifecycle.State) ([]lifecycle.Record, error) {
	if slices.Equal(states, []lifecycle.State{lifecycle.StateActive, lifecycle.StateRevoked, lifecycle.StateRotating}) {
		s.n.Add(1)
	}
	return s.Store.ListKeyRecords(ctx, after, limit, states...)
}

// TestRunMonitorSchedule: on a clock the test moves (a 5 s check
// interval: Run's monitor steps every 50 ms of real time and looks two
// steps early), Run's monitor
//
//   - visits the tenants at random moments of the first interval after
//     the warm-up: some in its first half, not all (16 tenants: each
//     half holds at least one but for a chance of 2 in 2^16);
//   - checks each tenant again one interval after its own last check, at
//     one step before the interval is up at the latest (so that stepping
//     late still keeps two checks within an interval), and not at half
//     an interval;
//   - unwraps the customer share only, once per check, and never the
//     platform key (the keys are versioned: no Describe).
func TestRunMonitorSchedule(t *testing.T) {
	const (
		n        = 16
		interval = 5 * time.Second
		step     = interval / 100 // Run's monitor's step for this interval
	)
	f := newFixture(t, nil)
	ids, keys := f.activeOwnKeys(n, "sched")
	spy := newVaultSpy(f.customer, nil)
	f.customer.ResetCalls()
	f.platform.ResetCalls()
	lists := &monitorLists{Store: f.db}
	svc, err := lifecycle.New(lifecycle.Config{Store: lists, PlatformKMS: f.platform, PlatformKeyID: "fake:prk",
		Connectors: []lifecycle.Connector{spyConnector{f.conn, spy}}, ReplicaID: "runner",
		Now: f.clock.Now, Keyring: byok.Config{CheckInterval: interval}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10 s after its context was canceled")
		}
	}()

	calls := func() (c []int) {
		for _, key := range keys {
			c = append(c, spy.callsOf(key))
		}
		return c
	}
	// lastCheck returns when each tenant's customer key last succeeded.
	lastCheck := func() (ts []time.Time) {
		for _, id := range ids {
			var last time.Time
			for _, h := range svc.Keyring().Health(id) {
				if h.Kind == byok.CustomerManaged && h.State == byok.StateHealthy {
					last = h.LastSuccess
				}
			}
			ts = append(ts, last)
		}
		return ts
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 20 s; monitor %+v, calls per tenant %v", what, svc.MonitorStats(), calls())
			}
		}
	}
	// settled waits ten steps, then until every call started is counted
	// as a check, and returns the number of checks.
	settled := func(warmup int) int {
		time.Sleep(10 * step)
		var checks int64
		waitFor("every call counted", func() bool {
			sum := 0
			for _, c := range calls() {
				sum += c
			}
			checks = svc.MonitorStats().Checks
			return int64(sum) == int64(warmup)+checks
		})
		if st := svc.MonitorStats(); st.Skipped != 0 {
			t.Fatalf("the monitor spared %d checks", st.Skipped)
		}
		return int(checks)
	}
	wantCalls := func(what string, want func(i int) int) {
		t.Helper()
		c := calls()
		for i := range n {
			if c[i] != want(i) {
				t.Fatalf("%s: customer-vault calls per tenant %v, want %d for tenant %d", what, c, want(i), i)
			}
		}
	}

	// The warm-up loads every key at once (the clock stands still until
	// it is done), and the monitor lists the tenants.
	t0 := f.clock.Now()
	waitFor("the warm-up and the monitor's listing", func() bool {
		return !slices.Contains(lastCheck(), time.Time{}) && lists.n.Load() > 0
	})
	wantCalls("warm-up", func(int) int { return 1 })

	// Half the first interval on, the monitor visited some tenants, not
	// all; by its end, every one.
	f.clock.Advance(interval / 2)
	waitFor("a first visit in the first half of the first interval", func() bool { return svc.MonitorStats().Checks > 0 })
	early := settled(n)
	if early == n {
		t.Fatalf("the monitor visited all %d tenants in the first half of the first interval: its first visits are not spread", n)
	}
	f.clock.Advance(interval / 2)
	waitFor("first visits", func() bool { return svc.MonitorStats().Checks == n })
	wantCalls("first visits", func(int) int { return 2 })
	last := lastCheck()
	var group []bool // checked in the first half
	for i := range n {
		group = append(group, last[i].Equal(t0.Add(interval/2)))
		if !group[i] && !last[i].Equal(t0.Add(interval)) {
			t.Fatalf("tenant %d last checked at %v, want the first interval's middle or end", i, last[i].Sub(t0))
		}
	}

	// One step before an interval is up for the tenants checked early
	// (half an interval after the others' checks), the monitor checks
	// those and only those.
	f.clock.Set(t0.Add(interval/2 + interval - step))
	waitFor("the early tenants' second checks", func() bool { return svc.MonitorStats().Checks == int64(n+early) })
	if checks := settled(n); checks != n+early {
		t.Fatalf("one step before an interval is up for %d of %d tenants, the monitor made %d checks, want %d", early, n, checks-n, early)
	}
	wantCalls("the early tenants' second checks", func(i int) int { return map[bool]int{true: 3, false: 2}[group[i]] })
	// One step before an interval is up for the others, them.
	f.clock.Set(t0.Add(interval + interval - step))
	waitFor("the other tenants' second checks", func() bool { return svc.MonitorStats().Checks == 2*n })
	wantCalls("second checks", func(int) int { return 3 })

	if c, p := f.customer.Calls(), f.platform.Calls(); c.Describe != 0 || c.Wrap != 0 || p.Unwrap != n || p.Wrap != 0 {
		t.Fatalf("customer vault %+v, platform key %+v: want no Describe or Wrap, and only the warm-up's %d platform unwraps", c, p, n)
	}
}

// TestPrefetchServesRequestsWhileWorkersWait: a request for a BYOK tenant
// on its customer-managed scope is served while every prefetch worker
// waits on a slow customer vault — it loads its tenant's key itself,
// not queued behind the warm-up —, and the warm-up never has more than
// PrefetchWorkers customer-vault calls in flight.
func TestPrefetchServesRequestsWhileWorkersWait(t *testing.T) {
	const (
		n       = 10
		workers = 2
	)
	ctx := context.Background()
	f := newFixture(t, nil)
	ids, keys := f.activeOwnKeys(n, "pre")
	// The warm-up takes the tenants in order: the request is for the last
	// one, whose key the vault serves; it holds every other key's calls.
	target, targetKey := ids[n-1], keys[n-1]
	spy := newVaultSpy(f.customer, func(key string) bool { return key != targetKey })
	svc, err := lifecycle.New(lifecycle.Config{Store: f.db, PlatformKMS: f.platform, PlatformKeyID: "fake:prk",
		Connectors: []lifecycle.Connector{spyConnector{f.conn, spy}}, Now: f.clock.Now,
		Keyring: byok.Config{CheckInterval: time.Minute}, PrefetchWorkers: workers, ReplicaID: "replica-2"})
	if err != nil {
		t.Fatal(err)
	}
	f.customer.ResetCalls()
	type result struct {
		st  lifecycle.PrefetchStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := svc.Prefetch(ctx)
		done <- result{st, err}
	}()
	released := false
	defer func() {
		if !released {
			close(spy.release)
		}
	}()
	for range workers {
		select {
		case <-spy.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the warm-up's workers did not reach the vault")
		}
	}

	// Every worker waits at the vault: the request is served meanwhile.
	served := make(chan error, 1)
	var ct []byte
	go func() {
		var err error
		ct, err = svc.Keyring().Encrypt(ctx, target, "a", []byte("served"), nil)
		served <- err
	}()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("a request during the warm-up: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request for a BYOK tenant waited 10 s behind the warm-up")
	}
	if got := spy.callsOf(targetKey); got != 1 {
		t.Fatalf("the request made %d calls to its tenant's customer vault, want 1 (its own load)", got)
	}
	select {
	case r := <-done:
		t.Fatalf("the warm-up ended while its workers were held: %+v, %v", r.st, r.err)
	default:
	}
	if in, queued := spy.inFlight.Load(), len(spy.entered); in != workers || queued != 0 {
		t.Fatalf("while the request was served, the warm-up had %d vault calls in flight (%d more held), want %d", in, queued, workers)
	}

	close(spy.release)
	released = true
	r := <-done
	if r.err != nil || r.st.Tenants != n || r.st.Warm != n || r.st.Failed != 0 {
		t.Fatalf("Prefetch: %+v, %v", r.st, r.err)
	}
	if m := spy.maxInFlight.Load(); m != workers {
		t.Fatalf("the warm-up had up to %d customer-vault calls in flight, want %d (PrefetchWorkers)", m, workers)
	}
	if c := f.customer.Calls(); c.Unwrap != n {
		t.Fatalf("the warm-up and the request made %d customer unwraps for %d tenants, want one each", c.Unwrap, n)
	}
	// The request used the tenant's customer-managed key: the first
	// replica, which holds that key, decrypts it.
	if ck := f.must(f.svc.Status(ctx, target)); len(ck.Scopes) != 1 || ck.Scopes[0].Kind != byok.CustomerManaged {
		t.Fatalf("scopes of %s: %+v, want a customer-managed", target, ck.Scopes)
	}
	if pt, err := f.svc.Keyring().Decrypt(ctx, target, "a", ct, nil); err != nil || string(pt) != "served" {
		t.Fatalf("Decrypt of the request's ciphertext: %q, %v", pt, err)
	}
}
