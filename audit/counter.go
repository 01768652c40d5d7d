package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Op is a data operation that a [Counter] counts.
type Op uint8

// Counted operations.
const (
	Encrypt Op = iota
	Decrypt
	numOps
)

// UsageAction is the Action of the events a [Counter] records.
const UsageAction = "usage"

// UsageActor is the Actor of the events a [Counter] records.
var UsageActor = Actor{Kind: System, ID: "usage-counter"}

// Counter counts encrypt and decrypt operations per tenant and scope in
// memory and records them as one "usage" event per (tenant, scope) and
// minute, instead of one row per operation. It is safe for concurrent
// use.
//
// Each usage event is recorded in the tenant's chain with Target the
// scope and Details "minute" (the minute the counts began in, RFC 3339),
// "encrypt" and "decrypt" (decimal counts, the zero ones included).
type Counter struct {
	log    *Log
	seed   maphash.Seed
	shards [numShards]shard

	flushMu sync.Mutex // serialises flushes; guards since
	since   time.Time  // start of the counts not yet flushed
}

const numShards = 16

// shard is one part of the counts. Add holds mu for reading, so that it
// costs no allocation and no exclusive lock once a (tenant, scope) has a
// cell; a flush holds it for writing only to swap the map.
type shard struct {
	mu    sync.RWMutex
	cells map[usageKey]*usageCell
	_     [64]byte // keep shards on separate cache lines
}

type usageKey struct{ tenant, scope string }

type usageCell struct{ n [numOps]atomic.Uint64 }

// NewCounter returns a Counter that records into l, with l's clock.
func NewCounter(l *Log) *Counter {
	c := &Counter{log: l, seed: maphash.MakeSeed(), since: l.clock.Now()}
	for i := range c.shards {
		c.shards[i].cells = make(map[usageKey]*usageCell)
	}
	return c
}

// Add counts one operation op on scope of tenant. It does not allocate,
// except the first time a (tenant, scope) is seen after a flush. An op
// other than Encrypt or Decrypt panics.
func (c *Counter) Add(tenant, scope string, op Op) {
	if op >= numOps {
		panic("audit: Counter.Add of unknown op " + strconv.Itoa(int(op)))
	}
	s := &c.shards[maphash.String(c.seed, tenant)%numShards]
	k := usageKey{tenant, scope}
	s.mu.RLock()
	if cell, ok := s.cells[k]; ok {
		cell.n[op].Add(1)
		s.mu.RUnlock()
		return
	}
	s.mu.RUnlock()
	s.mu.Lock()
	cell, ok := s.cells[k]
	if !ok {
		cell = new(usageCell)
		s.cells[k] = cell
	}
	cell.n[op].Add(1)
	s.mu.Unlock()
}

// Flush records the counts gathered since the last flush (or since
// NewCounter), one usage event per (tenant, scope) that had any, one
// store transaction per tenant. Counts that could not be recorded are
// kept for the next flush (and reported in its minute), and the error
// says which tenants failed.
func (c *Counter) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	now := c.log.clock.Now()
	byTenant := make(map[string][]usageEntry)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		cells := s.cells
		if len(cells) == 0 {
			s.mu.Unlock()
			continue
		}
		s.cells = make(map[usageKey]*usageCell, len(cells))
		s.mu.Unlock()
		for k, cell := range cells {
			var n [numOps]uint64
			for op := range n {
				n[op] = cell.n[op].Load() // no Add reaches a swapped-out cell
			}
			byTenant[k.tenant] = append(byTenant[k.tenant], usageEntry{k, n})
		}
	}
	minute := c.since.UTC().Truncate(time.Minute).Format(time.RFC3339)
	var errs []error
	for tenant, entries := range byTenant {
		events := make([]Event, len(entries))
		for i, u := range entries {
			events[i] = Event{
				Tenant: tenant, Time: now, Actor: UsageActor, Action: UsageAction, Target: u.key.scope, Outcome: Success,
				Details: map[string]string{
					"minute":  minute,
					"encrypt": strconv.FormatUint(u.n[Encrypt], 10),
					"decrypt": strconv.FormatUint(u.n[Decrypt], 10),
				},
			}
		}
		if err := c.log.recordBatch(ctx, tenant, events); err != nil {
			errs = append(errs, fmt.Errorf("audit: flush usage of %s: %w", chainName(tenant), err))
			for _, u := range entries {
				c.restore(u)
			}
		}
	}
	c.since = now
	return errors.Join(errs...)
}

// usageEntry is the counts of one (tenant, scope) taken by a flush.
type usageEntry struct {
	key usageKey
	n   [numOps]uint64
}

// restore adds back counts that a flush could not record.
func (c *Counter) restore(u usageEntry) {
	s := &c.shards[maphash.String(c.seed, u.key.tenant)%numShards]
	s.mu.Lock()
	cell, ok := s.cells[u.key]
	if !ok {
		cell = new(usageCell)
		s.cells[u.key] = cell
	}
	for op, n := range u.n {
		cell.n[op].Add(n)
	}
	s.mu.Unlock()
}

// Run flushes at the end of every minute of the Log's clock until ctx is
// done, then flushes once more (with ctx's values but without its
// cancellation) and returns. A failed flush is logged with
// [slog.Default] at level Warn, without any secret, and its counts are
// kept for the next one.
func (c *Counter) Run(ctx context.Context) {
	clock := c.log.clock
	for {
		now := clock.Now()
		next := now.Truncate(time.Minute).Add(time.Minute)
		select {
		case <-ctx.Done():
			c.flushLogged(context.WithoutCancel(ctx))
			return
		case <-clock.After(next.Sub(now)):
			c.flushLogged(ctx)
		}
	}
}

func (c *Counter) flushLogged(ctx context.Context) {
	if err := c.Flush(ctx); err != nil {
		slog.Default().WarnContext(ctx, "audit: usage counts not recorded; keeping them for the next flush", "err", err)
	}
}
