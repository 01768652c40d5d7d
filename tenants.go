package byok

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/openbyok/byok/internal/envelope"
)

// CreateTenant registers a tenant with a platform-managed tenant key (epoch
// 1): a new customer share and a new platform share, each wrapped under the
// platform root key. It makes two calls to the platform key provider and
// writes the tenant and its key in one transaction. An existing tenant is
// an error wrapping [ErrExists].
func (k *Keyring) CreateTenant(ctx context.Context, tenant string, policy Policy) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("byok: %w", err)
	}
	if err := checkID("tenant", tenant); err != nil {
		return err
	}
	if policy != Grace && policy != Strict {
		return &InputError{Arg: "policy", Reason: fmt.Sprintf("is %d; use byok.Grace or byok.Strict", policy)}
	}
	var c, p [envelope.KeySize]byte
	rand.Read(c[:])
	rand.Read(p[:])
	defer clear(c[:])
	defer clear(p[:])
	cw, err := k.cfg.PlatformKMS.Wrap(ctx, k.cfg.PlatformKeyID, c[:])
	if err != nil {
		return fmt.Errorf("byok: wrapping the customer share of tenant %q under the platform key: %w", tenant, err)
	}
	pw, err := k.cfg.PlatformKMS.Wrap(ctx, k.cfg.PlatformKeyID, p[:])
	if err != nil {
		return fmt.Errorf("byok: wrapping the platform share of tenant %q under the platform key: %w", tenant, err)
	}
	now := k.cfg.Now()
	err = k.cfg.Store.CreateTenant(ctx, TenantRecord{ID: tenant, Policy: policy, Created: now}, []TenantKeyRecord{{
		Tenant: tenant, Kind: PlatformManaged, Epoch: 1, CustomerShare: cw, PlatformShare: pw, Created: now,
	}})
	if err != nil {
		return fmt.Errorf("byok: creating tenant %q: %w", tenant, err)
	}
	return nil
}

// SetPolicy changes what a tenant's data does when its key provider fails
// transiently: [Grace] serves from cache up to MaxStaleness, [Strict] fails
// closed at once. It takes effect at once in this process; other processes
// pick it up when they next load the tenant's keys (see [Keyring.Forget]).
func (k *Keyring) SetPolicy(ctx context.Context, tenant string, policy Policy) error {
	if err := checkID("tenant", tenant); err != nil {
		return err
	}
	if policy != Grace && policy != Strict {
		return &InputError{Arg: "policy", Reason: fmt.Sprintf("is %d; use byok.Grace or byok.Strict", policy)}
	}
	if err := k.cfg.Store.SetTenantPolicy(ctx, tenant, policy); err != nil {
		return fmt.Errorf("byok: setting the policy of tenant %q: %w", tenant, err)
	}
	for _, t := range k.cached(tenant) {
		t.mu.Lock()
		t.policy = policy
		t.mu.Unlock()
	}
	return nil
}

// Forget drops everything this process caches about a tenant — its tenant
// keys, DEKs and health — so the next call reloads it from the store and
// its providers. Call it after changing a tenant's keys or scopes in the
// store, and on every replica when another replica did.
func (k *Keyring) Forget(tenant string) {
	dropped := k.cached(tenant)
	k.mu.Lock()
	for _, t := range dropped {
		delete(k.tks, t.id)
	}
	k.mu.Unlock()
	for _, t := range dropped {
		t.mu.Lock()
		k.drop(t)
		t.validUntil.Store(0)
		t.mu.Unlock()
	}
}

// cached returns the cache entries of a tenant's keys. Callers lock each
// entry only after this returns: the lock order is tenantKey.mu before
// Keyring.mu.
func (k *Keyring) cached(tenant string) []*tenantKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var ts []*tenantKey
	for id, t := range k.tks {
		if id.tenant == tenant {
			ts = append(ts, t)
		}
	}
	return ts
}

// AddCustomerKey creates the next epoch of a tenant's customer-managed
// tenant key: a new customer share wrapped under keyID (the tenant's own
// key, through Config.CustomerKMS) and a new platform share wrapped under
// the platform root key. No scope moves: scopes whose record says
// [CustomerManaged] use it from their next new DEK on. It makes one Wrap
// call to each provider and returns the stored record, whose shares name
// the exact key versions that wrapped them.
func (k *Keyring) AddCustomerKey(ctx context.Context, tenant, keyID string) (TenantKeyRecord, error) {
	if err := checkID("tenant", tenant); err != nil {
		return TenantKeyRecord{}, err
	}
	if keyID == "" {
		return TenantKeyRecord{}, &InputError{Arg: "key id", Reason: "is empty"}
	}
	if k.cfg.CustomerKMS == nil {
		return TenantKeyRecord{}, errors.New("byok: the keyring has no CustomerKMS configured; set Config.CustomerKMS")
	}
	if _, err := k.cfg.Store.Tenant(ctx, tenant); err != nil {
		if errors.Is(err, ErrNotFound) {
			return TenantKeyRecord{}, fmt.Errorf("%w %q: create it first", ErrUnknownTenant, tenant)
		}
		return TenantKeyRecord{}, fmt.Errorf("byok: reading tenant %q: %w", tenant, err)
	}
	epoch := uint32(1)
	prev, err := k.cfg.Store.TenantKey(ctx, tenant, CustomerManaged)
	switch {
	case err == nil:
		epoch = prev.Epoch + 1
	case !errors.Is(err, ErrNotFound):
		return TenantKeyRecord{}, fmt.Errorf("byok: reading the customer-managed key of tenant %q: %w", tenant, err)
	}
	provider, err := k.cfg.CustomerKMS(ctx, tenant)
	if err != nil {
		return TenantKeyRecord{}, fmt.Errorf("byok: resolving the key provider of tenant %q: %w", tenant, err)
	}
	var c, p [envelope.KeySize]byte
	rand.Read(c[:])
	rand.Read(p[:])
	defer clear(c[:])
	defer clear(p[:])
	cw, err := provider.Wrap(ctx, keyID, c[:])
	if err != nil {
		return TenantKeyRecord{}, fmt.Errorf("byok: wrapping the customer share of tenant %q under %s: %w", tenant, keyID, err)
	}
	pw, err := k.cfg.PlatformKMS.Wrap(ctx, k.cfg.PlatformKeyID, p[:])
	if err != nil {
		return TenantKeyRecord{}, fmt.Errorf("byok: wrapping the platform share of tenant %q under the platform key: %w", tenant, err)
	}
	rec := TenantKeyRecord{Tenant: tenant, Kind: CustomerManaged, Epoch: epoch, CustomerShare: cw, PlatformShare: pw, Created: k.cfg.Now()}
	if err := k.cfg.Store.PutTenantKey(ctx, rec); err != nil {
		return TenantKeyRecord{}, fmt.Errorf("byok: storing the customer-managed key of tenant %q: %w", tenant, err)
	}
	return rec, nil
}
