package token

import (
	"context"
	"sync"
	"time"
)

// DefaultCacheTTL is how long a [CachedStore] serves a token record it
// read before reading it again: the longest a token revoked on another
// replica keeps working on this one.
const DefaultCacheTTL = 5 * time.Second

// DefaultCacheSize is the most token records a [CachedStore] holds.
const DefaultCacheSize = 10_000

// CachedStore is a [Store] that keeps the records it reads for a short
// time, so that a request's token check is a map lookup rather than a
// database read. Its secret check is unchanged: callers still verify each
// presented secret against the record's digest, and check expiry against
// their clock on each use.
//
// Revocation: RevokeToken through the CachedStore drops the record at
// once, so that the token fails from its next request on this process; a
// read that raced with the revocation is not kept. A token revoked through
// another process (another replica) keeps working here for at most the
// TTL. Lookups of unknown ids and failed reads are not cached: a token
// created on another replica works at once.
type CachedStore struct {
	Store
	ttl time.Duration
	max int
	now func() time.Time // time.Now unless SetClock

	mu  sync.RWMutex
	m   map[string]cacheEntry
	gen uint64 // bumped by every invalidation
}

type cacheEntry struct {
	rec     Record
	expires time.Time
}

// NewCachedStore returns st with its Token reads cached for ttl (0 means
// [DefaultCacheTTL]), at most max records (0 means [DefaultCacheSize]).
func NewCachedStore(st Store, ttl time.Duration, max int) *CachedStore {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &CachedStore{Store: st, ttl: ttl, max: max, now: time.Now, m: make(map[string]cacheEntry)}
}

// SetClock makes the cache read its time from now (the server's clock, a
// fake one in tests) instead of time.Now. Call it before first use.
func (c *CachedStore) SetClock(now func() time.Time) { c.now = now }

// Token returns the record of id from the cache while it is fresh, else
// from the store. The record's Tenants are shared: do not modify them.
func (c *CachedStore) Token(ctx context.Context, id string) (Record, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[id]
	gen := c.gen
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.rec, nil
	}
	r, err := c.Store.Token(ctx, id)
	if err != nil {
		return r, err
	}
	c.mu.Lock()
	if c.gen == gen { // no revocation since the read began
		if _, ok := c.m[id]; !ok && len(c.m) >= c.max {
			c.evict(now)
		}
		c.m[id] = cacheEntry{rec: r, expires: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return r, nil
}

// evict makes room for one entry: it drops the stale entries, or if none
// is stale, an arbitrary one. c.mu is held.
func (c *CachedStore) evict(now time.Time) {
	for id, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, id)
		}
	}
	for id := range c.m {
		if len(c.m) < c.max {
			return
		}
		delete(c.m, id)
	}
}

// RevokeToken revokes the token in the store and drops its cached
// record, before and after the write.
func (c *CachedStore) RevokeToken(ctx context.Context, id string, at time.Time) error {
	c.Invalidate(id)
	err := c.Store.RevokeToken(ctx, id, at)
	c.Invalidate(id)
	return err
}

// Invalidate drops the cached record of id, and keeps any read of it
// under way from being cached.
func (c *CachedStore) Invalidate(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.gen++
	c.mu.Unlock()
}

// Len returns the number of cached records.
func (c *CachedStore) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
