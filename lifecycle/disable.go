package lifecycle

import (
	"context"
	"fmt"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// Disable turns BYOK off: it re-wraps the customer share of every
// customer-managed epoch under the platform root key at once, sets the
// state to disabled, and starts a job that moves every scope back to
// platform-managed. It is refused with a [*StateError] when the
// customer's key cannot be reached now: disable needs the key, to re-wrap
// its shares, so it must come before a revocation, not after.
func (s *Service) Disable(ctx context.Context, actor audit.Actor, tenant string) (Job, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Job{}, err
	}
	before := rec
	if err := s.allowed(rec, OpDisable); err != nil {
		s.refused(ctx, actor, tenant, OpDisable.action(), err)
		return Job{}, err
	}
	hs, err := s.kr.Check(withPurpose(ctx, audit.PurposeTenantRequest, actor), tenant)
	if err != nil {
		return Job{}, fmt.Errorf("lifecycle: checking the key of tenant %q: %w", tenant, err)
	}
	for _, h := range hs {
		if h.Kind == byok.CustomerManaged && h.State != byok.StateHealthy {
			err := &StateError{Tenant: tenant, State: rec.State, Op: OpDisable,
				Reason: fmt.Sprintf("your key cannot be reached (%s: %s), and %s", h.State, h.Reason, reasonOffNeedsKey)}
			s.refused(ctx, actor, tenant, OpDisable.action(), err)
			return Job{}, err
		}
	}
	if err := s.sharesToPlatform(ctx, actor, rec); err != nil {
		s.audit(ctx, actor, tenant, "key.disable", tenant, nil, nil, err)
		return Job{}, err
	}
	rec.State = StateDisabled
	if err := s.save(ctx, &rec); err != nil {
		return Job{}, err
	}
	s.forget(tenant)
	s.auditChange(ctx, actor, "key.disable", before, rec, nil)
	s.notify(ctx, tenant, "key.disabled", nil)
	return s.startJob(ctx, actor, tenant, JobDisable, 0)
}

// sharesToPlatform re-wraps the customer share of every customer-managed
// epoch that is still under the customer's key under the platform key.
func (s *Service) sharesToPlatform(ctx context.Context, actor audit.Actor, rec Record) error {
	keys, err := s.cfg.Store.TenantKeys(ctx, rec.Tenant)
	if err != nil {
		return fmt.Errorf("lifecycle: reading the keys of tenant %q: %w", rec.Tenant, err)
	}
	p, err := s.provider(ctx, rec)
	if err != nil {
		return err
	}
	vctx := withPurpose(ctx, audit.PurposeRotationJob, actor)
	for _, k := range keys {
		if k.Kind != byok.CustomerManaged || s.isPlatformKeyID(k.CustomerShare.KeyID) {
			continue
		}
		c, err := p.Unwrap(bound(vctx, k.Epoch), k.CustomerShare)
		if err != nil {
			return fmt.Errorf("lifecycle: unwrapping the customer share of tenant %q epoch %d: %w; restore access to the key and disable again", rec.Tenant, k.Epoch, err)
		}
		w, err := s.cfg.PlatformKMS.Wrap(ctx, s.cfg.PlatformKeyID, c)
		clear(c)
		if err != nil {
			return fmt.Errorf("lifecycle: wrapping the customer share of tenant %q epoch %d under the platform key: %w", rec.Tenant, k.Epoch, err)
		}
		if err := s.cfg.Store.ReplaceShare(ctx, rec.Tenant, byok.CustomerManaged, k.Epoch, k.CustomerShare.KeyID, w); err != nil {
			return fmt.Errorf("lifecycle: storing the re-wrapped share of tenant %q epoch %d: %w", rec.Tenant, k.Epoch, err)
		}
	}
	return nil
}
