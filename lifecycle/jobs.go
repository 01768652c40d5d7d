package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/openbyok/byok/store"
)

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
