package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/lifecycle/lifecycletest"
	"github.com/openbyok/byok/store/sqlite"
)

// MonitorOptions configures [MeasureMonitor]. Zero fields take the
// defaults of issue 11: 10,000 BYOK tenants, 20 ms vault latency, a 60 s
// check interval.
type MonitorOptions struct {
	Dir             string        // where the SQLite store goes (tmpfs keeps the setup short)
	Tenants         int           // BYOK tenants, each with its own key
	Latency         time.Duration // of every call to a customer's vault
	PlatformLatency time.Duration // of every call to the platform key; default Latency
	Interval        time.Duration // the keyring's check interval
	// Progress, if set, receives a line per phase.
	Progress io.Writer
}

func (o *MonitorOptions) defaults() {
	if o.Tenants <= 0 {
		o.Tenants = 10_000
	}
	if o.Latency <= 0 {
		o.Latency = 20 * time.Millisecond
	}
	if o.PlatformLatency <= 0 {
		o.PlatformLatency = o.Latency
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
}

// MonitorResult is what [MeasureMonitor] measured.
type MonitorResult struct {
	Options MonitorOptions
	// Setup is the time to create, configure, test and schedule the
	// tenants with one enforcement date (no vault latency);
	// Activation the one Tick on that date that activated them all.
	Setup, Activation time.Duration
	Activated         int

	// Cold start of a new replica: Prefetch warmed Warm tenants' keys in
	// PrefetchTook; a request for a cold tenant made at the start of the
	// warm-up was served in ServedDuringWarmup.
	PrefetchTook       time.Duration
	Warm               int
	ServedDuringWarmup time.Duration

	// PassTook is one Tick of a replica whose every tenant is due: the
	// monitor's capacity (the checks are concurrent).
	PassTook time.Duration

	// WarmUnderRun is how long Run took to load every tenant's key (its
	// warm-up and the monitor's first visits, together).
	WarmUnderRun time.Duration

	// Under Run, over its second interval (the first holds the warm-up
	// and one extra check per tenant, to spread the checks): how many
	// tenants were checked (each once is the goal), the customer-vault
	// calls per tenant, and the longest time between two checks of one
	// tenant over the whole run.
	CheckedInInterval int
	CallsPerTenant    float64
	MaxGap            time.Duration
	// Detection is the time from the revocation of an idle tenant's key,
	// made just after its check (the worst moment), to its detection.
	Detection time.Duration
}

// checkLog records, per tenant, when each unwrap of its customer share
// succeeded: the connector's providers record into it.
type checkLog struct {
	mu    sync.Mutex
	at    map[string][]time.Time
	calls atomic.Int64
}

func (l *checkLog) add(tenant string, t time.Time) {
	l.mu.Lock()
	l.at[tenant] = append(l.at[tenant], t)
	l.mu.Unlock()
}

// loggedProvider is a tenant's provider over the shared fake, recording
// its successful unwraps.
type loggedProvider struct {
	*kmstest.Fake
	tenant string
	log    *checkLog
}

func (p loggedProvider) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	p.log.calls.Add(1)
	b, err := p.Fake.Unwrap(ctx, w)
	if err == nil {
		p.log.add(p.tenant, time.Now())
	}
	return b, err
}

// monitorConnector reaches every key of one fake; Test always passes.
type monitorConnector struct {
	lifecycletest.AzureRules
	f   *kmstest.Fake
	log *checkLog
}

func (c *monitorConnector) Provider(ctx context.Context, s lifecycle.KeySettings) (kms.Provider, error) {
	return loggedProvider{c.f, s.Tenant, c.log}, nil
}

func (c *monitorConnector) Test(ctx context.Context, s lifecycle.KeySettings) (lifecycle.Report, error) {
	return lifecycle.Report{KeyID: s.KeyID, Checks: []lifecycle.Check{{Name: "round-trip", Outcome: lifecycle.Pass}}}, nil
}

