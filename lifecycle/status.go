package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/openbyok/byok"
)

// Status returns the tenant's customer key as the console shows it; state
// none if it never configured one. An unknown tenant fails with
// [byok.ErrUnknownTenant].
func (s *Service) Status(ctx context.Context, tenant string) (CustomerKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	ck := CustomerKey{Tenant: tenant, State: rec.State, Settings: settingsOf("", rec.Settings), SecretSet: rec.SealedSecret.KeyID != "",
		EnforceAt: rec.EnforceAt, ActivatedAt: rec.ActivatedAt, Coverage: rec.Coverage, Updated: rec.Updated,
		Health: s.kr.Health(tenant)}
	ck.Settings.Secret = Secret{}
	if rec.LastTest != nil && rec.LastTest.SettingsHash == rec.SettingsHash {
		t := *rec.LastTest
		ck.LastTest = &t
	}
	scopes, err := s.scopes(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	for _, sc := range scopes {
		ck.Scopes = append(ck.Scopes, ScopeStatus{Scope: sc.Scope, Kind: sc.Kind,
			Covered: s.covered(rec, sc.Scope), PlatformOnly: s.platformOnly[sc.Scope]})
	}
	if tk, err := s.cfg.Store.TenantKey(ctx, tenant, byok.CustomerManaged); err == nil {
		ck.CurrentKeyID, ck.Epoch = tk.CustomerShare.KeyID, tk.Epoch
	} else if !errors.Is(err, byok.ErrNotFound) {
		return CustomerKey{}, fmt.Errorf("lifecycle: reading the key of tenant %q: %w", tenant, err)
	}
	jobs, err := s.cfg.Store.ListJobs(ctx, tenant, false, 1)
	if err != nil {
		return CustomerKey{}, fmt.Errorf("lifecycle: reading the jobs of tenant %q: %w", tenant, err)
	}
	if len(jobs) > 0 {
		ck.Job = &jobs[0].Job
	}
	return ck, nil
}

// covered reports whether rec's coverage selects scope.
func (s *Service) covered(rec Record, scope string) bool {
	return !s.platformOnly[scope] && rec.Coverage.Covers(scope)
}

// Inventory counts, for every key version the tenant's shares are or
// were wrapped under, how many shares depend on it; a version at zero is
// safe to retire.
func (s *Service) Inventory(ctx context.Context, tenant string) ([]VersionCount, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	live, err := s.liveEpochs(ctx, tenant)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int)
	versions := slices.Clone(rec.Versions)
	current := ""
	for _, k := range live {
		counts[k.CustomerShare.KeyID]++
		versions = addVersion(versions, k.CustomerShare.KeyID)
		current = k.CustomerShare.KeyID // live is in epoch order: the last is current
	}
	out := make([]VersionCount, len(versions))
	for i, v := range versions {
		out[i] = VersionCount{KeyID: v, Shares: counts[v], Current: v == current, SafeToRetire: counts[v] == 0}
	}
	return out, nil
}

// Job returns a job of the tenant. A job of another tenant is
// [byok.ErrNotFound], as one that does not exist.
func (s *Service) Job(ctx context.Context, tenant, id string) (Job, error) {
	j, err := s.cfg.Store.JobRecord(ctx, id)
	if err == nil && j.Tenant != tenant {
		err = fmt.Errorf("lifecycle: tenant %q has no job %q: %w", tenant, id, byok.ErrNotFound)
	}
	if err != nil {
		return Job{}, err
	}
	return j.Job, nil
}

// Timeline returns the tenant's revocation and restoration history,
// newest first, at most limit entries.
func (s *Service) Timeline(ctx context.Context, tenant string, limit int) ([]HealthEvent, error) {
	if _, err := s.tenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.cfg.Store.HealthEvents(ctx, tenant, limit)
}
