package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/internal/memlimit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/store/sqlite"
)

// ScaleOptions shape [RunScale]'s workload.
type ScaleOptions struct {
	Tenants       int           // tenants in the store (default 100,000)
	BYOKPercent   int           // share of them whose customer key is BYOK (default 10)
	Scopes        int           // scopes per tenant (default 10)
	Latency       time.Duration // each call to a customer's vault takes this long (default 20 ms)
	Duration      time.Duration // how long the traffic runs (default 30 s)
	Workers       int           // concurrent callers (default 8)
	CheckInterval time.Duration // the keyring's check interval (default 10 s)
	PayloadBytes  int           // plaintext size (default 1 KiB)
}

func (o *ScaleOptions) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Tenants, 100_000)
	def(&o.BYOKPercent, 10)
	def(&o.Scopes, 10)
	def(&o.Workers, 8)
	def(&o.PayloadBytes, 1024)
	if o.Latency <= 0 {
		o.Latency = 20 * time.Millisecond
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 10 * time.Second
	}
}

// ScaleResult is what [Scale] measured.
type ScaleResult struct {
	Options ScaleOptions
	Setup   time.Duration
	// Cold is the first pass of the traffic, from empty caches, for
	// Options.Duration; Warm the second: the same calls again, all
	// cached, after Revalidate re-checked the keys of the tenants they
	// use (as a replica's health monitor keeps them checked; without it,
	// keys the first pass loaded more than a check interval earlier are
	// due a check on first use); Steady the third: the traffic again for
	// Options.Duration, warm but still reaching tenants the first pass
	// did not.
	Cold, Warm, Steady TrafficResult
	// Revalidate is how long re-checking the cold pass's tenant keys
	// took, concurrently (RevalidateWorkers callers), before the warm pass.
	Revalidate  time.Duration
	BaselineP99 time.Duration // the same callers on one warm tenant and scope, right after Warm
	// FloorPerSec is the BYOK tenants in use per check interval, per
	// second, in the steady pass: each must be checked once an interval.
	FloorPerSec    float64
	TenantKeyHits  float64 // hit rate of the tenant key cache, the three passes
	DEKHits        float64 // hit rate of the DEK cache, the three passes
	Stats          byok.Stats
	PeakRSS        int64 // bytes; VmHWM of the process
	MemoryLimit    int64 // bytes; the Go runtime's memory limit during the run
	TenantKeyLimit int
	DEKLimit       int
	// OldDEKs is the DEK rows written before the run, one per tenant and
	// scope (oldData): each draw's decrypt reads data under one of them.
	OldDEKs int
}

// TrafficResult is one pass of the traffic.
type TrafficResult struct {
	Took          time.Duration
	Ops, Errors   int64
	FirstErr      error
	P50, P99      time.Duration
	CustomerCalls int64 // calls to customers' vaults
	PlatformCalls int64 // calls to the platform root key
	Pairs, BYOK   int   // (tenant, scope) pairs and BYOK tenants used
	byokPerIv     float64
	draws         []int // each caller's draws, for a replay
	tenants       []int // the tenants used
}

// OpsPerSec is the pass's rate.
func (t TrafficResult) OpsPerSec() float64 { return float64(t.Ops) / t.Took.Seconds() }

// latencyProvider is a customer's vault: each call takes latency, and
// calls are counted.
type latencyProvider struct {
	kms.Provider
	latency time.Duration
	calls   *atomic.Int64
}

func (p latencyProvider) wait(ctx context.Context) error {
	p.calls.Add(1)
	t := time.NewTimer(p.latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p latencyProvider) Wrap(ctx context.Context, keyID string, pt []byte) (kms.Wrapped, error) {
	if err := p.wait(ctx); err != nil {
		return kms.Wrapped{}, err
	}
	return p.Provider.Wrap(ctx, keyID, pt)
}

func (p latencyProvider) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	return p.Provider.Unwrap(ctx, w)
}

func (p latencyProvider) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	if err := p.wait(ctx); err != nil {
		return kms.KeyInfo{}, err
	}
	return p.Provider.Describe(ctx, keyID)
}

