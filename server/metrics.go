package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
)

// Metrics are the server's Prometheus metrics. Label values are bounded
// by construction: route patterns (not paths), HTTP status codes, data
// operations, error codes, provider roles and operations, provider error
// classes and lifecycle states. Tenant and scope ids never appear: with
// thousands of tenants they would multiply every series, and per-tenant
// usage is in the audit log's per-minute counters instead.
//
//	byok_http_requests_total{route,code}               requests by route pattern and status
//	byok_http_request_duration_seconds{route}          latency histogram
//	byok_operations_total{op,outcome}                  encrypt/decrypt/reencrypt; outcome "ok" or an error code
//	byok_operation_duration_seconds{op}                keyring latency histogram
//	byok_cache_hits_total{op}                          operations served with no provider call (see below)
//	byok_kms_calls_total{provider,op,outcome}          vault calls; outcome success, transient, authoritative, invalid
//	byok_kms_call_duration_seconds{provider,op}        vault call latency histogram
//	byok_tenant_keys{state}                            tenants by customer-key lifecycle state
//	byok_keyring_cache_entries{cache}                  keys cached now; cache "tenant_keys" or "deks"
//	byok_keyring_cache_limit{cache}                    the most entries the cache holds
//	byok_keyring_cache_hits_total{cache}               lookups served from the cache
//	byok_keyring_cache_misses_total{cache}             lookups that loaded from the store (and vault)
//	byok_keyring_cache_evictions_total{cache,reason}   entries dropped: reason "limit" or "idle"
//
// A cache hit is an operation during which no instrumented provider call
// ran anywhere in the process. It is a lower bound: an operation served
// from cache while another tenant's key was being checked counts as a
// miss. Provider calls are counted only for providers wrapped with
// [Metrics.InstrumentProvider]; lifecycle.Config.Instrument wraps the
// customers' providers with it.
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec
	requestDur *prometheus.HistogramVec
	ops        *prometheus.CounterVec
	opDur      *prometheus.HistogramVec
	cacheHits  *prometheus.CounterVec
	kmsCalls   *prometheus.CounterVec
	kmsDur     *prometheus.HistogramVec

	calls atomic.Int64 // instrumented provider calls started

	tp     trace.TracerProvider // see TraceWith; nil: no tracing
	tracer trace.Tracer

	opEncrypt, opDecrypt, opReencrypt opMetrics // see opSeries

	mu        sync.Mutex
	lifecycle Lifecycle     // source of byok_tenant_keys; nil until a server is made
	keyring   *byok.Keyring // source of byok_keyring_cache_*; nil until a server is made
}

// NewMetrics registers the server's metrics on reg and returns them. A nil
// reg means a new registry that also holds the Go runtime and process
// collectors.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	buckets := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "byok_http_requests_total",
			Help: "HTTP requests by route pattern and status code."}, []string{"route", "code"}),
		requestDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "byok_http_request_duration_seconds",
			Help: "HTTP request latency by route pattern.", Buckets: buckets}, []string{"route"}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "byok_operations_total",
			Help: "Data operations by operation and outcome (ok or an error code)."}, []string{"op", "outcome"}),
		opDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "byok_operation_duration_seconds",
			Help: "Keyring latency of data operations.", Buckets: buckets}, []string{"op"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "byok_cache_hits_total",
			Help: "Data operations during which no key provider call ran (a lower bound of cache hits)."}, []string{"op"}),
		kmsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "byok_kms_calls_total",
			Help: "Key provider (vault) calls by provider role, operation and outcome."}, []string{"provider", "op", "outcome"}),
		kmsDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "byok_kms_call_duration_seconds",
			Help: "Key provider call latency.", Buckets: buckets}, []string{"provider", "op"}),
	}
	reg.MustRegister(m.requests, m.requestDur, m.ops, m.opDur, m.cacheHits, m.kmsCalls, m.kmsDur, stateCollector{m}, cacheCollector{m})
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) observeRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.requestDur.WithLabelValues(route).Observe(d.Seconds())
}

// routeMetrics are the series of one route that every request touches,
// looked up once, on first use (a series appears when first counted, as
// with WithLabelValues): no label hashing per request.
type routeMetrics struct {
	m     *Metrics
	route string
	once  sync.Once
	ok    prometheus.Counter  // byok_http_requests_total{route, code="200"}
	dur   prometheus.Observer // byok_http_request_duration_seconds{route}
}

