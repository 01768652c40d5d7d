package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
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
	rec, err := s.cfg.Store.KeyRecord(ctx, rec.Tenant)
	if err != nil {
		return fmt.Errorf("lifecycle: reading the key record of tenant %q: %w", rec.Tenant, err)
	}
	return s.tickActive(ctx, rec)
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

// drainEvents records the keyring's revocations, outages and
// restorations of customer keys in the tenants' timelines.
func (s *Service) drainEvents(ctx context.Context) error {
	s.mon.drain.Lock()
	defer s.mon.drain.Unlock()
	s.mu.Lock()
	evs := s.pending
	s.pending = nil
	s.mu.Unlock()
	var errs []error
	for _, e := range evs {
		if e.Kind != byok.CustomerManaged {
			continue
		}
		var kind HealthEventKind
		switch e.Type {
		case byok.EventRevoked:
			kind = HealthRevoked
		case byok.EventUnavailable:
			kind = HealthUnavailable
		case byok.EventRestored:
			kind = HealthRestored
		default:
			continue
		}
		last, err := s.lastHealthKind(ctx, e.Tenant)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if kind == last || kind == HealthRestored && last == "" {
			continue // a repeat, or a recovery from a mere degradation
		}
		he := HealthEvent{Tenant: e.Tenant, Kind: kind, Reason: e.Reason, DetectedAt: e.At, EnforcedAt: e.At, Replica: s.cfg.ReplicaID}
		if err := s.cfg.Store.AddHealthEvent(ctx, he); err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		s.lastKind[e.Tenant] = kind
		s.mu.Unlock()
		s.notify(ctx, e.Tenant, "key."+string(kind), map[string]string{
			"reason": string(e.Reason), "detected_at": e.At.UTC().Format(time.RFC3339Nano),
			"enforced_at": e.At.UTC().Format(time.RFC3339Nano), "replica": s.cfg.ReplicaID})
	}
	return errors.Join(errs...)
}

// lastHealthKind returns the kind of the tenant's latest timeline entry,
// "" if it has none.
func (s *Service) lastHealthKind(ctx context.Context, tenant string) (HealthEventKind, error) {
	s.mu.Lock()
	k, ok := s.lastKind[tenant]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	es, err := s.cfg.Store.HealthEvents(ctx, tenant, 1)
	if err != nil {
		return "", err
	}
	if len(es) > 0 {
		k = es[0].Kind
	}
	s.mu.Lock()
	s.lastKind[tenant] = k
	s.mu.Unlock()
	return k, nil
}

// autoRotate follows the current version of a versionless key: when the
// vault's current version is not the one the customer share is under, it
// rotates (1 describe, then 1 unwrap and 1 wrap).
func (s *Service) autoRotate(ctx context.Context, rec Record) error {
	if _, versioned := splitKeyID(rec.Settings.KeyID); versioned || !s.describeDue(rec.Tenant, s.cfg.Now()) {
		return nil
	}
	tk, err := s.cfg.Store.TenantKey(ctx, rec.Tenant, byok.CustomerManaged)
	if err != nil || s.isPlatformKeyID(tk.CustomerShare.KeyID) {
		return err
	}
	p, err := s.provider(ctx, rec)
	if err != nil {
		return err
	}
	info, err := p.Describe(withPurpose(ctx, audit.PurposeBackgroundCheck, monitorActor), rec.Settings.KeyID)
	if err != nil {
		if kms.ClassOf(err) == kms.Transient {
			return nil // the check above already dealt with the outage
		}
		return fmt.Errorf("lifecycle: describing the key of tenant %q: %w", rec.Tenant, err)
	}
	if info.KeyID == tk.CustomerShare.KeyID {
		return nil
	}
	settings, err := s.unseal(ctx, rec)
	if err != nil {
		return err
	}
	_, err = s.rotate(ctx, monitorActor, rec, settings)
	return err
}

// coverNewScopes starts a scopes job when a scope's kind differs from
// what the tenant's coverage says: a scope that appeared since activation.
func (s *Service) coverNewScopes(ctx context.Context, rec Record) error {
	scopes, err := s.scopes(ctx, rec.Tenant)
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		if sc.Kind != s.wantKind(rec, sc.Scope) {
			return s.ensureJob(ctx, rec, JobScopes)
		}
	}
	return nil
}

// wantKind is the kind of key rec's coverage puts scope under.
func (s *Service) wantKind(rec Record, scope string) byok.KeyKind {
	if (rec.State == StateActive || rec.State == StateRotating || rec.State == StateScheduled) && s.covered(rec, scope) {
		return byok.CustomerManaged
	}
	return byok.PlatformManaged
}

