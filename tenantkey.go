package byok

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openbyok/byok/internal/envelope"
	"github.com/openbyok/byok/kms"
)

// tenantKey is the cached state of one tenant key: its material while it
// is usable, and its health.
//
// The warm path reads only valid: until it passes, the material may be
// used without asking anyone. Everything else is guarded by mu and changed
// only by check, which runs once at a time per key.
type tenantKey struct {
	id tkID
	ce cacheEntry
	// deks lists the cached DEKs wrapped under this key (guarded by
	// Keyring.mu).
	deks *dek

	// valid is when aead must next be checked; closed when the key must
	// not be used. refresh is refreshAhead before it, after a successful
	// check: a use past it starts the next check in the background
	// (refreshing is set while one runs).
	valid, refresh deadline
	refreshing     atomic.Bool

	mu   sync.Mutex
	aead cipher.AEAD // nil when dropped
	key  []byte      // the derived tenant key, wiped when dropped
	// platform is the platform share the key was derived from, unwrapped,
	// with the wrapped value it came from: a check that finds the same
	// wrapped value reuses it, so only the customer's share costs a call.
	// customer is the same for a customer share that the platform root
	// key wraps (a platform-managed key): such a key's check costs no
	// provider call at all, only the re-read of its record. Both are
	// wiped when the key is dropped.
	platform, customer         []byte
	platformFrom, customerFrom kms.Wrapped
	policy                     Policy
	lastSuccess                time.Time // last successful check
	nextAttempt                time.Time // no provider call before this, after a failure
	failures                   int       // consecutive transient failures
	revoked                    *RevokedError
	lastErr                    error // last transient failure
	// checks counts the checks started; applied is the number of the
	// newest check whose outcome was recorded. A check that ends after a
	// later-started one was recorded is stale and changes nothing.
	checks, applied uint64
}

// usable reports whether the key's material may be used now without a
// check. Past the key's refresh moment it also starts the next check in
// the background, so that a key in use is re-validated before a caller
// would wait for it (see refreshAhead).
func (k *Keyring) usable(t *tenantKey) bool {
	if t.valid.passed(k) {
		return false
	}
	if t.refresh.passed(k) {
		k.startRefresh(t)
	}
	return true
}

// refreshAhead is how long before a key's check is due a use of it starts
// that check in the background: a sixteenth of the check interval (3.75 s
// of the default minute), which a hot key pays as 1/15 more checks than
// one per interval, and far longer than a vault call takes.
func (k *Keyring) refreshAhead() time.Duration { return k.cfg.CheckInterval / 16 }

// startRefresh runs a check of t in the background unless one is running
// already: it shares the singleflight of a due check, so a caller that
// reaches the deadline meanwhile waits for this check, not a second one.
// A key that left the cache (evicted, dropped) is not refreshed.
func (k *Keyring) startRefresh(t *tenantKey) {
	if !t.refreshing.CompareAndSwap(false, true) {
		return
	}
	k.refreshes.Go(func() {
		defer t.refreshing.Store(false)
		k.mu.RLock()
		cached := k.tks[t.id] == t
		k.mu.RUnlock()
		if !cached {
			return
		}
		<-k.sf.DoChan(t.sfKey(), func() (any, error) { return k.check(context.Background(), t) })
	})
}

// sfKey is the singleflight key of a check of t's material.
func (t *tenantKey) sfKey() string {
	return "tk\x00" + t.id.tenant + "\x00" + t.id.kind.String() + "\x00" + strconv.FormatUint(uint64(t.id.epoch), 10)
}

// material returns the key's AEAD if it may be used at now, running a
// check first when one is due.
func (k *Keyring) material(ctx context.Context, t *tenantKey) (cipher.AEAD, error) {
	if k.usable(t) {
		t.mu.Lock()
		a := t.aead
		t.mu.Unlock()
		if a != nil {
			return a, nil
		}
	}
	return k.ensure(ctx, t)
}

