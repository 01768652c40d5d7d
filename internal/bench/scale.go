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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/openbyok/byok"
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
	Options     ScaleOptions
	Setup       time.Duration
	Ops         int64
	OpsPerSec   float64
	P50, P99    time.Duration
	BaselineP99 time.Duration // the same traffic on one warm tenant and scope, in the same run
	VaultCalls  int64         // customer and platform calls during the traffic
	HalfCalls   int64         // of those, made in the first half of the run
	// WarmCallsPerSec are the calls per second in the second half of
	// the run; FloorPerSec is the BYOK tenants in use per check
	// interval, per second, in the same half.
	WarmCallsPerSec, FloorPerSec float64
	TenantKeyHits                float64 // hit rate of the tenant key cache
	DEKHits                      float64 // hit rate of the DEK cache
	Stats                        byok.Stats
	PeakRSS                      int64 // bytes; VmHWM of the process
	DistinctPairs                int   // (tenant, scope) pairs used
	DistinctBYOK                 int   // BYOK tenants used
	Errors                       int64
	FirstErr                     error
	TenantKeyLimit               int
	DEKLimit                     int
}

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
// over their scopes through one keyring with its default cache limits,
// then the same traffic on one tenant for the baseline. It measures the
// keyring's data path: the lifecycle's monitor is not running.
func Scale(dir string, o ScaleOptions) (ScaleResult, error) {
	o.defaults()
	res := ScaleResult{Options: o}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "scale.db"))
	if err != nil {
		return res, err
	}
	defer db.Close()
	var calls atomic.Int64
	platform := kmstest.NewFake()
	customerFake := kmstest.NewFake()
	cmk := customerFake.AddKey("cmk")
	customer := latencyProvider{Provider: customerFake, latency: o.Latency, calls: &calls}
	cfg := byok.Config{
		Store: db, PlatformKMS: platformCounter{platform, &calls}, PlatformKeyID: platform.AddKey("platform"),
		CustomerKMS:   func(context.Context, string) (kms.Provider, error) { return customer, nil },
		CheckInterval: o.CheckInterval, MaxStaleness: time.Hour,
	}
	kr, err := byok.New(cfg)
	if err != nil {
		return res, err
	}
	res.TenantKeyLimit, res.DEKLimit = byok.DefaultMaxTenantKeys, byok.DefaultMaxDEKs
	start := time.Now()
	byokEvery := 100 / max(1, o.BYOKPercent)
	setup := latencyProvider{Provider: customerFake, calls: new(atomic.Int64)} // no latency while building the store
	setupCfg := cfg
	setupCfg.CustomerKMS = func(context.Context, string) (kms.Provider, error) { return setup, nil }
	builder, err := byok.New(setupCfg)
	if err != nil {
		return res, err
	}
	for i := range o.Tenants {
		t := tenantName(i)
		if err := builder.CreateTenant(ctx, t, byok.Grace); err != nil {
			return res, err
		}
		if i%byokEvery != 0 {
			continue
		}
		if _, err := builder.NewTenantKey(ctx, t, byok.CustomerManaged, cmk); err != nil {
			return res, err
		}
		for s := range o.Scopes {
			if err := db.PutScope(ctx, byok.ScopeRecord{Tenant: t, Scope: scopeName(s), Kind: byok.CustomerManaged}); err != nil {
				return res, err
			}
		}
	}
	res.Setup = time.Since(start)
	calls.Store(0)

	pt := make([]byte, o.PayloadBytes)
	var (
		mu        sync.Mutex
		lat       []time.Duration
		pairs     = map[[2]int]struct{}{}
		byokUsed  = map[int]struct{}{}
		intervals = map[int64]map[int]struct{}{} // check interval index → BYOK tenants used in it
	)
	var ops, errs atomic.Int64
	trafficStart := time.Now()
	deadline := trafficStart.Add(o.Duration)
	half := time.AfterFunc(o.Duration/2, func() { res.HalfCalls = calls.Load() })
	var wg sync.WaitGroup
	for w := range o.Workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			zipf := rand.NewZipf(r, 1.1, 1, uint64(o.Tenants-1))
			var mine []time.Duration
			seen := map[[2]int]struct{}{}
			byokSeen := map[int64]map[int]struct{}{}
			for n := 0; ; n++ {
				now := time.Now()
				if now.After(deadline) {
					break
				}
				ti, si := int(zipf.Uint64()), r.IntN(o.Scopes)
				t, s := tenantName(ti), scopeName(si)
				ct, err := kr.Encrypt(ctx, t, s, pt, nil)
				if err == nil {
					_, err = kr.Decrypt(ctx, t, s, ct, nil)
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
					iv := int64(now.Sub(trafficStart) / o.CheckInterval)
					if byokSeen[iv] == nil {
						byokSeen[iv] = map[int]struct{}{}
					}
					byokSeen[iv][ti] = struct{}{}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			for p := range seen {
				pairs[p] = struct{}{}
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
	half.Stop()
	took := time.Since(trafficStart)
	res.Ops, res.Errors = ops.Load(), errs.Load()
	res.OpsPerSec = float64(res.Ops) / took.Seconds()
	res.VaultCalls = calls.Load()
	res.DistinctPairs, res.DistinctBYOK = len(pairs), len(byokUsed)
	// The floor: every BYOK tenant in use is checked once per interval.
	// Counted over the second half of the run, once the caches are warm.
	used, n := 0, 0
	for iv, ts := range intervals {
		if time.Duration(iv)*o.CheckInterval >= o.Duration/2 {
			used += len(ts)
			n++
		}
	}
	if n > 0 {
		res.FloorPerSec = float64(used) / float64(n) / o.CheckInterval.Seconds()
	}
	res.WarmCallsPerSec = float64(res.VaultCalls-res.HalfCalls) / (took - o.Duration/2).Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50, res.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	res.Stats = kr.Stats()
	rate := func(c byok.CacheStats) float64 {
		if c.Hits+c.Misses == 0 {
			return 0
		}
		return float64(c.Hits) / float64(c.Hits+c.Misses)
	}
	res.TenantKeyHits, res.DEKHits = rate(res.Stats.TenantKeys), rate(res.Stats.DEKs)

	// The baseline: one warm tenant and scope, same callers, same size.
	var base []time.Duration
	var bmu sync.Mutex
	bEnd := time.Now().Add(min(o.Duration, 3*time.Second))
	for range o.Workers {
		wg.Go(func() {
			var mine []time.Duration
			for n := 0; time.Now().Before(bEnd); n++ {
				now := time.Now()
				ct, err := kr.Encrypt(ctx, tenantName(0), scopeName(0), pt, nil)
				if err == nil {
					_, err = kr.Decrypt(ctx, tenantName(0), scopeName(0), ct, nil)
				}
				if err == nil && n%16 == 0 {
					mine = append(mine, time.Since(now)/2)
				}
			}
			bmu.Lock()
			base = append(base, mine...)
			bmu.Unlock()
		})
	}
	wg.Wait()
	if len(base) > 0 {
		slices.Sort(base)
		res.BaselineP99 = base[len(base)*99/100]
	}
	res.PeakRSS = peakRSS()
	return res, nil
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
	fmt.Fprintf(tw, "workload\t%d tenants (%d%% BYOK at %v per vault call), %d scopes each, Zipf traffic, %d callers, %v, %d B, check interval %v\t\n",
		o.Tenants, o.BYOKPercent, o.Latency, o.Scopes, o.Workers, o.Duration, o.PayloadBytes, o.CheckInterval)
	fmt.Fprintln(tw, "measure\tresult\tgoal")
	fmt.Fprintf(tw, "setup (store of %d tenants)\t%v\t\n", o.Tenants, r.Setup.Round(time.Millisecond))
	fmt.Fprintf(tw, "operations\t%d (%.0f ops/s), %d errors\t\n", r.Ops, r.OpsPerSec, r.Errors)
	fmt.Fprintf(tw, "(tenant, scope) pairs used; BYOK tenants used\t%d; %d\t\n", r.DistinctPairs, r.DistinctBYOK)
	fmt.Fprintf(tw, "latency p50 / p99 (one op)\t%v / %v\t\n", r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond))
	ratio := 0.0
	if r.BaselineP99 > 0 {
		ratio = float64(r.P99) / float64(r.BaselineP99)
	}
	fmt.Fprintf(tw, "p99 against one warm tenant (%v)\t%.2f×\t≤ 2× (warm)\n", r.BaselineP99.Round(time.Microsecond), ratio)
	floorRatio := 0.0
	if r.FloorPerSec > 0 {
		floorRatio = r.WarmCallsPerSec / r.FloorPerSec
	}
	fmt.Fprintf(tw, "vault calls in all (first half, while warming)\t%d (%d)\t\n", r.VaultCalls, r.HalfCalls)
	fmt.Fprintf(tw, "vault calls/s in the second half against the floor (BYOK tenants in use / check interval = %.1f/s)\t%.1f/s (%.2f×)\t≤ 1.1×\n", r.FloorPerSec, r.WarmCallsPerSec, floorRatio)
	fmt.Fprintf(tw, "cache hit rate: tenant keys / DEKs\t%.4f / %.4f\t\n", r.TenantKeyHits, r.DEKHits)
	fmt.Fprintf(tw, "cached: tenant keys / DEKs (limits %d / %d); evictions\t%d / %d; %d / %d\t\n", r.TenantKeyLimit, r.DEKLimit,
		r.Stats.TenantKeys.Entries, r.Stats.DEKs.Entries, r.Stats.TenantKeys.Evictions, r.Stats.DEKs.Evictions)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(tw, "peak RSS (whole process, setup included); Go heap in use at the end\t%.0f MiB; %.0f MiB\t≤ 512 MiB\n", float64(r.PeakRSS)/(1<<20), float64(ms.HeapInuse)/(1<<20))
	if r.FirstErr != nil {
		fmt.Fprintf(tw, "first error\t%v\t\n", r.FirstErr)
	}
	return tw.Flush()
}