// ensureJob starts a job of kind for the tenant of rec unless one of its
// jobs is unfinished. rec must have been read before the jobs are listed
// here: the job is stored together with a write of rec (a version CAS,
// [Store.StartJob]), so of replicas that tick at once exactly one starts
// it; the others find the record changed and look again next Tick.
func (s *Service) ensureJob(ctx context.Context, rec Record, kind JobKind) error {
	jobs, err := s.cfg.Store.ListJobs(ctx, rec.Tenant, true, 1)
	if err != nil {
		return fmt.Errorf("lifecycle: reading the jobs of tenant %q: %w", rec.Tenant, err)
	}
	if len(jobs) > 0 {
		return nil
	}
	now := s.cfg.Now()
	j := JobRecord{Job: Job{ID: newJobID(), Tenant: rec.Tenant, Kind: kind, State: JobPending, Actor: schedulerActor, Created: now, Updated: now}}
	next := rec
	next.Version++
	next.Updated = now
	err = s.cfg.Store.StartJob(ctx, next, j)
	if errors.Is(err, store.ErrConflict) {
		return nil // another replica (or an admin) wrote the record first
	}
	if err != nil {
		return fmt.Errorf("lifecycle: starting a %s job of tenant %q: %w", kind, rec.Tenant, err)
	}
	return nil
}

// startJob stores a pending job with its estimated total.
func (s *Service) startJob(ctx context.Context, actor audit.Actor, tenant string, kind JobKind, epoch uint32) (Job, error) {
	now := s.cfg.Now()
	j := JobRecord{Job: Job{ID: newJobID(), Tenant: tenant, Kind: kind, State: JobPending, Actor: actor, Created: now, Updated: now}, Epoch: epoch}
	if kind == JobRekey {
		n, err := s.cfg.Store.CountDEKs(ctx, tenant, byok.CustomerManaged, epoch, "")
		if err != nil {
			return Job{}, err
		}
		j.Total, j.Walk = n, 1
	}
	if err := s.cfg.Store.PutJob(ctx, j); err != nil {
		return Job{}, fmt.Errorf("lifecycle: storing a %s job of tenant %q: %w", kind, tenant, err)
	}
	return j.Job, nil
}

// DefaultJobLease is the default of Config.JobLease.
const DefaultJobLease = 2 * time.Minute

// jobLease is Config.JobLease or its default.
func (s *Service) jobLease() time.Duration {
	if s.cfg.JobLease > 0 {
		return s.cfg.JobLease
	}
	return DefaultJobLease
}

// jobPage is how many unfinished jobs runJobs lists at a time (a
// variable for tests).
var jobPage = 1000