func (m *Metrics) forRoute(route string) *routeMetrics { return &routeMetrics{m: m, route: route} }

func (r *routeMetrics) observe(status int, d time.Duration) {
	if status != http.StatusOK {
		r.m.observeRequest(r.route, status, d)
		return
	}
	r.once.Do(func() {
		r.ok = r.m.requests.WithLabelValues(r.route, "200")
		r.dur = r.m.requestDur.WithLabelValues(r.route)
	})
	r.ok.Inc()
	r.dur.Observe(d.Seconds())
}

// opMetrics are the series of one data operation's successes, looked up
// once, on first use.
type opMetrics struct {
	once     sync.Once
	ok       prometheus.Counter  // byok_operations_total{op, outcome="ok"}
	dur      prometheus.Observer // byok_operation_duration_seconds{op}
	hitsOnce sync.Once           // the series appears with the first hit
	hits     prometheus.Counter  // byok_cache_hits_total{op}
}

// opSeries returns the opMetrics of op, or nil for an op not known.
func (m *Metrics) opSeries(op string) *opMetrics {
	var om *opMetrics
	switch op {
	case opEncrypt:
		om = &m.opEncrypt
	case opDecrypt:
		om = &m.opDecrypt
	case opReencrypt:
		om = &m.opReencrypt
	default:
		return nil
	}
	om.once.Do(func() {
		om.ok = m.ops.WithLabelValues(op, "ok")
		om.dur = m.opDur.WithLabelValues(op)
	})
	return om
}

// observeOp counts a data operation; hit says no provider call ran during
// it.
func (m *Metrics) observeOp(op string, err error, d time.Duration, hit bool) {
	if om := m.opSeries(op); om != nil && err == nil {
		om.ok.Inc()
		om.dur.Observe(d.Seconds())
		if hit {
			om.hitsOnce.Do(func() { om.hits = m.cacheHits.WithLabelValues(op) })
			om.hits.Inc()
		}
		return
	}
	outcome := "ok"
	if err != nil {
		e, _ := errorFor(err)
		outcome = e.Code
	}
	m.ops.WithLabelValues(op, outcome).Inc()
	m.opDur.WithLabelValues(op).Observe(d.Seconds())
	if hit && err == nil {
		m.cacheHits.WithLabelValues(op).Inc()
	}
}

// providerCalls returns how many instrumented provider calls have started.
func (m *Metrics) providerCalls() int64 { return m.calls.Load() }

// InstrumentProvider returns p with every call counted and timed under
// provider role name ("platform", "customer"). Give the wrapped provider
// to the lifecycle so that vault calls show in the metrics.
// A p that lists its versions (lifecycle.VersionLister) gives a result
// that does too; the result's RecoveryLevel (recoveryReporter) passes on
// p's, or is "" for a p without one.
func (m *Metrics) InstrumentProvider(name string, p kms.Provider) kms.Provider {
	ip := &instrumented{p: p, name: name, m: m}
	if l, ok := p.(lifecycle.VersionLister); ok {
		return instrumentedLister{ip, l}
	}
	return ip
}

// instrumentedLister is an instrumented provider that lists versions.
type instrumentedLister struct {
	*instrumented
	l lifecycle.VersionLister
}

func (i instrumentedLister) Versions(ctx context.Context, keyID string) ([]string, error) {
	return i.l.Versions(ctx, keyID)
}

// RecoveryLevel passes on the recovery level of keyID's key, counted and
// timed as a describe, when the wrapped provider reports one
// (recoveryReporter); else it returns "" and makes no call.
func (i *instrumented) RecoveryLevel(ctx context.Context, keyID string) (string, error) {
	r, ok := i.p.(recoveryReporter)
	if !ok {
		return "", nil
	}
	i.m.calls.Add(1)
	ctx, span := i.startKMS(ctx, "describe", keyID)
	start := time.Now()
	level, err := r.RecoveryLevel(ctx, keyID)
	i.observe("describe", start, err)
	endKMS(span, err)
	return level, err
}

type instrumented struct {
	p    kms.Provider
	name string
	m    *Metrics
}

func (i *instrumented) observe(op string, start time.Time, err error) {
	outcome := "success"
	if err != nil {
		outcome = kms.ClassOf(err).String()
	}
	i.m.kmsCalls.WithLabelValues(i.name, op, outcome).Inc()
	i.m.kmsDur.WithLabelValues(i.name, op).Observe(time.Since(start).Seconds())
}

