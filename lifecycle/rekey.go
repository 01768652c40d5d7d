package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// rekey walks the tenant's DEKs under every customer-managed epoch older
// than the job's epoch at once, in id order from its cursor, and re-wraps
// them onto the job's epoch in batches of Config.BatchSize: one
// transaction per batch with the cursor and progress. j moves on only when its batch is written, so a failed
// write is retried from the last batch written, as a crash or kill at any
// point resumes: a DEK re-wrapped but not written is still under its old
// epoch, whose key stays until the job is done.
//
// The batches are pipelined: while one batch's transaction commits, the
// next page is re-wrapped (rekeyPages) and the one after it read
// (readPages). Only the writes move the job on, in order; a batch read
// ahead of a failed write is dropped and read again by the next run, from
// the cursor of the last batch written.
func (s *Service) rekey(ctx context.Context, j *JobRecord) error {
	if j.Walk >= j.Epoch {
		return nil
	}
	if j.Walk != 0 {
		// Stored by a version that walked one older epoch at a time: its
		// cursor does not cover the later epochs, so walk them all from
		// the first id (the DEKs it moved are skipped, being under the
		// job's epoch already).
		j.Walk, j.Cursor = 0, byok.DEKID{}
	}
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan rekeyBatch, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(batches)
		s.rekeyPages(ctx, *j, batches)
	}()
	defer func() {
		cancel()
		<-done // no read of the store or vault outlives the run
	}()
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		next := *j
		next.Cursor = b.out[len(b.out)-1].ID
		next.Done += int64(len(b.out))
		s.renew(&next)
		if err := s.cfg.Store.RewrapBatch(ctx, nil, b.out, next); err != nil {
			return err
		}
		*j = next
	}
	if err := ctx.Err(); err != nil {
		return err // rekeyPages stopped early
	}
	j.Walk, j.Cursor = j.Epoch, byok.DEKID{}
	return nil
}

// rekeyBatch is a page of DEKs re-wrapped (out, in the page's id order),
// or the failure to read or re-wrap the next page.
type rekeyBatch struct {
	out []byok.DEKRecord
	err error
}

// rekeyPages re-wraps the pages readPages reads from j's cursor and sends
// each to batches, until the walk is done, a page fails (its error sent
// last) or ctx ends. It writes nothing, and returns once readPages has.
func (s *Service) rekeyPages(ctx context.Context, j JobRecord, batches chan<- rekeyBatch) {
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan rekeyBatch, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(pages)
		s.readPages(ctx, j, pages)
	}()
	defer func() {
		cancel()
		<-read
	}()
	for p := range pages {
		if p.err == nil {
			p.out, p.err = s.kr.RewrapDEKs(ctx, j.Tenant, p.out, byok.CustomerManaged)
			if p.err != nil {
				p.err = fmt.Errorf("re-wrapping a page of DEKs: %w", p.err)
			}
		}
		if !sendBatch(ctx, batches, p) || p.err != nil {
			return
		}
	}
}

// readPages sends the pages of DEKs of the re-key j to pages, from its
// cursor on, until the walk is done, a read fails (its error sent last)
// or ctx ends.
func (s *Service) readPages(ctx context.Context, j JobRecord, pages chan<- rekeyBatch) {
	for cursor := j.Cursor; ; {
		page, err := s.cfg.Store.ListDEKs(ctx, j.Tenant, byok.CustomerManaged, j.Epoch, cursor, s.cfg.BatchSize)
		if err == nil && len(page) == 0 {
			return
		}
		if !sendBatch(ctx, pages, rekeyBatch{out: page, err: err}) || err != nil || len(page) < s.cfg.BatchSize {
			return
		}
		cursor = page[len(page)-1].ID
	}
}

// sendBatch sends b to c, unless ctx ends first; it reports whether it
// did.
func sendBatch(ctx context.Context, c chan<- rekeyBatch, b rekeyBatch) bool {
	select {
	case c <- b:
		return true
	case <-ctx.Done():
		return false
	}
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
