package lifecycle

import (
	"context"
	"fmt"

	"github.com/openbyok/byok"
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