// runJobs claims and runs every unfinished job, oldest first, with no cap
// per tick: it lists them in pages and runs the jobs of different tenants
// concurrently (Config.JobWorkers), a tenant's own jobs one after the
// other. A job whose lease another replica holds, or that finished since
// the listing, is skipped without an error.
func (s *Service) runJobs(ctx context.Context) error {
	page := jobPage
	var (
		mu   sync.Mutex
		errs []error
		seen = make(map[string]bool)
	)
	for ctx.Err() == nil {
		// Jobs run in this pass stay listed only if they failed or another
		// replica holds them: ask for a page more than those.
		limit := len(seen) + page
		jobs, err := s.cfg.Store.ListJobs(ctx, "", true, limit)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("lifecycle: listing unfinished jobs: %w", err))...)
		}
		var tenants []string
		byTenant := make(map[string][]JobRecord)
		for i := len(jobs) - 1; i >= 0; i-- { // oldest first
			j := jobs[i]
			if seen[j.ID] {
				continue
			}
			seen[j.ID] = true
			if byTenant[j.Tenant] == nil {
				tenants = append(tenants, j.Tenant)
			}
			byTenant[j.Tenant] = append(byTenant[j.Tenant], j)
		}
		parallel(ctx, len(tenants), orDefault(s.cfg.JobWorkers, DefaultJobWorkers), func(i int) {
			for _, j := range byTenant[tenants[i]] {
				if err := s.claimAndRun(ctx, j); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
		if len(jobs) < limit || len(tenants) == 0 {
			break
		}
	}
	return errors.Join(errs...)
}

// claimAndRun claims a listed job and runs it; a job another replica
// holds, or that finished since, is skipped.
func (s *Service) claimAndRun(ctx context.Context, listed JobRecord) error {
	now := s.cfg.Now()
	j, ok, err := s.cfg.Store.ClaimJob(ctx, listed.ID, s.cfg.ReplicaID, now, now.Add(s.jobLease()))
	if err != nil {
		return fmt.Errorf("lifecycle: claiming %s job %s of tenant %q: %w", listed.Kind, listed.ID, listed.Tenant, err)
	}
	if !ok {
		return nil
	}
	return s.runJob(ctx, j)
}

// renew stamps j for its next write: updated now, and the lease extended
// by Config.JobLease from now.
func (s *Service) renew(j *JobRecord) {
	j.Updated = s.cfg.Now()
	j.LeaseUntil = j.Updated.Add(s.jobLease())
}

// runJob runs j, claimed by this replica, until it is done or fails, and
// releases its lease. A failure counts an attempt and leaves the job to
// the next Tick, until Config.MaxAttempts. The record moves on (finishJob,
// failJob) before the job is written finished, so that a scheduler never
// sees a scheduled record with no unfinished job while an activation ends.
// A run that lost its lease to another replica (a write refused by the
// fence) stops without counting an attempt: the new owner carries the job
// on from its stored cursor.
func (s *Service) runJob(ctx context.Context, j JobRecord) error {
	j.State = JobRunning
	var err error
	switch j.Kind {
	case JobActivate:
		err = s.activate(ctx, &j)
	case JobRekey:
		err = s.rekey(ctx, &j)
	case JobScopes, JobDisable:
		err = s.moveScopes(ctx, &j)
	default:
		err = fmt.Errorf("unknown job kind %q", j.Kind)
	}
	s.forget(j.Tenant)
	if err == nil {
		err = s.finishJob(ctx, j)
	}
	if s.lostLease(ctx, j, err) {
		return nil
	}
	j.Updated, j.LeaseUntil = s.cfg.Now(), time.Time{}
	if err == nil {
		j.State, j.Error = JobDone, ""
		if perr := s.cfg.Store.PutJob(ctx, j); perr != nil && !s.lostLease(ctx, j, perr) {
			return perr
		}
		s.audit(ctx, j.Actor, j.Tenant, "job."+string(j.Kind), j.ID, nil, jobView(j), nil)
		return nil
	}
	j.Attempts++
	j.Error = err.Error()
	if j.Attempts >= s.cfg.MaxAttempts {
		j.State = JobFailed
		if ferr := s.failJob(ctx, j); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	if perr := s.cfg.Store.PutJob(ctx, j); perr != nil {
		if s.lostLease(ctx, j, perr) {
			return nil
		}
		return errors.Join(err, perr)
	}
	if j.State == JobFailed {
		s.audit(ctx, j.Actor, j.Tenant, "job."+string(j.Kind), j.ID, nil, jobView(j), err)
	}
	return fmt.Errorf("lifecycle: %s job %s of tenant %q (attempt %d of %d): %w", j.Kind, j.ID, j.Tenant, j.Attempts, s.cfg.MaxAttempts, err)
}

// lostLease reports whether err is the lease fence refusing a write of j:
// the job is now another replica's. It logs the loss.
func (s *Service) lostLease(ctx context.Context, j JobRecord, err error) bool {
	if !errors.Is(err, store.ErrConflict) {
		return false
	}
	cur, rerr := s.cfg.Store.JobRecord(ctx, j.ID)
	if rerr != nil || cur.Owner == s.cfg.ReplicaID {
		return false
	}
	s.cfg.Logger.Warn("lifecycle: another replica took over a job whose lease this replica let expire; it carries the job on",
		"job", j.ID, "kind", j.Kind, "tenant", j.Tenant, "owner", cur.Owner, "lease", s.jobLease())
	return true
}

func jobView(j JobRecord) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"kind": j.Kind, "state": j.State, "done": j.Done, "total": j.Total, "attempts": j.Attempts})
	return b
}

// finishJob moves the record on after a job succeeded.
func (s *Service) finishJob(ctx context.Context, j JobRecord) error {
	rec, err := s.cfg.Store.KeyRecord(ctx, j.Tenant)
	if err != nil {
		return err
	}
	before := rec
	switch {
	case j.Kind == JobActivate && rec.State == StateScheduled:
		rec.State, rec.ActivatedAt = StateActive, s.cfg.Now()
	case j.Kind == JobRekey && rec.State == StateRotating:
		rec.State = StateActive
	default:
		return nil
	}
	if err := s.save(ctx, &rec); err != nil {
		return err
	}
	action := "key.activate"
	if j.Kind == JobRekey {
		action = "key.rekeyed"
	}
	s.auditChange(ctx, schedulerActor, action, before, rec, nil)
	return nil
}

// failJob moves the record on after a job gave up: a failed activation
// goes back to draft (fix, test and proceed again), a failed re-key back
// to active (DEKs not yet moved stay readable under their epoch).
func (s *Service) failJob(ctx context.Context, j JobRecord) error {
	rec, err := s.cfg.Store.KeyRecord(ctx, j.Tenant)
	if err != nil {
		return err
	}
	before := rec
	switch {
	case j.Kind == JobActivate && rec.State == StateScheduled:
		rec.State, rec.EnforceAt = StateDraft, time.Time{}
	case j.Kind == JobRekey && rec.State == StateRotating:
		rec.State = StateActive
	default:
		return nil
	}
	if err := s.save(ctx, &rec); err != nil {
		return err
	}
	s.auditChange(ctx, schedulerActor, "job.failed", before, rec, errors.New(j.Error))
	return nil
}

