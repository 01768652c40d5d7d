package lifecycle

import (
	"context"
	"fmt"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

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