// ensure runs (or joins) a check of t if one is due and returns its
// material or the error that keeps it from being used.
func (k *Keyring) ensure(ctx context.Context, t *tenantKey) (cipher.AEAD, error) {
	ch := k.sf.DoChan(t.sfKey(), func() (any, error) {
		return k.checkIfDue(ctx, t)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(cipher.AEAD), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("byok: waiting for the key of tenant %q: %w", t.id.tenant, ctx.Err())
	}
}

// checkIfDue decides, under t.mu, whether t may be served as it is, must
// fail as it is, or needs a provider call, and makes the call (ctx is the
// caller's, for tracing only: see check).
func (k *Keyring) checkIfDue(ctx context.Context, t *tenantKey) (cipher.AEAD, error) {
	now := k.cfg.Now()
	k.maybeSweep(now.UnixNano())
	t.mu.Lock()
	if t.aead != nil && !t.valid.passed(k) {
		a := t.aead
		t.mu.Unlock()
		return a, nil
	}
	if now.Before(t.nextAttempt) {
		a, err := t.serveWhileFailing(now, k.cfg.MaxStaleness)
		if err != nil && t.aead != nil {
			k.drop(t) // past max staleness between two attempts
		}
		t.mu.Unlock()
		return a, err
	}
	t.mu.Unlock()
	return k.check(ctx, t)
}

// validFor makes t's material valid for one check interval from a
// successful check at now (under t.mu), and due a refresh refreshAhead
// before that.
func (k *Keyring) validFor(t *tenantKey, now time.Time) {
	end := now.Add(k.cfg.CheckInterval)
	t.valid.set(k, end.UnixNano())
	t.refresh.set(k, end.Add(-k.refreshAhead()).UnixNano())
}

// serveWhileFailing is called, under t.mu, between failed attempts: it
// returns the cached material if the tenant's policy still allows it, or
// the error that fails the call closed.
func (t *tenantKey) serveWhileFailing(now time.Time, maxStale time.Duration) (cipher.AEAD, error) {
	if t.revoked != nil {
		return nil, t.revoked
	}
	if t.aead != nil && t.policy == Grace && now.Sub(t.lastSuccess) <= maxStale {
		return t.aead, nil
	}
	return nil, t.unavailable()
}

func (t *tenantKey) unavailable() error {
	return &UnavailableError{Tenant: t.id.tenant, Kind: t.id.kind, LastSuccess: t.lastSuccess, Err: t.lastErr}
}

// check re-reads the tenant key's record, unwraps both shares and derives
// the key, then applies the revocation rules to the outcome.
//
// Checks of one key may overlap (a due check and a health monitor's
// Check): the outcome of the one started last wins, so a success read
// before a revocation never undoes the revocation seen after it.
//
// A check runs on a context of its own, bounded by CallTimeout: caller is
// the context of the call that started it, of which it keeps only the
// operation id and, through Config.Trace, the span.
func (k *Keyring) check(caller context.Context, t *tenantKey) (cipher.AEAD, error) {
	t.mu.Lock()
	t.checks++
	n := t.checks
	t.mu.Unlock()
	ctx := context.Background()
	if id := kms.OperationID(caller); id != "" {
		ctx = kms.WithOperationID(ctx, id)
	}
	ctx, end := k.trace(caller, ctx, "keyring.derive")
	ctx, cancel := context.WithTimeout(ctx, k.cfg.CallTimeout)
	defer cancel()
	derived, err := k.derive(ctx, t)
	end(err)
	now := k.cfg.Now()

	t.mu.Lock()
	defer t.mu.Unlock()
	if n < t.applied {
		clear(derived)
		return k.current(t)
	}
	t.applied = n
	if err == nil {
		return k.succeeded(t, derived, now), nil
	}
	class := kms.ClassOf(err)
	if errors.Is(err, ErrUnknownTenant) || errors.Is(err, ErrNotFound) {
		class = kms.Authoritative
	}
	if class == kms.Transient {
		return k.failedTransiently(t, err, now)
	}
	return nil, k.revoke(t, err, now)
}

// current returns, under t.mu, what the key's recorded state allows: its
// material while it is valid, or the error that keeps it from use.
func (k *Keyring) current(t *tenantKey) (cipher.AEAD, error) {
	switch {
	case t.revoked != nil:
		return nil, t.revoked
	case t.aead != nil && !t.valid.passed(k):
		return t.aead, nil
	}
	return nil, t.unavailable()
}

// succeeded records a successful check (under t.mu) and returns the
// material to use.
func (k *Keyring) succeeded(t *tenantKey, derived []byte, now time.Time) cipher.AEAD {
	wasDown := t.revoked != nil || t.aead == nil && !t.lastSuccess.IsZero() || t.failures > 0
	wasRevoked := t.revoked != nil
	if t.aead == nil || subtle.ConstantTimeCompare(t.key, derived) != 1 {
		if t.aead != nil {
			// The shares changed underneath us: never mix DEKs of two keys.
			k.dropDEKs(t)
		}
		t.key = derived
		t.aead, _ = envelope.NewAEAD(derived) // 32 bytes: cannot fail
	} else {
		clear(derived)
	}
	t.revoked, t.lastErr, t.failures = nil, nil, 0
	t.lastSuccess, t.nextAttempt = now, time.Time{}
	k.validFor(t, now)
	if wasDown {
		k.emit(Event{Type: EventRestored, Tenant: t.id.tenant, Kind: t.id.kind, Epoch: t.id.epoch, At: now})
		// At the level of the failure it ends, so a log that shows one
		// shows the other.
		k.cfg.Logger.Warn("tenant key restored: serving again", "tenant", t.id.tenant, "kind", t.id.kind.String(), "was_revoked", wasRevoked)
	}
	return t.aead
}

// failedTransiently records a transient failure (under t.mu): the next
// attempt waits for a backoff, and the key is served from cache only if
// the tenant's policy allows.
func (k *Keyring) failedTransiently(t *tenantKey, err error, now time.Time) (cipher.AEAD, error) {
	t.failures++
	t.lastErr = err
	t.nextAttempt = now.Add(k.backoff(t.failures, err))
	a, serveErr := t.serveWhileFailing(now, k.cfg.MaxStaleness)
	reason := kms.ReasonOf(err)
	if serveErr != nil {
		if t.revoked == nil && t.aead != nil {
			k.drop(t)
		}
		t.valid.close(k)
		t.refresh.close(k)
		k.emit(Event{Type: EventUnavailable, Tenant: t.id.tenant, Kind: t.id.kind, Epoch: t.id.epoch, Reason: reason, At: now})
		k.cfg.Logger.Warn("tenant key unavailable: failing closed", "tenant", t.id.tenant, "kind", t.id.kind.String(), "reason", string(reason), "error", err)
		return nil, serveErr
	}
	until := t.nextAttempt
	if stale := t.lastSuccess.Add(k.cfg.MaxStaleness); stale.Before(until) {
		until = stale
	}
	t.valid.set(k, until.UnixNano())
	t.refresh.set(k, until.UnixNano())
	k.emit(Event{Type: EventDegraded, Tenant: t.id.tenant, Kind: t.id.kind, Epoch: t.id.epoch, Reason: reason, At: now})
	k.cfg.Logger.Warn("tenant key check failed: serving from cache", "tenant", t.id.tenant, "kind", t.id.kind.String(), "reason", string(reason), "error", err)
	return a, nil
}

// revoke records an authoritative failure (under t.mu): the key and every
// DEK under it leave memory and calls fail until a check succeeds.
func (k *Keyring) revoke(t *tenantKey, err error, now time.Time) error {
	k.drop(t)
	t.valid.close(k)
	t.refresh.close(k)
	t.failures = 0
	t.nextAttempt = now.Add(jitter(k.cfg.CheckInterval))
	reason := kms.ReasonOf(err)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnknownTenant) {
		reason = kms.ReasonNotFound
	}
	first := t.revoked == nil
	if first {
		t.revoked = &RevokedError{Tenant: t.id.tenant, Kind: t.id.kind, Reason: reason, DetectedAt: now, Err: err}
		k.emit(Event{Type: EventRevoked, Tenant: t.id.tenant, Kind: t.id.kind, Epoch: t.id.epoch, Reason: reason, At: now})
		k.cfg.Logger.Warn("tenant key revoked: failing closed", "tenant", t.id.tenant, "kind", t.id.kind.String(), "reason", string(reason), "error", err)
	}
	return t.revoked
}