// Scale builds a store of o.Tenants tenants (o.BYOKPercent of them BYOK
// over a vault with o.Latency per call) and runs Zipf-distributed traffic
// over their scopes through one keyring with its default cache limits:
// once from empty caches, then the same calls again, warm, then the same
// callers on one tenant for the baseline, then a steady pass. It measures the keyring's data
// path: the lifecycle's monitor is not running.
func Scale(dir string, o ScaleOptions) (ScaleResult, error) {
	o.defaults()
	res := ScaleResult{Options: o}
	if os.Getenv("GOMEMLIMIT") == "" {
		// As byok serve runs in a container of ContainerMemory.
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(memlimit.For(ContainerMemory)))
	}
	res.MemoryLimit = debug.SetMemoryLimit(-1)
	ctx := context.Background()
	dbPath := filepath.Join(dir, "scale.db")
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return res, err
	}
	defer db.Close()
	var customerCalls, platformCalls atomic.Int64
	platform := kmstest.NewFake()
	customerFake := kmstest.NewFake()
	cmk := customerFake.AddKey("cmk")
	customer := latencyProvider{Provider: customerFake, latency: o.Latency, calls: &customerCalls}
	cfg := byok.Config{
		Store: db, PlatformKMS: platformCounter{platform, &platformCalls}, PlatformKeyID: platform.AddKey("platform"),
		CustomerKMS:   func(context.Context, string) (kms.Provider, error) { return customer, nil },
		CheckInterval: o.CheckInterval, MaxStaleness: time.Hour,
	}
	kr, err := byok.New(cfg)
	if err != nil {
		return res, err
	}
	res.TenantKeyLimit, res.DEKLimit = byok.DefaultMaxTenantKeys, byok.DefaultMaxDEKs
	byokEvery := 100 / max(1, o.BYOKPercent)
	if res.Setup, err = buildScaleStore(ctx, db, cfg, customerFake, cmk, o, byokEvery); err != nil {
		return res, err
	}
	start := time.Now()
	old := newOldData()
	if err := seedOldData(ctx, db, dbPath, platform, customerFake, o, byokEvery, old); err != nil {
		return res, err
	}
	res.Setup += time.Since(start)
	res.OldDEKs = o.Tenants * o.Scopes
	pt := make([]byte, o.PayloadBytes)
	pass := func(replay []int) TrafficResult {
		c0, p0 := customerCalls.Load(), platformCalls.Load()
		t := runTraffic(ctx, kr, o, byokEvery, pt, old, replay)
		t.CustomerCalls, t.PlatformCalls = customerCalls.Load()-c0, platformCalls.Load()-p0
		return t
	}
	res.Cold = pass(nil)
	start = time.Now()
	if err := revalidate(ctx, kr, res.Cold.tenants, byokEvery); err != nil {
		return res, err
	}
	res.Revalidate = time.Since(start)
	res.Warm = pass(res.Cold.draws)
	// The baseline: one warm tenant and scope, same callers, same size,
	// right after the warm pass and as long as it took (but at least a
	// second, and at most Options.Duration), so that the two p99s see the
	// machine in the same state. Its lookups are left out of the hit rates.
	base := o
	base.Tenants, base.Scopes, base.Duration = 1, 1, min(max(res.Warm.Took, time.Second), o.Duration)
	before := kr.Stats()
	res.BaselineP99 = runTraffic(ctx, kr, base, byokEvery, pt, old, nil).P99
	after := kr.Stats()
	res.Steady = pass(nil)
	res.FloorPerSec = res.Steady.byokPerIv / o.CheckInterval.Seconds()
	res.Stats = kr.Stats()
	rate := func(c, b0, b1 byok.CacheStats) float64 {
		hits, misses := c.Hits-(b1.Hits-b0.Hits), c.Misses-(b1.Misses-b0.Misses)
		if hits+misses == 0 {
			return 0
		}
		return float64(hits) / float64(hits+misses)
	}
	res.TenantKeyHits = rate(res.Stats.TenantKeys, before.TenantKeys, after.TenantKeys)
	res.DEKHits = rate(res.Stats.DEKs, before.DEKs, after.DEKs)

	res.PeakRSS = peakRSS()
	return res, nil
}

// ContainerMemory is the memory limit of the container the scale measure
// stands for: its goal is a peak RSS within it, and the Go runtime gets
// the memory limit that byok serve sets in such a container
// (internal/memlimit), unless GOMEMLIMIT sets one.
const ContainerMemory = 512 << 20

// RevalidateWorkers is how many keys the scale measure re-checks at once
// before its warm pass: the lifecycle's default for its warm-up.
const RevalidateWorkers = 128

