package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// CreateTenant registers a tenant with a platform-managed key and
// declares its scopes (more appear when data is first written to them).
// Operator action.
func (s *Service) CreateTenant(ctx context.Context, actor audit.Actor, tenant string, policy byok.Policy, scopes []string) error {
	for i, sc := range scopes {
		if err := checkScopeID(sc); err != nil {
			return &FieldError{Field: fmt.Sprintf("scopes[%d]", i), Reason: err.Error()}
		}
	}
	err := s.kr.CreateTenant(ctx, tenant, policy)
	if err == nil {
		for _, sc := range scopes {
			if err = s.cfg.Store.PutScope(ctx, byok.ScopeRecord{Tenant: tenant, Scope: sc, Kind: byok.PlatformManaged}); err != nil {
				err = fmt.Errorf("lifecycle: declaring scope %q of tenant %q: %w", sc, tenant, err)
				break
			}
		}
	}
	after, _ := json.Marshal(map[string]any{"policy": policy.String(), "scopes": scopes})
	s.audit(ctx, actor, tenant, "tenant.create", tenant, nil, after, err)
	return err
}

// ListTenants lists tenants with their key state, ordered by id, after
// the exclusive cursor, at most limit. Operator action.
func (s *Service) ListTenants(ctx context.Context, after string, limit int) ([]TenantSummary, error) {
	ts, err := s.cfg.Store.ListTenants(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: listing tenants: %w", err)
	}
	out := make([]TenantSummary, len(ts))
	for i, t := range ts {
		out[i] = TenantSummary{ID: t.ID, Policy: t.Policy, Created: t.Created, State: StateNone}
		rec, err := s.cfg.Store.KeyRecord(ctx, t.ID)
		switch {
		case err == nil:
			out[i].State = rec.State
		case !errors.Is(err, byok.ErrNotFound):
			return nil, fmt.Errorf("lifecycle: listing tenants: %w", err)
		}
	}
	return out, nil
}

// SetPolicy sets a tenant's staleness policy ([byok.Grace] or
// [byok.Strict]). Operator or tenant-admin action; audited.
func (s *Service) SetPolicy(ctx context.Context, actor audit.Actor, tenant string, policy byok.Policy) error {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	err = s.kr.SetPolicy(ctx, tenant, policy)
	if err == nil && s.cfg.Changed != nil {
		s.cfg.Changed(tenant) // the other replicas reload it with the new policy
	}
	before, _ := json.Marshal(map[string]string{"policy": t.Policy.String()})
	after, _ := json.Marshal(map[string]string{"policy": policy.String()})
	s.audit(ctx, actor, tenant, "tenant.policy", tenant, before, after, err)
	return err
}

// tenant returns a tenant, or an error wrapping byok.ErrUnknownTenant.
func (s *Service) tenant(ctx context.Context, tenant string) (byok.TenantRecord, error) {
	t, err := s.cfg.Store.Tenant(ctx, tenant)
	if errors.Is(err, byok.ErrNotFound) {
		return t, fmt.Errorf("lifecycle: %w %q", byok.ErrUnknownTenant, tenant)
	}
	if err != nil {
		return t, fmt.Errorf("lifecycle: reading tenant %q: %w", tenant, err)
	}
	return t, nil
}

// scopes lists every scope of a tenant.
func (s *Service) scopes(ctx context.Context, tenant string) ([]byok.ScopeRecord, error) {
	var all []byok.ScopeRecord
	after := ""
	for {
		page, err := s.cfg.Store.ListScopes(ctx, tenant, after, 500)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: listing the scopes of tenant %q: %w", tenant, err)
		}
		all = append(all, page...)
		if len(page) < 500 {
			return all, nil
		}
		after = page[len(page)-1].Scope
	}
}

// checkScopeID validates a scope id by the keyring's one rule,
// [byok.CheckID], and returns its reason alone.
func checkScopeID(sc string) error {
	var in *byok.InputError
	if errors.As(byok.CheckID("scope", sc), &in) {
		return errors.New(in.Reason)
	}
	return nil
}