// drop wipes t's material and every DEK under it (under t.mu).
func (k *Keyring) drop(t *tenantKey) {
	k.dropDEKs(t)
	clear(t.key)
	clear(t.platform)
	clear(t.customer)
	t.key, t.aead = nil, nil
	t.platform, t.platformFrom, t.customer, t.customerFrom = nil, kms.Wrapped{}, nil, kms.Wrapped{}
}

// dropDEKs removes every cached DEK wrapped under t and wipes them.
func (k *Keyring) dropDEKs(t *tenantKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.unlinkDEKs(t, true)
}

// backoff is the wait before the n-th consecutive retry after a transient
// failure: exponential from one second, at most the check interval, at
// least the provider's Retry-After, with jitter.
func (k *Keyring) backoff(n int, err error) time.Duration {
	d := time.Second << min(n-1, 16)
	d = min(d, k.cfg.CheckInterval)
	var ke *kms.Error
	if errors.As(err, &ke) && ke.RetryAfter > d {
		return ke.RetryAfter
	}
	return jitter(d)
}

// jitter returns a duration in [d/2, d], so that replicas spread their
// calls and a wait never exceeds its nominal length.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// derive reads a tenant key's record and unwraps its shares into the
// tenant key.
func (k *Keyring) derive(ctx context.Context, t *tenantKey) ([]byte, error) {
	id := t.id
	rec, err := k.cfg.Store.TenantKeyEpoch(ctx, id.tenant, id.kind, id.epoch)
	if err != nil {
		return nil, fmt.Errorf("reading %s key of tenant %q: %w", id.kind, id.tenant, storeError(err))
	}
	var c []byte
	if k.isPlatformKeyID(rec.CustomerShare.KeyID) {
		c, err = k.platformWrapped(ctx, t, &t.customer, &t.customerFrom, rec.CustomerShare)
	} else {
		if k.cfg.CustomerKMS == nil {
			return nil, &kms.Error{Op: "unwrap", KeyID: rec.CustomerShare.KeyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest,
				Err: errors.New("the keyring has no CustomerKMS configured")}
		}
		var customerKMS kms.Provider
		if customerKMS, err = k.cfg.CustomerKMS(ctx, id.tenant); err != nil {
			return nil, err
		}
		c, err = customerKMS.Unwrap(kms.WithBinding(ctx, kms.Binding{Kind: id.kind.String(), Epoch: id.epoch}), rec.CustomerShare)
	}
	if err != nil {
		return nil, err
	}
	defer clear(c)
	p, err := k.platformWrapped(ctx, t, &t.platform, &t.platformFrom, rec.PlatformShare)
	if err != nil {
		return nil, err
	}
	defer clear(p)
	return envelope.DeriveTenantKey(c, p, id.tenant, uint8(id.kind), id.epoch)
}

