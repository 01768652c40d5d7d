package azurekv

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Key Vault throttles each vault by a weighted count of operations per
// 10 seconds (https://learn.microsoft.com/azure/key-vault/general/service-limits):
// 4,000 operations on RSA-2048 software keys, 1,000 on RSA-3072, 500 on
// RSA-4096, and half as many on HSM-protected keys. byok's budget counts in
// "RSA-2048 software operations": one operation on a bigger or HSM key costs
// proportionally more.
const (
	budgetWindow   = 10 * time.Second
	budgetCapacity = 4000 // RSA-2048 software operations per window
)

// documentedLimit returns Key Vault's documented limit of crypto
// operations per 10 seconds for a key of type kty ("RSA", "RSA-HSM", "EC",
// …) and size bits (0 if unknown, taken as 2048).
func documentedLimit(kty string, bits int) int {
	limit := 4000
	switch {
	case bits > 3072:
		limit = 500
	case bits > 2048:
		limit = 1000
	}
	if kty == "RSA-HSM" || kty == "EC-HSM" {
		limit /= 2
	}
	return limit
}

// opCost is the budget one operation on such a key costs.
func opCost(kty string, bits int) float64 {
	return float64(budgetCapacity) / float64(documentedLimit(kty, bits))
}

// bucket is a token bucket: capacity tokens, refilled at capacity per
// window. It is safe for concurrent use.
type bucket struct {
	now      func() time.Time
	capacity float64
	rate     float64 // tokens per second

	mu     sync.Mutex
	tokens float64
	last   time.Time

	hold hold // Retry-After (hold.go)
}

func newBucket(capacity float64, window time.Duration, now func() time.Time) *bucket {
	return &bucket{now: now, capacity: capacity, rate: capacity / window.Seconds(), tokens: capacity, last: now()}
}

// reserve takes cost tokens, going into debt if needed, and returns how long
// the caller must wait before using them. A reservation whose wait would
// outlast ctx's deadline is not taken.
func (b *bucket) reserve(ctx context.Context, cost float64) (time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(b.capacity, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	var wait time.Duration
	if b.tokens < cost {
		wait = time.Duration((cost - b.tokens) / b.rate * float64(time.Second))
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(wait).After(dl) {
		return 0, fmt.Errorf("the vault's call budget needs %v before the next call, longer than the time left: %w", wait.Round(time.Millisecond), context.DeadlineExceeded)
	}
	b.tokens -= cost
	return wait, nil
}

// available returns the tokens in the bucket now.
func (b *bucket) available() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return min(b.capacity, b.tokens+b.now().Sub(b.last).Seconds()*b.rate)
}

// wait takes cost tokens, waiting for them while honouring ctx.
func (b *bucket) wait(ctx context.Context, cost float64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err := b.reserve(ctx, cost)
	if err != nil || d <= 0 {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// budgets holds one bucket per vault host, shared by every Provider of the
// process: its call budget and its Retry-After hold.
var budgets sync.Map // host → *bucket

// budgetFor returns the process-wide budget of a vault host.
func budgetFor(host string) *bucket {
	if b, ok := budgets.Load(host); ok {
		return b.(*bucket)
	}
	b, _ := budgets.LoadOrStore(host, newBucket(budgetCapacity, budgetWindow, time.Now))
	return b.(*bucket)
}