// activate creates the customer-managed tenant key (once: the epoch is
// kept in the job) and moves the covered scopes onto it.
func (s *Service) activate(ctx context.Context, j *JobRecord) error {
	rec, err := s.cfg.Store.KeyRecord(ctx, j.Tenant)
	if err != nil {
		return err
	}
	if rec.State != StateScheduled {
		return nil // reconfigured or disabled meanwhile: nothing to activate
	}
	if j.Epoch == 0 {
		tk, err := s.kr.NewTenantKey(withPurpose(ctx, audit.PurposeRotationJob, j.Actor), j.Tenant, byok.CustomerManaged, rec.Settings.KeyID)
		if err != nil {
			return fmt.Errorf("wrapping a new customer share under %s: %w", rec.Settings.KeyID, err)
		}
		j.Epoch = tk.Epoch
		rec.Versions = addVersion(rec.Versions, tk.CustomerShare.KeyID)
		if err := s.save(ctx, &rec); err != nil {
			return err
		}
		s.renew(j)
		if err := s.cfg.Store.PutJob(ctx, *j); err != nil {
			return err
		}
	}
	return s.moveScopes(ctx, j)
}

// moveScopes walks the tenant's scopes from the job's cursor and moves
// each one whose kind differs from what the coverage wants, re-wrapping
// its DEKs locally in batches of Config.BatchSize, one transaction per
// batch with the job's cursor and progress.
func (s *Service) moveScopes(ctx context.Context, j *JobRecord) error {
	rec, err := s.cfg.Store.KeyRecord(ctx, j.Tenant)
	if err != nil {
		return err
	}
	scopes, err := s.scopes(ctx, j.Tenant)
	if err != nil {
		return err
	}
	if j.Total == 0 {
		for _, sc := range scopes {
			if want := s.wantKind(rec, sc.Scope); sc.Kind != want {
				n, err := s.cfg.Store.CountDEKs(ctx, j.Tenant, otherKind(want), ^uint32(0), sc.Scope)
				if err != nil {
					return err
				}
				j.Total += n
			}
		}
	}
	for _, sc := range scopes {
		if sc.Scope < j.Scope {
			continue // done before a crash
		}
		want := s.wantKind(rec, sc.Scope)
		if sc.Scope != j.Scope {
			j.Scope, j.Cursor = sc.Scope, byok.DEKID{}
		}
		if err := s.moveScope(ctx, j, byok.ScopeRecord{Tenant: j.Tenant, Scope: sc.Scope, Kind: want}, sc.Kind != want); err != nil {
			return err
		}
	}
	return nil
}

func otherKind(k byok.KeyKind) byok.KeyKind {
	if k == byok.CustomerManaged {
		return byok.PlatformManaged
	}
	return byok.CustomerManaged
}

// moveScope re-wraps the DEKs of one scope that are not under target's
// kind, from the job's cursor on, and sets the scope's kind with the first
// batch (setKind) so that new DEKs go under the target at once.
func (s *Service) moveScope(ctx context.Context, j *JobRecord, target byok.ScopeRecord, setKind bool) error {
	for {
		page, err := s.cfg.Store.ListScopeDEKs(ctx, j.Tenant, target.Scope, j.Cursor, s.cfg.BatchSize)
		if err != nil {
			return err
		}
		var toMove []byok.DEKRecord
		for _, d := range page {
			if d.Kind != target.Kind {
				toMove = append(toMove, d)
			}
		}
		var out []byok.DEKRecord
		if len(toMove) > 0 {
			if out, err = s.kr.RewrapDEKs(ctx, j.Tenant, toMove, target.Kind); err != nil {
				return fmt.Errorf("re-wrapping DEKs of scope %q: %w", target.Scope, err)
			}
		}
		// j moves on only when its batch is written: a failed write is
		// retried from the last batch written, never skipped.
		next := *j
		if len(page) > 0 {
			next.Cursor = page[len(page)-1].ID
		}
		next.Done += int64(len(out))
		s.renew(&next)
		var sp *byok.ScopeRecord
		if setKind {
			sp, setKind = &target, false
		}
		if len(out) > 0 || sp != nil {
			if err := s.cfg.Store.RewrapBatch(ctx, sp, out, next); err != nil {
				return err
			}
		}
		*j = next
		if len(page) < s.cfg.BatchSize {
			return nil
		}
	}
}