// MeasureMonitor measures the health monitor and the cold start of issue
// 11 on the real service over SQLite, with in-memory providers whose
// calls take the given latency:
//
//  1. N BYOK tenants sharing one enforcement date are activated by one
//     Tick (no cap on the jobs of a tick);
//  2. a new replica's Prefetch warms every tenant's key, while a request
//     for a cold tenant is served (not queued);
//  3. a new replica's Tick checks every tenant once (the monitor's
//     capacity: pass time);
//  4. a new replica's Run checks every tenant within its second interval,
//     once; an idle tenant's key revoked just after its check is
//     detected (the worst case: an interval later).
//
// Keys are versioned ids, so that the counted calls are the health
// checks only (a versionless key adds one Describe per tenant per
// lifecycle.Config.VersionCheckInterval). It takes about four intervals
// plus the setup.
func MeasureMonitor(ctx context.Context, o MonitorOptions) (MonitorResult, error) {
	o.defaults()
	r := MonitorResult{Options: o}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	db, err := sqlite.Open(ctx, filepath.Join(o.Dir, "monitor.db"))
	if err != nil {
		return r, err
	}
	defer db.Close()
	platform, customer := kmstest.NewFake(), kmstest.NewFake()
	prk := platform.AddKey("prk")
	log := &checkLog{at: make(map[string][]time.Time)}
	conn := &monitorConnector{f: customer, log: log}
	var revokedAt atomic.Int64 // Unix ns of the first revocation event
	newService := func(replica string) (*lifecycle.Service, error) {
		return lifecycle.New(lifecycle.Config{
			Store: db, PlatformKMS: platform, PlatformKeyID: prk, Connectors: []lifecycle.Connector{conn}, ReplicaID: replica,
			Keyring: byok.Config{CheckInterval: o.Interval, MaxTenantKeys: -1, OnEvent: func(e byok.Event) {
				if e.Type == byok.EventRevoked {
					revokedAt.CompareAndSwap(0, e.At.UnixNano())
				}
			}},
		})
	}

	// 1. Setup and activation.
	svc, err := newService("setup")
	if err != nil {
		return r, err
	}
	start := time.Now()
	var enforceAt time.Time
	tenants := make([]string, o.Tenants)
	keys := make([]string, o.Tenants)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("t%05d", i)
		keys[i] = customer.AddKey("k" + tenants[i])
		if err := svc.CreateTenant(ctx, benchOperator, tenants[i], byok.Grace, []string{"a"}); err != nil {
			return r, err
		}
		s := azure.Settings(keys[i]+"/v1", azure.Options{DirectoryID: "dir", ClientID: "app", Credential: azure.CredentialPlatformApp}, lifecycle.Secret{})
		if _, err := svc.Configure(ctx, benchAdmin, tenants[i], s); err != nil {
			return r, err
		}
		if _, err := svc.Test(ctx, benchAdmin, tenants[i]); err != nil {
			return r, err
		}
		enforceAt = time.Now().Add(2 * time.Second) // the store keeps whole seconds
		if _, err := svc.Proceed(ctx, benchAdmin, tenants[i], enforceAt, nil); err != nil {
			return r, err
		}
	}
	r.Setup = time.Since(start)
	progress("setup: %d tenants scheduled in %v", o.Tenants, r.Setup.Round(time.Millisecond))
	time.Sleep(time.Until(enforceAt) + time.Second) // the last enforcement date passes
	start = time.Now()
	if err := svc.Tick(ctx); err != nil {
		return r, err
	}
	r.Activation = time.Since(start)
	active, err := db.ListKeyRecords(ctx, "", o.Tenants+1, lifecycle.StateActive)
	if err != nil {
		return r, err
	}
	r.Activated = len(active)
	progress("activation: %d of %d tenants activated by one Tick in %v", r.Activated, o.Tenants, r.Activation.Round(time.Millisecond))
	customer.SetLatency(o.Latency)
	platform.SetLatency(o.PlatformLatency)

	// 2. Cold start: Prefetch, and a request for the tenant it reaches last.
	cold, err := newService("cold-start")
	if err != nil {
		return r, err
	}
	done := make(chan lifecycle.PrefetchStats, 1)
	start = time.Now()
	go func() {
		st, _ := cold.Prefetch(ctx)
		done <- st
	}()
	time.Sleep(o.Latency / 2)
	reqStart := time.Now()
	if _, err := cold.Keyring().Encrypt(ctx, tenants[o.Tenants-1], "a", []byte("request"), nil); err != nil {
		return r, fmt.Errorf("a request during the warm-up: %w", err)
	}
	r.ServedDuringWarmup = time.Since(reqStart)
	st := <-done
	r.PrefetchTook, r.Warm = st.Took, st.Warm
	progress("cold start: %d of %d keys warm in %v; a request for a cold tenant meanwhile took %v", r.Warm, o.Tenants,
		r.PrefetchTook.Round(time.Millisecond), r.ServedDuringWarmup.Round(time.Millisecond))

	// 3. The monitor's capacity: every tenant due at once.
	pass, err := newService("pass")
	if err != nil {
		return r, err
	}
	start = time.Now()
	if err := pass.Tick(ctx); err != nil {
		return r, err
	}
	r.PassTook = time.Since(start)
	progress("monitor pass: %d tenants checked by one Tick in %v (%d vault calls)", o.Tenants, r.PassTook.Round(time.Millisecond), pass.MonitorStats().Checks)

	// 4. Run: warm-up, one interval observed, then a revocation.
	runner, err := newService("run")
	if err != nil {
		return r, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan struct{})
	go func() { runner.Run(runCtx); close(ran) }()
	defer func() { stop(); <-ran }()
	runStart := time.Now()
	// The warm-up is over once every tenant has a check since Run started.
	for {
		n := 0
		log.mu.Lock()
		for _, t := range tenants {
			if ts := log.at[t]; len(ts) > 0 && ts[len(ts)-1].After(runStart) {
				n++
			}
		}
		log.mu.Unlock()
		if n == o.Tenants {
			break
		}
		if time.Since(runStart) > 2*o.Interval+time.Minute {
			return r, fmt.Errorf("warm-up under Run: %d of %d tenants loaded after %v", n, o.Tenants, time.Since(runStart))
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return r, err
		}
	}
	r.WarmUnderRun = time.Since(runStart)
	// The first interval holds the warm-up and the monitor's first visits
	// (one extra call per tenant, at a random moment): observe the next.
	if err := sleep(ctx, time.Until(runStart.Add(o.Interval))); err != nil {
		return r, err
	}
	from := time.Now()
	calls0 := log.calls.Load()
	if err := sleep(ctx, o.Interval); err != nil {
		return r, err
	}
	to := time.Now()
	calls := log.calls.Load() - calls0
	log.mu.Lock()
	for _, t := range tenants {
		ts := log.at[t]
		if slices.ContainsFunc(ts, func(at time.Time) bool { return !at.Before(from) && at.Before(to) }) {
			r.CheckedInInterval++
		}
		for i := 1; i < len(ts); i++ {
			if ts[i-1].After(runStart) {
				r.MaxGap = max(r.MaxGap, ts[i].Sub(ts[i-1]))
			}
		}
	}
	// The victim: the idle tenant checked last, revoked right away.
	var victim int
	var last time.Time
	for i, t := range tenants {
		if ts := log.at[t]; len(ts) > 0 && ts[len(ts)-1].After(last) {
			victim, last = i, ts[len(ts)-1]
		}
	}
	customer.FailKey(keys[victim], kms.Authoritative, kms.ReasonDenied)
	revoked := time.Now()
	log.mu.Unlock()
	r.CallsPerTenant = float64(calls) / float64(o.Tenants)
	progress("run: %d of %d tenants checked within one interval of %v, %.2f vault calls per tenant, longest gap %v",
		r.CheckedInInterval, o.Tenants, o.Interval, r.CallsPerTenant, r.MaxGap.Round(time.Millisecond))
	for revokedAt.Load() == 0 {
		if time.Since(revoked) > 2*o.Interval+time.Minute {
			return r, fmt.Errorf("the revocation of %s was not detected in %v", tenants[victim], time.Since(revoked))
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return r, err
		}
	}
	r.Detection = time.Unix(0, revokedAt.Load()).Sub(revoked)
	progress("detection: the revocation of idle tenant %s (checked %v before) detected after %v",
		tenants[victim], revoked.Sub(last).Round(time.Millisecond), r.Detection.Round(time.Millisecond))
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Print writes r as a table with the goals of issue 11.
func (r MonitorResult) Print(w io.Writer) {
	o := r.Options
	fmt.Fprintf(w, "health monitor and cold start: %d BYOK tenants, vault latency %v (platform key %v), check interval %v, SQLite\n\n",
		o.Tenants, o.Latency, o.PlatformLatency, o.Interval)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tresult\tgoal")
	fmt.Fprintf(tw, "activations sharing one date, one Tick\t%d of %d in %v\tall in one tick\n", r.Activated, o.Tenants, r.Activation.Round(time.Millisecond))
	fmt.Fprintf(tw, "cold start: every key warm (Prefetch)\t%d in %v\twithin 5 s\n", r.Warm, r.PrefetchTook.Round(time.Millisecond))
	fmt.Fprintf(tw, "a request for a cold tenant during the warm-up\t%v\tserved, not queued\n", r.ServedDuringWarmup.Round(time.Millisecond))
	fmt.Fprintf(tw, "monitor pass, every tenant due\t%v\twithin the interval (%v)\n", r.PassTook.Round(time.Millisecond), o.Interval)
	fmt.Fprintf(tw, "Run: every key loaded (warm-up and first checks)\t%v\t\n", r.WarmUnderRun.Round(time.Millisecond))
	fmt.Fprintf(tw, "tenants checked within one interval (Run)\t%d of %d\tall\n", r.CheckedInInterval, o.Tenants)
	fmt.Fprintf(tw, "customer-vault calls per tenant per interval\t%.2f\t1\n", r.CallsPerTenant)
	fmt.Fprintf(tw, "longest time between two checks of a tenant\t%v\t≤ interval + 5 s\n", r.MaxGap.Round(time.Millisecond))
	fmt.Fprintf(tw, "revocation of an idle tenant detected after\t%v\t≤ interval + 5 s\n", r.Detection.Round(time.Millisecond))
	tw.Flush()
}