// platformWrapped returns a copy of a share of t that the platform root
// key wraps, unwrapped: the one cached in *share if w is the wrapped value
// *from it came from, else one unwrap, cached there. Both are t's fields,
// guarded by t.mu.
func (k *Keyring) platformWrapped(ctx context.Context, t *tenantKey, share *[]byte, from *kms.Wrapped, w kms.Wrapped) ([]byte, error) {
	t.mu.Lock()
	if *share != nil && sameWrapped(*from, w) {
		p := bytes.Clone(*share)
		t.mu.Unlock()
		return p, nil
	}
	t.mu.Unlock()
	p, err := k.cfg.PlatformKMS.Unwrap(ctx, w)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	clear(*share)
	*share, *from = bytes.Clone(p), w
	t.mu.Unlock()
	return p, nil
}

func sameWrapped(a, b kms.Wrapped) bool {
	return a.KeyID == b.KeyID && a.Algorithm == b.Algorithm && bytes.Equal(a.Ciphertext, b.Ciphertext)
}

// storeError keeps a store's not-found distinct and everything else
// transient: a database hiccup must never look like a revocation.
func storeError(err error) error {
	if errors.Is(err, ErrNotFound) {
		return err
	}
	return &kms.Error{Op: "store", Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: err}
}

func (k *Keyring) emit(e Event) {
	if k.cfg.OnEvent != nil {
		k.cfg.OnEvent(e)
	}
}

// tenantKey returns the cache entry of a tenant key that a data call
// needs, creating it (without material) on first use.
func (k *Keyring) tenantKey(ctx context.Context, id tkID) (*tenantKey, error) {
	return k.lookupTK(ctx, id, true)
}

// lookupTK is tenantKey; use says whether the lookup counts as a use of
// the key (Check's does not: a key only the health monitor checks goes
// idle).
func (k *Keyring) lookupTK(ctx context.Context, id tkID, use bool) (*tenantKey, error) {
	now := k.cfg.Now().UnixNano()
	k.maybeSweep(now)
	k.mu.RLock()
	t := k.tks[id]
	k.mu.RUnlock()
	if t != nil {
		k.tkStats.hits.Add(1)
		if use {
			t.ce.touch()
		}
		return t, nil
	}
	ten, err := k.cfg.Store.Tenant(ctx, id.tenant)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w %q: create it first", ErrUnknownTenant, id.tenant)
	}
	if err != nil {
		return nil, &UnavailableError{Tenant: id.tenant, Kind: id.kind, Err: err}
	}
	var evicted []*tenantKey
	k.mu.Lock()
	if t = k.tks[id]; t == nil {
		policy := ten.Policy
		if p, ok := k.policies[id.tenant]; ok {
			policy = p
		}
		t = &tenantKey{id: id, policy: policy}
		evicted = k.linkTK(t, now, use)
		k.tkStats.misses.Add(1)
	} else {
		k.tkStats.hits.Add(1)
	}
	k.mu.Unlock()
	k.wipeEvicted(evicted)
	return t, nil
}

// isPlatformKeyID reports whether keyID names a version of the platform
// root key: Config.PlatformKeyID itself or that id followed by "/" and a
// version, the form every provider of ours uses. A customer share under
// such an id (a platform-managed key, or a customer-managed one whose
// tenant turned BYOK off) is unwrapped by the platform key provider.
func (k *Keyring) isPlatformKeyID(keyID string) bool {
	p := k.cfg.PlatformKeyID
	return keyID == p || len(keyID) > len(p) && keyID[:len(p)] == p && keyID[len(p)] == '/'
}
