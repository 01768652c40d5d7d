package byok

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/openbyok/byok/kms"
)

// KeyState is the health of a tenant key as this process sees it.
type KeyState string

const (
	StateUnloaded    KeyState = "unloaded"    // not used by this process yet
	StateHealthy     KeyState = "healthy"     // last check succeeded
	StateDegraded    KeyState = "degraded"    // checks fail transiently; served from cache
	StateUnavailable KeyState = "unavailable" // failing closed: transient failures past the tenant's policy
	StateRevoked     KeyState = "revoked"     // failing closed: the provider's authoritative answer
)

// KeyHealth reports one tenant key's health.
type KeyHealth struct {
	Kind        KeyKind
	Epoch       uint32
	State       KeyState
	Policy      Policy
	LastSuccess time.Time  // zero if never
	Reason      kms.Reason // of the revocation or of the last failure
	DetectedAt  time.Time  // when the revocation was detected
	Err         error      // the last provider error; nil when healthy
}

// Check checks the current tenant keys of a tenant (platform- and
// customer-managed, whichever exist) now, whether or not a check is due,
// applies the revocation rules to the outcome, and returns their health.
// A health monitor calls it for every tenant every check interval, so that
// a revocation is enforced even on a tenant with no traffic.
func (k *Keyring) Check(ctx context.Context, tenant string) ([]KeyHealth, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	var hs []KeyHealth
	for _, kind := range []KeyKind{PlatformManaged, CustomerManaged} {
		rec, err := k.cfg.Store.TenantKey(ctx, tenant, kind)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("byok: reading the %s key of tenant %q: %w", kind, tenant, err)
		}
		t, err := k.lookupTK(ctx, tkID{tenant, kind, rec.Epoch}, false)
		if err != nil {
			return nil, err
		}
		key := "check\x00" + tenant + "\x00" + kind.String() + "\x00" + strconv.FormatUint(uint64(rec.Epoch), 10)
		ch := k.sf.DoChan(key, func() (any, error) { return k.check(ctx, t) })
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("byok: checking tenant %q: %w", tenant, ctx.Err())
		}
		hs = append(hs, t.health(k.cfg.Now(), k.cfg.MaxStaleness))
	}
	if len(hs) == 0 {
		if _, err := k.cfg.Store.Tenant(ctx, tenant); errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w %q", ErrUnknownTenant, tenant)
		}
	}
	return hs, nil
}

// Health returns the health of every tenant key of a tenant this process
// has cached, without calling anyone.
func (k *Keyring) Health(tenant string) []KeyHealth {
	now := k.cfg.Now()
	var hs []KeyHealth
	for _, t := range k.cached(tenant) {
		hs = append(hs, t.health(now, k.cfg.MaxStaleness))
	}
	return hs
}

func (t *tenantKey) health(now time.Time, maxStale time.Duration) KeyHealth {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := KeyHealth{Kind: t.id.kind, Epoch: t.id.epoch, Policy: t.policy, LastSuccess: t.lastSuccess, Err: t.lastErr}
	switch {
	case t.revoked != nil:
		h.State, h.Reason, h.DetectedAt, h.Err = StateRevoked, t.revoked.Reason, t.revoked.DetectedAt, t.revoked.Err
	case t.lastSuccess.IsZero() && t.lastErr == nil:
		h.State = StateUnloaded
	case t.failures == 0:
		h.State = StateHealthy
	case t.aead != nil && now.Sub(t.lastSuccess) <= maxStale:
		h.State, h.Reason = StateDegraded, kms.ReasonOf(t.lastErr)
	default:
		h.State, h.Reason = StateUnavailable, kms.ReasonOf(t.lastErr)
	}
	return h
}