func (i *instrumented) Wrap(ctx context.Context, keyID string, plaintext []byte) (kms.Wrapped, error) {
	i.m.calls.Add(1)
	ctx, span := i.startKMS(ctx, "wrap", keyID)
	start := time.Now()
	w, err := i.p.Wrap(ctx, keyID, plaintext)
	i.observe("wrap", start, err)
	endKMS(span, err)
	return w, err
}

func (i *instrumented) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	i.m.calls.Add(1)
	ctx, span := i.startKMS(ctx, "unwrap", w.KeyID)
	start := time.Now()
	b, err := i.p.Unwrap(ctx, w)
	i.observe("unwrap", start, err)
	endKMS(span, err)
	return b, err
}

func (i *instrumented) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	i.m.calls.Add(1)
	ctx, span := i.startKMS(ctx, "describe", keyID)
	start := time.Now()
	info, err := i.p.Describe(ctx, keyID)
	i.observe("describe", start, err)
	endKMS(span, err)
	return info, err
}

// watchStates makes lc the source of byok_tenant_keys.
func (m *Metrics) watchStates(lc Lifecycle) {
	m.mu.Lock()
	m.lifecycle = lc
	m.mu.Unlock()
}

// stateCollector reports byok_tenant_keys at each scrape by paging
// through the tenants: O(tenants) store reads per scrape, one series per
// state.
type stateCollector struct{ m *Metrics }

var tenantKeysDesc = prometheus.NewDesc("byok_tenant_keys",
	"Tenants by the lifecycle state of their customer-managed key.", []string{"state"}, nil)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tenantKeysDesc }

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	lc := c.m.lifecycle
	c.m.mu.Unlock()
	if lc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := make(map[lifecycle.State]int, len(lifecycle.States))
	const page = 500
	after := ""
	for {
		ts, err := lc.ListTenants(ctx, after, page)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(tenantKeysDesc, errors.New("listing tenants for byok_tenant_keys failed"))
			return
		}
		for _, t := range ts {
			counts[t.State]++
		}
		if len(ts) < page {
			break
		}
		after = ts[len(ts)-1].ID
	}
	for _, st := range lifecycle.States {
		ch <- prometheus.MustNewConstMetric(tenantKeysDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}

// watchKeyring makes kr the source of byok_keyring_cache_*.
func (m *Metrics) watchKeyring(kr *byok.Keyring) {
	m.mu.Lock()
	m.keyring = kr
	m.mu.Unlock()
}

// cacheCollector reports the keyring's cache statistics at each scrape.
type cacheCollector struct{ m *Metrics }

var (
	cacheEntriesDesc = prometheus.NewDesc("byok_keyring_cache_entries",
		"Entries in the keyring's caches of tenant keys and DEKs.", []string{"cache"}, nil)
	cacheLimitDesc = prometheus.NewDesc("byok_keyring_cache_limit",
		"The most entries each keyring cache holds.", []string{"cache"}, nil)
	cacheHitsDesc = prometheus.NewDesc("byok_keyring_cache_hits_total",
		"Keyring cache lookups served from memory.", []string{"cache"}, nil)
	cacheMissesDesc = prometheus.NewDesc("byok_keyring_cache_misses_total",
		"Keyring cache lookups that loaded the key from the store (a tenant key is then checked with its vault).", []string{"cache"}, nil)
	cacheEvictionsDesc = prometheus.NewDesc("byok_keyring_cache_evictions_total",
		"Entries dropped from the keyring's caches: to stay within the limit, or idle.", []string{"cache", "reason"}, nil)
)

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheEntriesDesc, cacheLimitDesc, cacheHitsDesc, cacheMissesDesc, cacheEvictionsDesc} {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	kr := c.m.keyring
	c.m.mu.Unlock()
	if kr == nil {
		return
	}
	st := kr.Stats()
	for _, x := range []struct {
		name string
		s    byok.CacheStats
	}{{"tenant_keys", st.TenantKeys}, {"deks", st.DEKs}} {
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(x.s.Entries), x.name)
		ch <- prometheus.MustNewConstMetric(cacheLimitDesc, prometheus.GaugeValue, float64(x.s.Limit), x.name)
		ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(x.s.Hits), x.name)
		ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(x.s.Misses), x.name)
		ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(x.s.Evictions), x.name, "limit")
		ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(x.s.IdleEvictions), x.name, "idle")
	}
}
