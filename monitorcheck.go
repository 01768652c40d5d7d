package byok

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/openbyok/byok/kms"
)

// Hooks for a health monitor and a warm-up outside the keyring (the
// lifecycle's): they apply the keyring's own revocation rules and share
// its singleflight, and only decide how many provider calls a check costs.

// CheckCustomerKey checks the current customer-managed tenant key of a
// tenant for a health monitor, with at most one provider call: an unwrap
// of its customer share by the provider that holds it (the tenant's). The
// platform share is not unwrapped: it does not depend on the customer, and
// a cached key's material was derived from it already (a tenant key's
// shares are only ever re-wrapped, never changed).
//
// It makes no call when this process checked the key successfully after
// notBefore — a data call's check counts as much as the monitor's — and
// it is healthy; called is then false.
//
// The outcome follows the keyring's rules: an authoritative failure
// revokes the key (its material and DEKs leave memory, calls fail closed,
// [EventRevoked]); a success restores a failed key ([EventRestored]) and,
// when its material is cached, extends its validity by the check interval
// as a data call's check would. When the material is not cached (a tenant
// with no traffic in this process), a success records the check and
// leaves the material to the next data call, which derives it, and a
// transient failure is only recorded (a data call still tries the
// providers itself). The call runs on ctx's values (for the audit of the
// vault call) with Config.CallTimeout, not on ctx's cancellation, so a
// cancelled caller never poisons the key's health.
//
// It fails with an error wrapping [ErrNotFound] when the tenant has no
// customer-managed key.
func (k *Keyring) CheckCustomerKey(ctx context.Context, tenant string, notBefore time.Time) (h KeyHealth, called bool, err error) {
	if err := checkID("tenant", tenant); err != nil {
		return KeyHealth{}, false, err
	}
	rec, err := k.cfg.Store.TenantKey(ctx, tenant, CustomerManaged)
	if err != nil {
		return KeyHealth{}, false, fmt.Errorf("byok: reading the %s key of tenant %q: %w", CustomerManaged, tenant, err)
	}
	t, err := k.lookupTK(ctx, tkID{tenant, CustomerManaged, rec.Epoch}, false)
	if err != nil {
		return KeyHealth{}, false, err
	}
	if h := t.health(k.cfg.Now(), k.cfg.MaxStaleness); h.State == StateHealthy && h.LastSuccess.After(notBefore) {
		return h, false, nil
	}
	key := "check\x00" + tenant + "\x00" + CustomerManaged.String() + "\x00" + strconv.FormatUint(uint64(rec.Epoch), 10)
	callCtx := context.WithoutCancel(ctx)
	ch := k.sf.DoChan(key, func() (any, error) {
		k.checkShare(callCtx, t, rec.CustomerShare)
		return nil, nil
	})
	select {
	case <-ch:
	case <-ctx.Done():
		return KeyHealth{}, true, fmt.Errorf("byok: checking tenant %q: %w", tenant, ctx.Err())
	}
	return t.health(k.cfg.Now(), k.cfg.MaxStaleness), true, nil
}

// checkShare unwraps t's customer share and applies the outcome (see
// CheckCustomerKey).
func (k *Keyring) checkShare(ctx context.Context, t *tenantKey, share kms.Wrapped) {
	t.mu.Lock()
	t.checks++
	n := t.checks
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, k.cfg.CallTimeout)
	defer cancel()
	err := k.unwrapCustomerShare(kms.WithBinding(ctx, kms.Binding{Kind: t.id.kind.String(), Epoch: t.id.epoch}), t.id.tenant, share)
	now := k.cfg.Now()

	t.mu.Lock()
	defer t.mu.Unlock()
	if n < t.applied {
		return // a check started later was recorded first
	}
	t.applied = n
	if err == nil {
		wasDown := t.revoked != nil || t.failures > 0
		t.revoked, t.lastErr, t.failures = nil, nil, 0
		t.lastSuccess, t.nextAttempt = now, time.Time{}
		if t.aead != nil {
			k.validFor(t, now)
		}
		if wasDown {
			k.emit(Event{Type: EventRestored, Tenant: t.id.tenant, Kind: t.id.kind, Epoch: t.id.epoch, At: now})
		}
		return
	}
	class := kms.ClassOf(err)
	if errors.Is(err, ErrUnknownTenant) || errors.Is(err, ErrNotFound) {
		class = kms.Authoritative
	}
	switch {
	case class != kms.Transient:
		k.revoke(t, err, now)
	case t.aead != nil:
		k.failedTransiently(t, err, now)
	default:
		t.failures++
		t.lastErr = err
		k.emit(Event{Type: EventDegraded, Tenant: t.id.tenant, Kind: t.id.kind, Epoch: t.id.epoch, Reason: kms.ReasonOf(err), At: now})
	}
}

// unwrapCustomerShare unwraps a customer share with the provider that
// holds it and wipes the result; ctx carries the share's binding.
func (k *Keyring) unwrapCustomerShare(ctx context.Context, tenant string, share kms.Wrapped) error {
	p := k.cfg.PlatformKMS
	if !k.isPlatformKeyID(share.KeyID) {
		if k.cfg.CustomerKMS == nil {
			return &kms.Error{Op: "unwrap", KeyID: share.KeyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest,
				Err: errors.New("the keyring has no CustomerKMS configured")}
		}
		var err error
		if p, err = k.cfg.CustomerKMS(ctx, tenant); err != nil {
			return err
		}
	}
	c, err := p.Unwrap(ctx, share)
	clear(c)
	return err
}

// Warm loads the current tenant key of a kind into the cache (a full
// check: both shares unwrapped, the key derived), as the first data call
// would, and returns the error that would fail such a call. A data call
// arriving meanwhile shares the load. Warming is not a use: a warmed key
// that no data call uses leaves the cache after Config.TenantKeyIdleTimeout.
// A key that is cached and valid already costs nothing.
func (k *Keyring) Warm(ctx context.Context, tenant string, kind KeyKind) error {
	if err := checkID("tenant", tenant); err != nil {
		return err
	}
	rec, err := k.cfg.Store.TenantKey(ctx, tenant, kind)
	if err != nil {
		return fmt.Errorf("byok: reading the %s key of tenant %q: %w", kind, tenant, err)
	}
	t, err := k.lookupTK(ctx, tkID{tenant, kind, rec.Epoch}, false)
	if err != nil {
		return err
	}
	_, err = k.material(ctx, t)
	return err
}
