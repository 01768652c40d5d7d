package byok

import (
	"sync/atomic"
	"time"
)

// The keyring's caches of tenant keys and DEKs are bounded in entries
// (Config.MaxTenantKeys, Config.MaxDEKs) and drop what is not used
// (Config.TenantKeyIdleTimeout). Eviction is CLOCK (second chance): every
// entry has a reference flag that a use sets; when a cache is full, a hand
// goes round its entries, clears the flags it finds set and evicts the
// first entry whose flag was clear. The warm path thus pays one atomic
// load of a flag it usually finds set, and never takes a lock for the
// bookkeeping; insertions and evictions happen under Keyring.mu, which
// insertions take anyway.
//
// Eviction never serves anything: an evicted tenant key or DEK is simply
// no longer cached, and its next use loads it again from the store and,
// for a tenant key, checks it again with its providers. Evicting a tenant
// key evicts the DEKs wrapped under it.

// cacheEntry is the bookkeeping of one cached tenant key or DEK.
type cacheEntry struct {
	// ref is set by each use and cleared by the clock hand and the idle
	// sweep.
	ref atomic.Bool
	// seen is when a sweep or the hand last found ref set (or the entry
	// was created), in Unix nanoseconds: the entry has not been used
	// since some moment before seen + the sweep period.
	seen atomic.Int64
	// pos is 1 + the entry's index in its clock; 0 when not cached.
	// Guarded by Keyring.mu.
	pos int
}

// touch records a use. It writes only when the flag is clear, so that a
// hot entry's cache line stays shared between cores.
func (e *cacheEntry) touch() {
	if !e.ref.Load() {
		e.ref.Store(true)
	}
}

func (e *cacheEntry) cached() bool { return e.pos > 0 }

type clockItem interface {
	comparable
	entry() *cacheEntry
}

func (t *tenantKey) entry() *cacheEntry { return &t.ce }
func (d *dek) entry() *cacheEntry       { return &d.ce }

// clock is the ring of one cache's entries, in no particular order, and
// the hand that picks victims. Guarded by Keyring.mu.
type clock[T clockItem] struct {
	items []T
	hand  int
}

func (c *clock[T]) len() int { return len(c.items) }

// add puts x in the ring; ref says whether it counts as used (an entry
// created for a Check does not: it is the first to go).
func (c *clock[T]) add(x T, now int64, ref bool) {
	e := x.entry()
	e.ref.Store(ref)
	e.seen.Store(now)
	c.items = append(c.items, x)
	e.pos = len(c.items)
}

// remove takes x out of the ring: the last entry moves into its slot.
func (c *clock[T]) remove(x T) {
	e := x.entry()
	if !e.cached() {
		return
	}
	i, last := e.pos-1, len(c.items)-1
	c.items[i] = c.items[last]
	c.items[i].entry().pos = i + 1
	var zero T
	c.items[last] = zero
	c.items = c.items[:last]
	e.pos = 0
	if len(c.items) == 0 {
		c.items = nil // let a drained ring's array go
	}
}

// victim moves the hand to the first entry not used since the hand last
// passed it, clearing the flags on its way, and returns it. It never
// returns keep; ok is false when there is nothing else to evict.
func (c *clock[T]) victim(keep T, now int64) (v T, ok bool) {
	for range 2*len(c.items) + 1 {
		if len(c.items) == 0 || len(c.items) == 1 && c.items[0] == keep {
			break
		}
		if c.hand >= len(c.items) {
			c.hand = 0
		}
		x := c.items[c.hand]
		c.hand++
		if x == keep {
			continue
		}
		if e := x.entry(); e.ref.Load() {
			e.ref.Store(false)
			e.seen.Store(now)
			continue
		}
		return x, true
	}
	return v, false
}

// counter is a statistic counted outside the warm path.
type counter = atomic.Uint64

// cacheCounters are the counters of one cache.
type cacheCounters struct {
	hits, misses, evictions, idle counter
}

