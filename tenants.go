package byok

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/openbyok/byok/internal/envelope"
	"github.com/openbyok/byok/kms"
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
	k.mu.Lock()
	k.policies[tenant] = policy
	k.mu.Unlock()
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
	k.forgets.Add(1)
	dropped := k.cached(tenant)
	k.mu.Lock()
	for _, t := range dropped {
		k.unlinkTK(t, true)
	}
	delete(k.policies, tenant) // the store is the truth again
	k.mu.Unlock()
	for _, t := range dropped {
		t.mu.Lock()
		k.drop(t)
		t.valid.close(k)
		t.refresh.close(k)
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

// NewTenantKey creates the next epoch of a tenant's key of the given kind
// (epoch 1 if it has none): a new customer share wrapped under keyID and a
// new platform share wrapped under the platform root key. For
// [CustomerManaged], keyID names the tenant's own key (reached through
// Config.CustomerKMS); for [PlatformManaged] it must be empty and the
// customer share goes under the platform root key too.
//
// It makes one Wrap call to each provider and stores the record, whose
// shares name the exact key versions that wrapped them. No data moves:
// scopes of that kind use the new epoch from their next new DEK on, and
// DEKs under older epochs stay readable until re-wrapped ([Keyring.RewrapDEKs]).
func (k *Keyring) NewTenantKey(ctx context.Context, tenant string, kind KeyKind, keyID string) (TenantKeyRecord, error) {
	if err := checkID("tenant", tenant); err != nil {
		return TenantKeyRecord{}, err
	}
	customer := k.cfg.PlatformKMS
	switch kind {
	case PlatformManaged:
		if keyID != "" {
			return TenantKeyRecord{}, &InputError{Arg: "key id", Reason: "must be empty for a platform-managed key"}
		}
		keyID = k.cfg.PlatformKeyID
	case CustomerManaged:
		if keyID == "" {
			return TenantKeyRecord{}, &InputError{Arg: "key id", Reason: "is empty; give the id of the tenant's own key"}
		}
		if k.cfg.CustomerKMS == nil {
			return TenantKeyRecord{}, errors.New("byok: the keyring has no CustomerKMS configured; set Config.CustomerKMS")
		}
	default:
		return TenantKeyRecord{}, &InputError{Arg: "kind", Reason: fmt.Sprintf("is %d; use byok.PlatformManaged or byok.CustomerManaged", kind)}
	}
	if _, err := k.cfg.Store.Tenant(ctx, tenant); err != nil {
		if errors.Is(err, ErrNotFound) {
			return TenantKeyRecord{}, fmt.Errorf("%w %q: create it first", ErrUnknownTenant, tenant)
		}
		return TenantKeyRecord{}, fmt.Errorf("byok: reading tenant %q: %w", tenant, err)
	}
	epoch := uint32(1)
	prev, err := k.cfg.Store.TenantKey(ctx, tenant, kind)
	switch {
	case err == nil:
		epoch = prev.Epoch + 1
	case !errors.Is(err, ErrNotFound):
		return TenantKeyRecord{}, fmt.Errorf("byok: reading the %s key of tenant %q: %w", kind, tenant, err)
	}
	if kind == CustomerManaged {
		if customer, err = k.cfg.CustomerKMS(ctx, tenant); err != nil {
			return TenantKeyRecord{}, fmt.Errorf("byok: resolving the key provider of tenant %q: %w", tenant, err)
		}
	}
	var c, p [envelope.KeySize]byte
	rand.Read(c[:])
	rand.Read(p[:])
	defer clear(c[:])
	defer clear(p[:])
	cw, err := customer.Wrap(kms.WithBinding(ctx, kms.Binding{Kind: kind.String(), Epoch: epoch}), keyID, c[:])
	if err != nil {
		return TenantKeyRecord{}, fmt.Errorf("byok: wrapping the customer share of tenant %q under %s: %w", tenant, keyID, err)
	}
	pw, err := k.cfg.PlatformKMS.Wrap(ctx, k.cfg.PlatformKeyID, p[:])
	if err != nil {
		return TenantKeyRecord{}, fmt.Errorf("byok: wrapping the platform share of tenant %q under the platform key: %w", tenant, err)
	}
	rec := TenantKeyRecord{Tenant: tenant, Kind: kind, Epoch: epoch, CustomerShare: cw, PlatformShare: pw, Created: k.cfg.Now()}
	if err := k.cfg.Store.PutTenantKey(ctx, rec); err != nil {
		return TenantKeyRecord{}, fmt.Errorf("byok: storing the %s key of tenant %q: %w", kind, tenant, err)
	}
	return rec, nil
}
