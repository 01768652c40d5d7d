package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// rekey walks the DEKs of every customer-managed epoch older than the
// job's epoch, from its cursor, and re-wraps them onto the job's epoch in
// batches of Config.BatchSize: one transaction per batch with the cursor
// and progress. j moves on only when its batch is written, so a failed
// write is retried from the last batch written, as a crash or kill at any
// point resumes: a DEK re-wrapped but not written is still under its old
// epoch, whose key stays until the job is done.
func (s *Service) rekey(ctx context.Context, j *JobRecord) error {
	for ; j.Walk < j.Epoch; j.Walk, j.Cursor = j.Walk+1, (byok.DEKID{}) {
		for {
			page, err := s.cfg.Store.ListDEKs(ctx, j.Tenant, byok.CustomerManaged, j.Walk, j.Cursor, s.cfg.BatchSize)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			out, err := s.kr.RewrapDEKs(ctx, j.Tenant, page, byok.CustomerManaged)
			if err != nil {
				return fmt.Errorf("re-wrapping DEKs of epoch %d: %w", j.Walk, err)
			}
			next := *j
			next.Cursor = page[len(page)-1].ID
			next.Done += int64(len(out))
			s.renew(&next)
			if err := s.cfg.Store.RewrapBatch(ctx, nil, out, next); err != nil {
				return err
			}
			*j = next
			if len(page) < s.cfg.BatchSize {
				break
			}
		}
	}
	return nil
}

// Rekey creates the next epoch of the tenant's customer-managed key (new
// customer and platform shares) and starts a job that Tick runs to
// re-wrap every DEK of older epochs onto it, in batches, resumably.
// Allowed when active.
func (s *Service) Rekey(ctx context.Context, actor audit.Actor, tenant string) (Job, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Job{}, err
	}
	if err := s.allowed(rec, OpRekey); err != nil {
		s.refused(ctx, actor, tenant, OpRekey.action(), err)
		return Job{}, err
	}
	vctx := withPurpose(ctx, audit.PurposeRotationJob, actor)
	tk, err := s.kr.NewTenantKey(vctx, tenant, byok.CustomerManaged, rec.Settings.KeyID)
	if err != nil {
		s.audit(ctx, actor, tenant, "key.rekey", tenant, nil, nil, err)
		return Job{}, fmt.Errorf("lifecycle: creating the next key epoch of tenant %q: %w", tenant, err)
	}
	rec.State = StateRotating
	rec.Versions = addVersion(rec.Versions, tk.CustomerShare.KeyID)
	if err := s.save(ctx, &rec); err != nil {
		return Job{}, err
	}
	j, err := s.startJob(ctx, actor, tenant, JobRekey, tk.Epoch)
	after, _ := json.Marshal(map[string]any{"epoch": tk.Epoch, "deks": j.Total})
	s.audit(ctx, actor, tenant, "key.rekey", tenant, nil, after, err)
	return j, err
}