// CacheStats describes one of the keyring's caches.
type CacheStats struct {
	Entries int // entries cached now
	Limit   int // the most entries it holds (Config.MaxTenantKeys or MaxDEKs)
	// Hits and Misses count lookups. A DEK lookup is the DEK of each
	// Encrypt (the scope's active DEK) and Decrypt; a miss loads it from
	// the store or makes a new one. Encrypt hits are counted from the
	// active DEKs' message counts, so the warm path writes one counter. A tenant key lookup happens only on a
	// DEK miss and on Check; a miss creates the entry, which the next use
	// fills by unwrapping its shares.
	Hits, Misses uint64
	// Evictions counts entries dropped to stay within Limit,
	// IdleEvictions those dropped after Config.TenantKeyIdleTimeout
	// without use. A DEK dropped with its tenant key counts in the
	// tenant key's cause.
	Evictions, IdleEvictions uint64
}

// Stats describes the keyring's caches.
type Stats struct {
	TenantKeys CacheStats
	DEKs       CacheStats
}

// Stats returns the keyring's cache statistics. It takes a read lock and
// visits every cached DEK (to add up their hit counts): call it at the
// pace of a metrics scrape, not per operation.
func (k *Keyring) Stats() Stats {
	k.mu.RLock()
	tks, deks := k.tkClock.len(), k.dekClock.len()
	dekHits := k.retiredDEKHits
	for _, d := range k.dekClock.items {
		dekHits += d.hits.Load()
	}
	// Encrypts count their messages on the active DEK; those that missed
	// counted one too.
	sealed := k.retiredUsed
	for _, a := range k.active {
		sealed += a.used.Load()
	}
	k.mu.RUnlock()
	if m := k.encryptMisses.Load(); sealed > m {
		dekHits += sealed - m
	}
	return Stats{
		TenantKeys: CacheStats{Entries: tks, Limit: k.cfg.MaxTenantKeys,
			Hits: k.tkStats.hits.Load(), Misses: k.tkStats.misses.Load(),
			Evictions: k.tkStats.evictions.Load(), IdleEvictions: k.tkStats.idle.Load()},
		DEKs: CacheStats{Entries: deks, Limit: k.cfg.MaxDEKs,
			Hits: dekHits, Misses: k.dekStats.misses.Load(),
			Evictions: k.dekStats.evictions.Load(), IdleEvictions: k.dekStats.idle.Load()},
	}
}

// linkTK caches t (under k.mu, write-locked; use as in lookupTK) and
// returns the tenant keys evicted to make room, for the caller to wipe
// with wipeEvicted after unlocking.
func (k *Keyring) linkTK(t *tenantKey, now int64, use bool) []*tenantKey {
	k.tks[t.id] = t
	k.tkClock.add(t, now, use)
	var evicted []*tenantKey
	for k.tkClock.len() > k.cfg.MaxTenantKeys {
		v, ok := k.tkClock.victim(t, now)
		if !ok {
			break
		}
		k.unlinkTK(v, false)
		k.tkStats.evictions.Add(1)
		evicted = append(evicted, v)
	}
	return evicted
}

// unlinkTK takes t and every DEK under it out of the caches (under k.mu,
// write-locked), for Forget or an eviction. Its material stays until
// wipeEvicted or drop.
func (k *Keyring) unlinkTK(t *tenantKey, forgotten bool) {
	if k.tks[t.id] == t {
		delete(k.tks, t.id)
	}
	k.tkClock.remove(t)
	// Forget wipes the DEKs' keys as it always did; an eviction leaves
	// them to the garbage collector, as a caller may be using them.
	k.unlinkDEKs(t, forgotten)
}

// linkDEK caches d under its tenant key, which must be cached (under k.mu,
// write-locked), evicting DEKs to stay within the limit.
func (k *Keyring) linkDEK(d *dek, now int64) {
	k.deks[d.id] = d
	k.dekClock.add(d, now, true)
	t := d.tk
	d.next = t.deks
	if t.deks != nil {
		t.deks.prev = d
	}
	t.deks = d
	for k.dekClock.len() > k.cfg.MaxDEKs {
		v, ok := k.dekClock.victim(d, now)
		if !ok {
			break
		}
		k.unlinkDEK(v, false)
		k.dekStats.evictions.Add(1)
	}
}

