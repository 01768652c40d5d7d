package byok

import (
	"context"
	"errors"
	"fmt"

	"github.com/openbyok/byok/internal/envelope"
)

// RewrapDEKs re-wraps DEKs of one tenant under the current epoch of its
// tenant key of kind to, locally: no provider call unless a tenant key's
// check is due. It returns the new records (same ids, scopes and creation
// times; the new kind, epoch and wrapped bytes) for the caller to store in
// one transaction, and changes nothing itself; after storing them, call
// [Keyring.Forget] so cached DEKs pick up their new tenant key.
//
// It moves scopes between platform- and customer-managed keys and carries
// a re-key (a new epoch) to every DEK. It fails, changing nothing, if any
// record is of another tenant or cannot be unwrapped — in particular when
// the tenant key it is under has been revoked.
func (k *Keyring) RewrapDEKs(ctx context.Context, tenant string, recs []DEKRecord, to KeyKind) ([]DEKRecord, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	cur, err := k.cfg.Store.TenantKey(ctx, tenant, to)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("byok: tenant %q has no %s key to re-wrap under: %w", tenant, to, err)
		}
		return nil, &UnavailableError{Tenant: tenant, Kind: to, Err: storeError(err)}
	}
	dst, err := k.tenantKey(ctx, tkID{tenant, to, cur.Epoch})
	if err != nil {
		return nil, err
	}
	dstAEAD, err := k.material(ctx, dst)
	if err != nil {
		return nil, err
	}
	out := make([]DEKRecord, len(recs))
	var rw envelope.Rewrapper
	for i, rec := range recs {
		if rec.Tenant != tenant {
			return nil, &InputError{Arg: "DEK record", Reason: fmt.Sprintf("%x belongs to tenant %q, not %q", rec.ID, rec.Tenant, tenant)}
		}
		src, err := k.tenantKey(ctx, tkID{tenant, rec.Kind, rec.Epoch})
		if err != nil {
			return nil, err
		}
		srcAEAD, err := k.material(ctx, src)
		if err != nil {
			return nil, err
		}
		wrapped, err := rw.Rewrap(srcAEAD, dstAEAD, envelope.KeyID(rec.ID), tenant, rec.Scope, rec.Wrapped)
		if err != nil {
			return nil, fmt.Errorf("byok: DEK %x of tenant %q scope %q does not unwrap under its %s key epoch %d: %w",
				rec.ID, tenant, rec.Scope, rec.Kind, rec.Epoch, ErrDecrypt)
		}
		out[i] = rec
		out[i].Kind, out[i].Epoch, out[i].Wrapped = to, cur.Epoch, wrapped
	}
	return out, nil
}
