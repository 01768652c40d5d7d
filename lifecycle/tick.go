package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// Actors of the background work.
var (
	monitorActor   = audit.Actor{Kind: audit.System, ID: "health-monitor"}
	schedulerActor = audit.Actor{Kind: audit.System, ID: "scheduler"}
)

// Tick runs one deterministic pass: the health monitor (a check of every
// BYOK tenant's customer key not checked within the check interval — one
// unwrap of its customer share —, automatic rotation of versionless keys,
// revocations and restorations recorded), the scheduler (activation of
// tenants whose enforcement date has come, new scopes covered by
// default) and the job runner (every unfinished job to its end or its
// next failure). Tenants are worked on concurrently
// (Config.MonitorWorkers), jobs too (Config.JobWorkers). It returns the
// errors of the pass joined; one tenant's failure does not stop the
// others.
func (s *Service) Tick(ctx context.Context) error { return s.tick(ctx, true) }

// tick is Tick; withMonitor false leaves the health checks to Run's
// monitor.
func (s *Service) tick(ctx context.Context, withMonitor bool) error {
	recs, err := s.records(ctx, StateActive, StateRevoked, StateRotating, StateScheduled, StateDisabled)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	// Without the monitor the per-tenant work is store reads only: a few
	// workers do it without crowding the store's connections, which Run's
	// monitor needs for its checks.
	workers := orDefault(s.cfg.MonitorWorkers, DefaultMonitorWorkers)
	if !withMonitor {
		workers = min(workers, 2)
	}
	parallel(ctx, len(recs), workers, func(i int) {
		if err := s.tickTenant(ctx, recs[i], withMonitor); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	if err := s.drainEvents(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.runJobs(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run warms the tenant keys in the background ([Service.Prefetch]), runs
// the health monitor continuously (each tenant checked one interval after
// its last check, the checks spread over the interval), and runs the rest
// of Tick (scheduler, auto-rotation, jobs) every Config.TickInterval, until
// ctx is done; it logs their errors and returns ctx's error. Requests are
// served meanwhile: a request for a tenant not warm yet loads its key
// itself, sharing the load with the warm-up.
func (s *Service) Run(ctx context.Context) error {
	var bg sync.WaitGroup
	defer bg.Wait()
	bg.Go(func() {
		if st, err := s.Prefetch(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("lifecycle prefetch", "error", err, "warm", st.Warm, "failed", st.Failed)
		}
	})
	bg.Go(func() { s.runMonitor(ctx) })
	t := time.NewTicker(s.cfg.TickInterval)
	defer t.Stop()
	for {
		if err := s.tick(ctx, false); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("lifecycle tick", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// records lists every record in the given states.
func (s *Service) records(ctx context.Context, states ...State) ([]Record, error) {
	var all []Record
	after := ""
	for {
		page, err := s.cfg.Store.ListKeyRecords(ctx, after, 500, states...)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: listing key records: %w", err)
		}
		all = append(all, page...)
		if len(page) < 500 {
			return all, nil
		}
		after = page[len(page)-1].Tenant
	}
}

// tickTenant runs the monitor (if withMonitor) and the scheduler for one
// tenant.
func (s *Service) tickTenant(ctx context.Context, rec Record, withMonitor bool) error {
	switch rec.State {
	case StateScheduled:
		if s.cfg.Now().Before(rec.EnforceAt) {
			return nil
		}
		return s.ensureJob(ctx, rec, JobActivate)
	case StateDisabled:
		return nil
	}
	if withMonitor {
		h, ok, err := s.monitor(ctx, rec, 0)
		if err != nil {
			return err
		}
		moved := ok && (rec.State == StateActive && h.State == byok.StateRevoked || rec.State == StateRevoked && h.State == byok.StateHealthy)
		if !moved {
			return s.tickActive(ctx, rec) // the record as listed is current
		}
	}
	current, err := s.cfg.Store.KeyRecord(ctx, rec.Tenant)
	if err != nil {
		return fmt.Errorf("lifecycle: reading the key record of tenant %q: %w", rec.Tenant, err)
	}
	return s.tickActive(ctx, current)
}

// tickActive runs the scheduler's work for a tenant past activation:
// auto-rotation and new scopes of an active tenant, and the end of a
// rotation a crash interrupted.
func (s *Service) tickActive(ctx context.Context, rec Record) error {
	switch rec.State {
	case StateActive:
		if err := s.autoRotate(ctx, rec); err != nil {
			return err
		}
		return s.coverNewScopes(ctx, rec)
	case StateRotating:
		// A rotation interrupted by a crash leaves no unfinished job. One
		// that another replica is running right now (rotations run in the
		// admin's request, without a job) updated the record less than a
		// job lease ago: leave it alone.
		if s.cfg.Now().Sub(rec.Updated) < s.jobLease() {
			return nil
		}
		jobs, err := s.cfg.Store.ListJobs(ctx, rec.Tenant, true, 1)
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			rec.State = StateActive
			return s.save(ctx, &rec)
		}
	}
	return nil
}