// unlinkDEK takes d out of the caches (under k.mu, write-locked); wipe
// also wipes its key, which only a revocation or Forget does: an evicted
// DEK may be in use by a caller that looked it up before.
func (k *Keyring) unlinkDEK(d *dek, wipe bool) {
	if !d.ce.cached() {
		return
	}
	if k.deks[d.id] == d {
		delete(k.deks, d.id)
	}
	k.dekClock.remove(d)
	k.retiredDEKHits += d.hits.Load()
	if d.prev != nil {
		d.prev.next = d.next
	} else if d.tk.deks == d {
		d.tk.deks = d.next
	}
	if d.next != nil {
		d.next.prev = d.prev
	}
	d.prev, d.next = nil, nil
	s := scopeID{d.tenant, d.scope}
	if a := k.active[s]; a != nil && a.dek == d {
		a.expires.close(k)
		k.retiredUsed += a.used.Load()
		delete(k.active, s)
	}
	d.gone.Store(true)
	if wipe {
		clear(d.key)
	}
}

// unlinkDEKs takes every cached DEK under t out of the caches (under k.mu,
// write-locked).
func (k *Keyring) unlinkDEKs(t *tenantKey, wipe bool) {
	for t.deks != nil {
		k.unlinkDEK(t.deks, wipe)
	}
}

// wipeEvicted drops the material of tenant keys evicted from the cache.
// Called without k.mu: the lock order is tenantKey.mu before Keyring.mu.
func (k *Keyring) wipeEvicted(ts []*tenantKey) {
	for _, t := range ts {
		t.mu.Lock()
		clear(t.key)
		t.key, t.aead = nil, nil
		t.valid.close(k)
		t.refresh.close(k)
		t.mu.Unlock()
	}
}

// maybeSweep drops idle entries when a sweep is due. It runs on the slow
// paths (a tenant key lookup, a check), which every used key reaches at
// least once per check interval, so an idle process makes no work.
func (k *Keyring) maybeSweep(now int64) {
	next := k.nextSweep.Load()
	if now < next || !k.nextSweep.CompareAndSwap(next, now+int64(k.sweepEvery())) {
		return
	}
	k.sweep(now)
}

// sweepEvery is the period of the idle sweep: an entry is dropped between
// TenantKeyIdleTimeout and that plus this period after its last use.
func (k *Keyring) sweepEvery() time.Duration {
	return max(k.cfg.TenantKeyIdleTimeout/4, time.Second)
}

// sweep drops the tenant keys and DEKs not used for TenantKeyIdleTimeout.
func (k *Keyring) sweep(now int64) {
	idle := int64(k.cfg.TenantKeyIdleTimeout)
	stale := func(e *cacheEntry) bool {
		if e.ref.Load() {
			e.ref.Store(false)
			e.seen.Store(now)
			return false
		}
		return now-e.seen.Load() >= idle
	}
	var tks []*tenantKey
	var deks []*dek
	k.mu.RLock()
	for _, d := range k.dekClock.items {
		// A scope's active DEK stays while its tenant key does: dropping
		// it would only add a DEK row when the scope is used again.
		if a := k.active[scopeID{d.tenant, d.scope}]; a != nil && a.dek == d {
			continue
		}
		if stale(&d.ce) {
			deks = append(deks, d)
		}
	}
	for _, t := range k.tkClock.items {
		if stale(&t.ce) {
			tks = append(tks, t)
		}
	}
	k.mu.RUnlock()
	if len(tks) == 0 && len(deks) == 0 {
		return
	}
	var evicted []*tenantKey
	k.mu.Lock()
	for _, t := range tks {
		// Used meanwhile, or gone already: keep it as it is.
		if !t.ce.cached() || t.ce.ref.Load() {
			continue
		}
		k.unlinkTK(t, false)
		k.tkStats.idle.Add(1)
		evicted = append(evicted, t)
	}
	for _, d := range deks {
		if !d.ce.cached() || d.ce.ref.Load() {
			continue
		}
		if a := k.active[scopeID{d.tenant, d.scope}]; a != nil && a.dek == d {
			continue // became active meanwhile
		}
		k.unlinkDEK(d, false)
		k.dekStats.idle.Add(1)
	}
	k.mu.Unlock()
	k.wipeEvicted(evicted)
}