// revalidate re-checks (byok.Keyring.Warm) the tenant key each of the
// tenants uses, concurrently.
func revalidate(ctx context.Context, kr *byok.Keyring, tenants []int, byokEvery int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, RevalidateWorkers)
	for range RevalidateWorkers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(tenants); i = int(next.Add(1) - 1) {
				kind := byok.PlatformManaged
				if tenants[i]%byokEvery == 0 {
					kind = byok.CustomerManaged
				}
				if err := kr.Warm(ctx, tenantName(tenants[i]), kind); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// buildScaleStore creates o.Tenants tenants, every byokEvery-th with a
// customer-managed key over all its scopes, with as many writers as
// callers (SQLite serialises them; they share its commits' waits).
func buildScaleStore(ctx context.Context, db *sqlite.DB, cfg byok.Config, customer kms.Provider, cmk string, o ScaleOptions, byokEvery int) (time.Duration, error) {
	start := time.Now()
	// No latency while the store is built.
	cfg.CustomerKMS = func(context.Context, string) (kms.Provider, error) { return customer, nil }
	builder, err := byok.New(cfg)
	if err != nil {
		return 0, err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.Workers)
	for range o.Workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < o.Tenants; i = int(next.Add(1) - 1) {
				if err := buildTenant(ctx, builder, db, i, cmk, o, byokEvery); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return time.Since(start), <-errs
}

func buildTenant(ctx context.Context, kr *byok.Keyring, db *sqlite.DB, i int, cmk string, o ScaleOptions, byokEvery int) error {
	t := tenantName(i)
	if err := kr.CreateTenant(ctx, t, byok.Grace); err != nil {
		return err
	}
	if i%byokEvery != 0 {
		return nil
	}
	if _, err := kr.NewTenantKey(ctx, t, byok.CustomerManaged, cmk); err != nil {
		return err
	}
	for s := range o.Scopes {
		if err := db.PutScope(ctx, byok.ScopeRecord{Tenant: t, Scope: scopeName(s), Kind: byok.CustomerManaged}); err != nil {
			return err
		}
	}
	return nil
}

// runTraffic runs o.Workers callers for o.Duration, each drawing tenants
// from a Zipf distribution (s = 1.1) and scopes uniformly with a fixed
// seed; each draw is an encrypt of new data and a decrypt of the pair's
// old data (a ciphertext under its old DEK, made before the call is
// timed), so that reads reach DEKs this process did not make and must
// load from the store. With replay, caller w
// makes exactly replay[w] draws instead, the same calls as the run that
// returned those counts.
func runTraffic(ctx context.Context, kr *byok.Keyring, o ScaleOptions, byokEvery int, pt []byte, old oldData, replay []int) TrafficResult {
	var (
		res       TrafficResult
		mu        sync.Mutex
		lat       []time.Duration
		pairs     = map[[2]int]struct{}{}
		tenants   = map[int]struct{}{}
		byokUsed  = map[int]struct{}{}
		intervals = map[int64]map[int]struct{}{} // check interval index → BYOK tenants used in it
		ops, errs atomic.Int64
		wg        sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(o.Duration)
	res.draws = make([]int, o.Workers)
	for w := range o.Workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			reader := old.reader()
			zipf := rand.NewZipf(r, 1.1, 1, uint64(max(1, o.Tenants-1)))
			var mine []time.Duration
			seen := map[[2]int]struct{}{}
			byokSeen := map[int64]map[int]struct{}{}
			n := 0
			for ; ; n++ {
				now := time.Now()
				if replay == nil && now.After(deadline) || replay != nil && n == replay[w] {
					break
				}
				ti, si := int(zipf.Uint64())%o.Tenants, r.IntN(o.Scopes)
				t, s := tenantName(ti), scopeName(si)
				oldCT := reader.ciphertext(ti, si, pt)
				now = time.Now()
				_, err := kr.Encrypt(ctx, t, s, pt, nil)
				if err == nil {
					_, err = kr.Decrypt(ctx, t, s, oldCT, nil)
				}
				if err != nil {
					if errs.Add(1) == 1 {
						mu.Lock()
						res.FirstErr = err
						mu.Unlock()
					}
					continue
				}
				ops.Add(2)
				if n%16 == 0 {
					mine = append(mine, time.Since(now)/2)
				}
				seen[[2]int{ti, si}] = struct{}{}
				if ti%byokEvery == 0 {
					iv := int64(now.Sub(start) / o.CheckInterval)
					if byokSeen[iv] == nil {
						byokSeen[iv] = map[int]struct{}{}
					}
					byokSeen[iv][ti] = struct{}{}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.draws[w] = n
			lat = append(lat, mine...)
			for p := range seen {
				pairs[p] = struct{}{}
				tenants[p[0]] = struct{}{}
			}
			for iv, ts := range byokSeen {
				if intervals[iv] == nil {
					intervals[iv] = map[int]struct{}{}
				}
				for t := range ts {
					intervals[iv][t] = struct{}{}
					byokUsed[t] = struct{}{}
				}
			}
		})
	}
	wg.Wait()
	res.Took = time.Since(start)
	res.Ops, res.Errors = ops.Load(), errs.Load()
	res.Pairs, res.BYOK = len(pairs), len(byokUsed)
	for t := range tenants {
		res.tenants = append(res.tenants, t)
	}
	used := 0
	for _, ts := range intervals {
		used += len(ts)
	}
	if len(intervals) > 0 {
		res.byokPerIv = float64(used) / float64(len(intervals))
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50, res.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return res
}

// platformCounter counts calls to the platform root key.
type platformCounter struct {
	kms.Provider
	calls *atomic.Int64
}

func (p platformCounter) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	p.calls.Add(1)
	return p.Provider.Unwrap(ctx, w)
}

func tenantName(i int) string { return "t" + strconv.Itoa(i) }
func scopeName(i int) string  { return "s" + strconv.Itoa(i) }

// peakRSS returns the process's peak resident set size (VmHWM), or 0
// where /proc is not there.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// RunScale runs [Scale] and writes its table.
func RunScale(w io.Writer, dir string, o ScaleOptions) error {
	r, err := Scale(dir, o)
	if err != nil {
		return err
	}
	o = r.Options
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workload: %d tenants (%d%% BYOK at %v per vault call), %d scopes each, Zipf traffic, %d callers, %v a pass, %d B, check interval %v\n",
		o.Tenants, o.BYOKPercent, o.Latency, o.Scopes, o.Workers, o.Duration, o.PayloadBytes, o.CheckInterval)
	fmt.Fprintln(tw, "measure\tcold pass\tthe same calls, warm\tsteady pass\tgoal")
	row := func(name string, f func(TrafficResult) string, goal string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, f(r.Cold), f(r.Warm), f(r.Steady), goal)
	}
	steady := func(t TrafficResult) bool { return t.Took == r.Steady.Took && t.Ops == r.Steady.Ops }
	row("operations/s (errors)", func(t TrafficResult) string { return fmt.Sprintf("%.0f (%d)", t.OpsPerSec(), t.Errors) }, "")
	row("(tenant, scope) pairs used; BYOK tenants used", func(t TrafficResult) string { return fmt.Sprintf("%d; %d", t.Pairs, t.BYOK) }, "")
	row("latency p50 / p99 (one op)", func(t TrafficResult) string {
		return fmt.Sprintf("%v / %v", t.P50.Round(time.Microsecond), t.P99.Round(time.Microsecond))
	}, "")
	row(fmt.Sprintf("p99 against one warm tenant (%v)", r.BaselineP99.Round(time.Microsecond)), func(t TrafficResult) string {
		if r.BaselineP99 == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f×", float64(t.P99)/float64(r.BaselineP99))
	}, "≤ 2× warm")
	per := func(t TrafficResult, n int64) float64 { return float64(n) / t.Took.Seconds() }
	row(fmt.Sprintf("customer vault calls/s (floor in the steady pass: BYOK tenants in use / check interval = %.1f/s)", r.FloorPerSec), func(t TrafficResult) string {
		v := fmt.Sprintf("%.1f/s", per(t, t.CustomerCalls))
		if steady(t) && r.FloorPerSec > 0 {
			v += fmt.Sprintf(" (%.2f× the floor)", per(t, t.CustomerCalls)/r.FloorPerSec)
		}
		return v
	}, "≤ 1.1× the floor")
	row("platform root key calls/s (tenant keys loaded)", func(t TrafficResult) string { return fmt.Sprintf("%.1f/s", per(t, t.PlatformCalls)) }, "")
	fmt.Fprintf(tw, "cache hit rate, all passes: tenant keys / DEKs\t%.4f / %.4f\t\t\t\n", r.TenantKeyHits, r.DEKHits)
	fmt.Fprintf(tw, "cached at the end: tenant keys / DEKs (limits %d / %d); evictions\t%d / %d; %d / %d\t\t\t\n", r.TenantKeyLimit, r.DEKLimit,
		r.Stats.TenantKeys.Entries, r.Stats.DEKs.Entries, r.Stats.TenantKeys.Evictions, r.Stats.DEKs.Evictions)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(tw, "peak RSS of the process (store set-up included); Go heap in use at the end; Go memory limit\t%.0f MiB; %.0f MiB; %.0f MiB\t\t\t≤ %d MiB\n",
		float64(r.PeakRSS)/(1<<20), float64(ms.HeapInuse)/(1<<20), float64(r.MemoryLimit)/(1<<20), ContainerMemory>>20)
	fmt.Fprintf(tw, "before the warm pass: the cold pass's %d tenant keys re-checked, %d at once\t%v\t\t\t\n", len(r.Cold.tenants), RevalidateWorkers, r.Revalidate.Round(time.Millisecond))
	fmt.Fprintf(tw, "store set-up (%d tenants, SQLite; %d old DEKs, one per tenant and scope, which the decrypts read)\t%v\t\t\t\n", o.Tenants, r.OldDEKs, r.Setup.Round(time.Millisecond))
	for _, t := range []TrafficResult{r.Cold, r.Warm, r.Steady} {
		if t.FirstErr != nil {
			fmt.Fprintf(tw, "first error\t%v\t\t\n", t.FirstErr)
		}
	}
	return tw.Flush()
}
