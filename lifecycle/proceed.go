package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/openbyok/byok/audit"
)

// Proceed schedules activation at enforceAt, which must be in the future,
// with coverage (nil: every scope). It requires a passing Test of exactly
// the saved settings. Allowed in draft and scheduled (a new date).
func (s *Service) Proceed(ctx context.Context, actor audit.Actor, tenant string, enforceAt time.Time, coverage *Coverage) (CustomerKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	before := rec
	if err := s.allowed(rec, OpProceed); err != nil {
		s.refused(ctx, actor, tenant, OpProceed.action(), err)
		return CustomerKey{}, err
	}
	now := s.cfg.Now()
	if enforceAt.IsZero() {
		return CustomerKey{}, &FieldError{Field: "enforce_at", Reason: "is missing; give the date BYOK takes effect, in the future"}
	}
	if !enforceAt.After(now) {
		return CustomerKey{}, &FieldError{Field: "enforce_at", Reason: fmt.Sprintf("is %s, not in the future (now is %s); give a later date",
			enforceAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	cov := rec.Coverage
	if coverage != nil {
		if cov, err = s.checkCoverage(ctx, tenant, *coverage); err != nil {
			return CustomerKey{}, err
		}
	}
	switch {
	case rec.LastTest == nil || rec.LastTest.SettingsHash != rec.SettingsHash:
		err = &StateError{Tenant: tenant, State: rec.State, Op: OpProceed, Allowed: []Op{OpConfigure, OpTest},
			Reason: "the saved settings have not been tested; run Test configuration, then proceed"}
	case !rec.LastTest.Passed():
		err = &StateError{Tenant: tenant, State: rec.State, Op: OpProceed, Allowed: []Op{OpConfigure, OpTest},
			Reason: "the last Test configuration of the saved settings failed (" + failedChecks(*rec.LastTest) + "); fix them and test again"}
	}
	if err != nil {
		s.refused(ctx, actor, tenant, OpProceed.action(), err)
		return CustomerKey{}, err
	}
	rec.State, rec.EnforceAt, rec.Coverage = StateScheduled, enforceAt.UTC(), cov
	if err := s.save(ctx, &rec); err != nil {
		return CustomerKey{}, err
	}
	s.auditChange(ctx, actor, "key.proceed", before, rec, nil)
	return s.Status(ctx, tenant)
}
