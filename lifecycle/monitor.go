package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// The health monitor (DESIGN §8, "Caches with bounds") checks every BYOK
// tenant's customer key once per check interval, for the console's
// timeline and to detect a revocation while the tenant is idle:
//
//   - one call to the customer's vault per tenant per interval: an unwrap
//     of the customer share (byok.Keyring.CheckCustomerKey). An unwrap,
//     not a Describe, because it is what data needs: it proves the
//     principal may still unwrap with that exact version, where a Describe
//     passes for a principal that lost unwrapKey but kept get. The platform
//     share is not unwrapped: the platform key is checked by /readyz;
//   - a check that a data call made counts: a tenant whose key was checked
//     successfully within the interval is not called, and its next check
//     is due one interval after that one;
//   - checks run concurrently (Config.MonitorWorkers) and, under Run, are
//     spread over the interval: a tenant first seen is checked at a random
//     moment of the first interval (even if the warm-up loaded its key
//     seconds before: that one extra call per tenant at start keeps the
//     checks from bunching), then one interval after each successful
//     check, whoever made it;
//   - each vault's throttle budget and Retry-After hold (kms/azurekv)
//     apply to the monitor's calls like to everyone else's.

// Defaults of the Config fields left zero.
const (
	DefaultMonitorWorkers       = 64
	DefaultPrefetchWorkers      = 128
	DefaultJobWorkers           = 8
	DefaultVersionCheckInterval = time.Hour
)

// monitorActor's sibling for the warm-up.
var prefetchActor = audit.Actor{Kind: audit.System, ID: "prefetch"}

// monitorState is the monitor's in-memory schedule.
type monitorState struct {
	mu sync.Mutex
	// described is when each tenant's versionless key is next Described.
	described map[string]time.Time
	// checks counts the monitor's calls to customers' vaults; skips the
	// tenants a recent check spared.
	checks, skips atomic.Int64
	// drain serializes drainEvents (Run's monitor and ticks both drain).
	drain sync.Mutex
}

