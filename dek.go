package byok

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/openbyok/byok/internal/envelope"
)

// dek is a data encryption key in memory.
type dek struct {
	id     DEKID
	tenant string
	scope  string
	tk     *tenantKey // the tenant key that wraps it
	key    []byte     // for streams; wiped on revocation and Forget
	aead   cipher.AEAD

	ce   cacheEntry
	hits atomic.Uint64 // Decrypt lookups that found it cached
	// gone is set when it leaves the cache.
	gone atomic.Bool
	// prev and next link the cached DEKs of tk (guarded by Keyring.mu).
	prev, next *dek
}

// maxEvictedRetries is how often a load whose tenant key was evicted
// meanwhile (with no Forget since it began) starts over before it serves its call with
// what it loaded, uncached: only a cache far too small for its load
// evicts that fast, and starting over forever would starve the call.
const maxEvictedRetries = 2

// activeDEK is the DEK this process encrypts a scope's new data with.
type activeDEK struct {
	dek     *dek
	expires deadline      // DEKMaxAge after creation
	used    atomic.Uint64 // messages sealed, counted before sealing
}

// activeDEK returns the DEK to seal one message for a scope with, making a
// new one when the scope has none, or its DEK is spent or old, and running
// the tenant key's check when it is due.
func (k *Keyring) activeDEK(ctx context.Context, tenant, scope string) (*activeDEK, error) {
	k.mu.RLock()
	a := k.active[scopeID{tenant, scope}]
	k.mu.RUnlock()
	if a != nil {
		// A hit is counted by a.used (see Stats), so that the warm path
		// writes one counter only.
		if k.usable(a.dek.tk) && !a.expires.passed(k) && a.used.Add(1) <= k.cfg.DEKMaxMessages {
			a.dek.ce.touch()
			a.dek.tk.ce.touch()
			return a, nil
		}
	}
	k.dekStats.misses.Add(1)
	k.encryptMisses.Add(1)
	v, err := k.shared(ctx, "dek\x00"+tenant+"\x00"+scope, func(ctx context.Context) (any, error) {
		return k.refreshActive(ctx, tenant, scope, 0)
	})
	if err != nil {
		return nil, err
	}
	a = v.(*activeDEK)
	a.used.Add(1)
	a.dek.ce.touch()
	a.dek.tk.ce.touch()
	return a, nil
}

// refreshActive returns the scope's active DEK after a check of its tenant
// key, replacing the DEK when it is missing, spent, old, or under a tenant
// key that is no longer the scope's.
func (k *Keyring) refreshActive(ctx context.Context, tenant, scope string, evictedRetries int) (*activeDEK, error) {
	forgets := k.forgets.Load()
	kind, err := k.scopeKind(ctx, tenant, scope)
	if err != nil {
		return nil, err
	}
	rec, err := k.cfg.Store.TenantKey(ctx, tenant, kind)
	if errors.Is(err, ErrNotFound) {
		if _, terr := k.cfg.Store.Tenant(ctx, tenant); errors.Is(terr, ErrNotFound) {
			return nil, fmt.Errorf("%w %q: create it first", ErrUnknownTenant, tenant)
		}
	}
	if err != nil {
		return nil, &UnavailableError{Tenant: tenant, Kind: kind, Err: storeError(err)}
	}
	t, err := k.tenantKey(ctx, tkID{tenant, kind, rec.Epoch})
	if err != nil {
		return nil, err
	}
	tkAEAD, err := k.material(ctx, t)
	if err != nil {
		return nil, err
	}

	now := k.cfg.Now()
	k.mu.RLock()
	a := k.active[scopeID{tenant, scope}]
	k.mu.RUnlock()
	if a != nil && a.dek.tk == t && !a.expires.passed(k) && a.used.Load() < k.cfg.DEKMaxMessages {
		return a, nil
	}

	d := &dek{tenant: tenant, scope: scope, tk: t, key: make([]byte, envelope.KeySize)}
	rand.Read(d.id[:])
	rand.Read(d.key)
	d.aead, _ = envelope.NewAEAD(d.key) // 32 bytes: cannot fail
	wrapped := envelope.WrapDEK(tkAEAD, envelope.KeyID(d.id), tenant, scope, d.key)
	err = k.cfg.Store.PutDEK(ctx, DEKRecord{
		ID: d.id, Tenant: tenant, Scope: scope, Kind: kind, Epoch: rec.Epoch, Wrapped: wrapped, Created: now,
	})
	if err != nil {
		clear(d.key)
		return nil, fmt.Errorf("byok: storing a new DEK for tenant %q scope %q: %w", tenant, scope, err)
	}
	next := &activeDEK{dek: d}
	next.expires.set(k, now.Add(k.cfg.DEKMaxAge).UnixNano())
	k.mu.Lock()
	if k.tks[t.id] != t {
		k.mu.Unlock()
		evicted := k.forgets.Load() == forgets
		if evicted && evictedRetries >= maxEvictedRetries {
			// Evicted again and again: seal this call's message under the
			// new DEK (its tenant key was just checked) without caching it.
			d.gone.Store(true)
			next.expires.close(k) // no later call uses it
			return next, nil
		}
		// Forget ran meanwhile: the scope's kind or keys may have changed
		// since they were read. Start over rather than seal new data under
		// a tenant key the scope may no longer use. (Or the tenant key
		// was evicted: a DEK cached under it would escape every later
		// Forget.)
		next.expires.close(k)
		clear(d.key)
		if evicted {
			evictedRetries++
		}
		return k.refreshActive(ctx, tenant, scope, evictedRetries)
	}
	k.linkDEK(d, now.UnixNano())
	if old := k.active[scopeID{tenant, scope}]; old != nil {
		k.retiredUsed += old.used.Load()
	}
	k.active[scopeID{tenant, scope}] = next
	k.mu.Unlock()
	if a != nil {
		a.expires.close(k) // releases its timer
	}
	a = next
	return a, nil
}

