package lifecycle

import (
	"context"
	"fmt"
	"slices"

	"github.com/openbyok/byok/audit"
)

// SetScopes changes which scopes the customer's key covers. Before
// activation it only records the choice; when active it starts a scopes
// job (shown in CustomerKey.Job) that Tick runs to move scopes in or out,
// re-wrapping their DEKs locally. Unknown and platform-only scopes fail
// with a [*FieldError].
func (s *Service) SetScopes(ctx context.Context, actor audit.Actor, tenant string, coverage Coverage) (CustomerKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	before := rec
	if err := s.allowed(rec, OpSetScopes); err != nil {
		s.refused(ctx, actor, tenant, OpSetScopes.action(), err)
		return CustomerKey{}, err
	}
	if rec.Coverage, err = s.checkCoverage(ctx, tenant, coverage); err != nil {
		return CustomerKey{}, err
	}
	if err := s.save(ctx, &rec); err != nil {
		return CustomerKey{}, err
	}
	s.auditChange(ctx, actor, "key.scopes", before, rec, nil)
	if rec.State == StateActive {
		if _, err := s.startJob(ctx, actor, tenant, JobScopes, 0); err != nil {
			return CustomerKey{}, err
		}
	}
	return s.Status(ctx, tenant)
}

// checkCoverage validates c against the tenant's known scopes and returns
// it normalised (sorted, without duplicates).
func (s *Service) checkCoverage(ctx context.Context, tenant string, c Coverage) (Coverage, error) {
	known, err := s.scopes(ctx, tenant)
	if err != nil {
		return Coverage{}, err
	}
	isKnown := make(map[string]bool, len(known))
	for _, sc := range known {
		isKnown[sc.Scope] = true
	}
	check := func(field string, list []string) ([]string, error) {
		for i, sc := range list {
			f := fmt.Sprintf("coverage.%s[%d]", field, i)
			switch {
			case s.platformOnly[sc]:
				return nil, &FieldError{Field: f, Reason: fmt.Sprintf("scope %q is platform-only (transient data) and cannot be covered by a customer key", sc)}
			case !isKnown[sc]:
				return nil, &FieldError{Field: f, Reason: fmt.Sprintf("scope %q is unknown to tenant %q; the status lists its scopes", sc, tenant)}
			}
		}
		out := slices.Clone(list)
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	var out Coverage
	out.All = c.All
	if out.Include, err = check("include", c.Include); err != nil {
		return Coverage{}, err
	}
	if out.Exclude, err = check("exclude", c.Exclude); err != nil {
		return Coverage{}, err
	}
	for _, sc := range out.Include {
		if slices.Contains(out.Exclude, sc) {
			return Coverage{}, &FieldError{Field: "coverage.exclude", Reason: fmt.Sprintf("scope %q is both included and excluded", sc)}
		}
	}
	if !out.All && len(out.Exclude) > 0 {
		return Coverage{}, &FieldError{Field: "coverage.exclude", Reason: "only makes sense with all set; list covered scopes in include instead"}
	}
	return out, nil
}