func (s *Service) checkInterval() time.Duration {
	if d := s.cfg.Keyring.CheckInterval; d > 0 {
		return d
	}
	return byok.DefaultCheckInterval
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// parallel calls f(0) … f(n-1) on at most workers goroutines and returns
// when all have returned; it starts no new call once ctx is done.
func parallel(ctx context.Context, n, workers int, f func(i int)) {
	workers = max(1, min(workers, n))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// monitor checks a tenant's customer key unless a check within the
// interval spares it, moves the record between active and revoked by the
// outcome, and returns the key's health (ok false: the tenant has no
// customer-managed key).
//
// A key checked successfully less than interval − lead ago is spared:
// Run's monitor looks lead early so that the time between two checks,
// its own step included, stays within the interval.
func (s *Service) monitor(ctx context.Context, rec Record, lead time.Duration) (h byok.KeyHealth, ok bool, err error) {
	now := s.cfg.Now()
	h, called, err := s.kr.CheckCustomerKey(withPurpose(ctx, audit.PurposeBackgroundCheck, monitorActor), rec.Tenant, now.Add(lead-s.checkInterval()))
	if errors.Is(err, byok.ErrNotFound) {
		return h, false, nil // not activated yet
	}
	if err != nil {
		return h, false, fmt.Errorf("lifecycle: checking tenant %q: %w", rec.Tenant, err)
	}
	if called {
		s.mon.checks.Add(1)
	} else {
		s.mon.skips.Add(1)
	}
	switch {
	case rec.State == StateActive && h.State == byok.StateRevoked,
		rec.State == StateRevoked && h.State == byok.StateHealthy:
	default:
		return h, true, nil
	}
	return h, true, s.transition(ctx, rec, h)
}

// transition moves a record between active and revoked after a check
// said so, audits and announces it.
func (s *Service) transition(ctx context.Context, rec Record, h byok.KeyHealth) error {
	before := rec
	if h.State == byok.StateRevoked {
		rec.State = StateRevoked
	} else {
		rec.State = StateActive
	}
	if err := s.save(ctx, &rec); err != nil {
		return err
	}
	action := "key.revoked"
	reason := string(h.Reason)
	if rec.State == StateActive {
		action, reason = "key.restored", "a check of the customer's key succeeded"
	}
	s.record(ctx, audit.Event{Tenant: rec.Tenant, Actor: monitorActor, Action: action, Target: rec.Settings.KeyID,
		Before: recordView(before), After: recordView(rec), Outcome: audit.Success, Reason: reason})
	s.notify(ctx, rec.Tenant, "key.state", map[string]string{"from": string(before.State), "to": string(rec.State), "reason": reason})
	return nil
}

// describeDue reports whether the monitor should Describe the tenant's
// versionless key now (to follow a new version), and if so schedules the
// next time, jittered over [d/2, d] of Config.VersionCheckInterval so
// that tenants spread out.
func (s *Service) describeDue(tenant string, now time.Time) bool {
	s.mon.mu.Lock()
	defer s.mon.mu.Unlock()
	if s.mon.described == nil {
		s.mon.described = make(map[string]time.Time)
	}
	if next, ok := s.mon.described[tenant]; ok && now.Before(next) {
		return false
	}
	d := orDefault(s.cfg.VersionCheckInterval, DefaultVersionCheckInterval)
	s.mon.described[tenant] = now.Add(d/2 + rand.N(d/2+1))
	return true
}

// MonitorStats counts the monitor's work since the service started.
type MonitorStats struct {
	// Checks is the number of calls the monitor made to customers'
	// vaults; Skipped the checks it spared because the tenant's key was
	// checked within the interval (by a data call, or the warm-up).
	Checks, Skipped int64
}

// MonitorStats returns the monitor's counts.
func (s *Service) MonitorStats() MonitorStats {
	return MonitorStats{Checks: s.mon.checks.Load(), Skipped: s.mon.skips.Load()}
}

// runMonitor runs the monitor until ctx is done: every BYOK tenant is
// checked one interval after its key's last successful check (by anyone),
// or one interval after a failed one; a tenant first seen is due at a
// random moment of the coming interval, and checked then, so that checks
// spread out (then, one per interval: a tenant the data path checks moves
// with its traffic). It
// looks for due tenants every step (at most a second) and lists the
// tenants again every quarter interval. It looks two steps early, so that
// two checks of a tenant are never more than an interval apart.
func (s *Service) runMonitor(ctx context.Context) {
	interval := s.checkInterval()
	step := min(max(interval/100, 50*time.Millisecond), time.Second)
	lead := min(2*step, interval/4)
	type entry struct {
		rec     Record
		due     time.Time
		running bool
		visited bool
	}
	var (
		mu      sync.Mutex
		sched   = make(map[string]*entry)
		listed  time.Time
		relist  atomic.Bool // a record changed state: list again now
		sem     = make(chan struct{}, orDefault(s.cfg.MonitorWorkers, DefaultMonitorWorkers))
		running sync.WaitGroup
	)
	defer running.Wait()
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		now := s.cfg.Now()
		if listed.IsZero() || now.Sub(listed) >= interval/4 || relist.Swap(false) {
			recs, err := s.records(ctx, StateActive, StateRevoked, StateRotating)
			if err != nil {
				if ctx.Err() == nil {
					s.cfg.Logger.Warn("lifecycle monitor: listing tenants", "error", err)
				}
			} else {
				listed = now
				seen := make(map[string]bool, len(recs))
				mu.Lock()
				for _, rec := range recs {
					seen[rec.Tenant] = true
					if e := sched[rec.Tenant]; e != nil {
						e.rec = rec
						continue
					}
					sched[rec.Tenant] = &entry{rec: rec, due: now.Add(rand.N(interval))}
				}
				for tenant, e := range sched {
					if !seen[tenant] && !e.running {
						delete(sched, tenant)
					}
				}
				mu.Unlock()
			}
		}
		type job struct {
			e    *entry
			rec  Record
			lead time.Duration
		}
		mu.Lock()
		var due []job
		for _, e := range sched {
			if !e.running && !now.Before(e.due) {
				e.running = true
				// The first visit, at a random moment of the first
				// interval, checks the key even if the warm-up just
				// loaded it: the warm-up loads every key within seconds,
				// and following it would bunch every tenant's checks into
				// those seconds of each interval. One extra call per
				// tenant at start buys checks spread over the interval.
				l := lead
				if !e.visited {
					l, e.visited = interval-step, true
				}
				due = append(due, job{e, e.rec, l})
			}
		}
		mu.Unlock()
		for _, d := range due {
			e, rec := d.e, d.rec
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			running.Add(1)
			go func() {
				defer running.Done()
				defer func() { <-sem }()
				h, ok, err := s.monitor(ctx, rec, d.lead)
				if err != nil && ctx.Err() == nil {
					s.cfg.Logger.Warn("lifecycle monitor", "tenant", rec.Tenant, "error", err)
				}
				next := s.cfg.Now().Add(interval - lead)
				if ok && h.State == byok.StateHealthy && !h.LastSuccess.IsZero() {
					next = h.LastSuccess.Add(interval - lead)
				}
				mu.Lock()
				e.due, e.running = next, false
				mu.Unlock()
				if ok && (h.State == byok.StateRevoked) != (rec.State == StateRevoked) {
					relist.Store(true) // the record moved: read it again
				}
			}()
		}
		if err := s.drainEvents(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("lifecycle monitor: recording health events", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