// scopeKind returns the kind of tenant key that protects a scope, recording
// a scope seen for the first time as platform-managed.
func (k *Keyring) scopeKind(ctx context.Context, tenant, scope string) (KeyKind, error) {
	s, err := k.cfg.Store.Scope(ctx, tenant, scope)
	if err == nil {
		return s.Kind, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return 0, &UnavailableError{Tenant: tenant, Err: storeError(err)}
	}
	if _, err := k.cfg.Store.Tenant(ctx, tenant); err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, fmt.Errorf("%w %q: create it first", ErrUnknownTenant, tenant)
		}
		return 0, &UnavailableError{Tenant: tenant, Err: storeError(err)}
	}
	err = k.cfg.Store.PutScope(ctx, ScopeRecord{Tenant: tenant, Scope: scope, Kind: PlatformManaged})
	if err != nil && !errors.Is(err, ErrExists) {
		return 0, &UnavailableError{Tenant: tenant, Err: storeError(err)}
	}
	return PlatformManaged, nil
}

// dekByID returns the DEK a ciphertext names, if it belongs to tenant and
// scope and its tenant key is usable. A DEK of another tenant or scope, or
// none at all, is ErrDecrypt: the caller learns nothing about other
// tenants' keys, and no other tenant's key is ever loaded on its behalf.
func (k *Keyring) dekByID(ctx context.Context, tenant, scope string, id DEKID) (*dek, error) {
	k.mu.RLock()
	d := k.deks[id]
	k.mu.RUnlock()
	if d != nil {
		if d.tenant != tenant || d.scope != scope {
			return nil, ErrDecrypt
		}
		d.ce.touch()
		d.tk.ce.touch()
		if k.usable(d.tk) {
			d.hits.Add(1)
			return d, nil
		}
		if _, err := k.ensure(ctx, d.tk); err != nil {
			return nil, err
		}
		k.mu.RLock()
		still := k.deks[id] == d
		k.mu.RUnlock()
		if still {
			d.hits.Add(1)
			return d, nil
		}
	}
	k.dekStats.misses.Add(1)
	v, err := k.shared(ctx, "dekid\x00"+string(id[:]), func(ctx context.Context) (any, error) {
		ctx, end := k.trace(ctx, ctx, "keyring.load_dek")
		d, err := k.loadDEK(ctx, tenant, scope, id, 0)
		end(err)
		return d, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*dek), nil
}

// loadDEK reads a DEK from the store and unwraps it under its tenant key.
func (k *Keyring) loadDEK(ctx context.Context, tenant, scope string, id DEKID, evictedRetries int) (*dek, error) {
	forgets := k.forgets.Load()
	rec, err := k.cfg.Store.DEK(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrDecrypt
	}
	if err != nil {
		return nil, &UnavailableError{Tenant: tenant, Err: storeError(err)}
	}
	if rec.Tenant != tenant || rec.Scope != scope {
		return nil, ErrDecrypt
	}
	t, err := k.tenantKey(ctx, tkID{rec.Tenant, rec.Kind, rec.Epoch})
	if err != nil {
		return nil, err
	}
	tkAEAD, err := k.material(ctx, t)
	if err != nil {
		return nil, err
	}
	key, err := envelope.UnwrapDEK(tkAEAD, envelope.KeyID(id), tenant, scope, rec.Wrapped)
	if err != nil {
		return nil, ErrDecrypt
	}
	d := &dek{id: id, tenant: tenant, scope: scope, tk: t, key: key}
	d.aead, _ = envelope.NewAEAD(key)
	k.mu.Lock()
	if k.tks[t.id] != t {
		k.mu.Unlock()
		if k.forgets.Load() == forgets {
			if evictedRetries >= maxEvictedRetries {
				d.gone.Store(true) // serve this call, uncached
				return d, nil
			}
			evictedRetries++
		}
		// Forget ran meanwhile (or an eviction): a DEK cached under the
		// dropped entry would escape every later Forget and policy
		// change. Start over.
		clear(key)
		return k.loadDEK(ctx, tenant, scope, id, evictedRetries)
	}
	if cur := k.deks[id]; cur != nil {
		d = cur
	} else {
		k.linkDEK(d, k.cfg.Now().UnixNano())
	}
	k.mu.Unlock()
	return d, nil
}

// shared runs f once for all the callers of key at a time (singleflight),
// on a ctx that keeps the first caller's values (its trace, its operation
// id) but not its cancellation, bounded by Config.CallTimeout: a caller
// that gives up returns its own ctx's error and leaves the work to the
// others.
func (k *Keyring) shared(ctx context.Context, key string, f func(context.Context) (any, error)) (any, error) {
	ch := k.sf.DoChan(key, func() (any, error) {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.cfg.CallTimeout)
		defer cancel()
		return f(c)
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, fmt.Errorf("byok: %w", ctx.Err())
	}
}
