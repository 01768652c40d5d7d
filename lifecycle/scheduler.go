package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
)

// autoRotate follows the current version of a versionless key: when the
// vault's current version is not the one the customer share is under, it
// rotates (1 describe, then 1 unwrap and 1 wrap).
func (s *Service) autoRotate(ctx context.Context, rec Record) error {
	conn, err := s.Connector(rec.Settings.Provider)
	if err != nil {
		return err
	}
	if _, version := conn.SplitKeyID(rec.Settings.KeyID); version != "" || !s.describeDue(rec.Tenant, s.cfg.Now()) {
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
		j.Total = n
	}
	if err := s.cfg.Store.PutJob(ctx, j); err != nil {
		return Job{}, fmt.Errorf("lifecycle: storing a %s job of tenant %q: %w", kind, tenant, err)
	}
	return j.Job, nil
}
