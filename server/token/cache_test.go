package token

import (
	"context"
	"sync"
	"testing"
	"time"
)

// memStore is a Store in memory that counts reads.
type memStore struct {
	mu     sync.Mutex
	recs   map[string]Record
	reads  int
	during func() // runs inside Token, after the read
}

func (m *memStore) CreateToken(_ context.Context, r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[r.ID] = r
	return nil
}

func (m *memStore) Token(_ context.Context, id string) (Record, error) {
	m.mu.Lock()
	r, ok := m.recs[id]
	m.reads++
	during := m.during
	m.mu.Unlock()
	if during != nil {
		during()
	}
	if !ok {
		return Record{}, context.Canceled // any error: not cached
	}
	return r, nil
}

func (m *memStore) ListTokens(context.Context, string, int) ([]Record, error) { return nil, nil }

func (m *memStore) RevokeToken(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[id]
	r.Revoked = at
	m.recs[id] = r
	return nil
}

func (m *memStore) readCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

func newCached(t *testing.T, ttl time.Duration, max int) (*CachedStore, *memStore, *time.Time, Record) {
	t.Helper()
	st := &memStore{recs: map[string]Record{}}
	_, r, _ := New(Service, []string{"acme"}, "", now, 0)
	st.CreateToken(context.Background(), r)
	c := NewCachedStore(st, ttl, max)
	clock := now
	c.now = func() time.Time { return clock }
	return c, st, &clock, r
}

// A fresh record is served from memory; a stale one is read again.
func TestCachedStoreServesWithinTTL(t *testing.T) {
	c, st, clock, r := newCached(t, 5*time.Second, 0)
	ctx := context.Background()
	for range 3 {
		if got, err := c.Token(ctx, r.ID); err != nil || got.ID != r.ID {
			t.Fatalf("Token = %+v, %v", got, err)
		}
	}
	if n := st.readCount(); n != 1 {
		t.Fatalf("%d store reads for 3 lookups within the TTL, want 1", n)
	}
	*clock = clock.Add(5 * time.Second)
	c.Token(ctx, r.ID)
	if n := st.readCount(); n != 2 {
		t.Fatalf("%d store reads after the TTL passed, want 2", n)
	}
	// Unknown ids and failures are not cached.
	c.Token(ctx, "nope")
	c.Token(ctx, "nope")
	if n := st.readCount(); n != 4 {
		t.Fatalf("%d store reads after two lookups of an unknown id, want 4", n)
	}
}

// A revocation through the cache shows at once; one made elsewhere (the
// store written by another replica) within the TTL.
func TestCachedStoreRevocation(t *testing.T) {
	c, st, clock, r := newCached(t, 5*time.Second, 0)
	ctx := context.Background()
	c.Token(ctx, r.ID)
	if err := c.RevokeToken(ctx, r.ID, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Token(ctx, r.ID); got.Revoked.IsZero() {
		t.Fatal("a token revoked through the cache is still served unrevoked")
	}

	_, r2, _ := New(Service, []string{"acme"}, "", now, 0)
	st.CreateToken(ctx, r2)
	c.Token(ctx, r2.ID)
	st.RevokeToken(ctx, r2.ID, now) // another replica
	*clock = clock.Add(5*time.Second - 1)
	if got, _ := c.Token(ctx, r2.ID); !got.Revoked.IsZero() {
		t.Fatal("the cache read the store within the TTL")
	}
	*clock = clock.Add(1)
	if got, _ := c.Token(ctx, r2.ID); got.Revoked.IsZero() {
		t.Fatal("a token revoked elsewhere is still served unrevoked after the TTL")
	}
}

// A read that began before a revocation through the cache is not cached:
// it may hold the record as it was before.
func TestCachedStoreReadRacingRevocation(t *testing.T) {
	c, st, _, r := newCached(t, time.Hour, 0)
	ctx := context.Background()
	st.during = func() {
		st.during = nil
		c.RevokeToken(ctx, r.ID, now) // lands after the read, before the fill
	}
	if got, _ := c.Token(ctx, r.ID); !got.Revoked.IsZero() {
		t.Fatal("the racing read saw the revocation; the test does not test the race")
	}
	if got, _ := c.Token(ctx, r.ID); got.Revoked.IsZero() {
		t.Fatal("the record read before a revocation was cached and served after it")
	}
}

// The cache holds at most its limit, under concurrent callers.
func TestCachedStoreLimit(t *testing.T) {
	c, st, _, _ := newCached(t, time.Hour, 8)
	ctx := context.Background()
	var ids []string
	for range 50 {
		_, r, _ := New(Operator, nil, "", now, 0)
		st.CreateToken(ctx, r)
		ids = append(ids, r.ID)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				id := ids[(i*7+g)%len(ids)]
				if r, err := c.Token(ctx, id); err != nil || r.ID != id {
					t.Errorf("Token(%s) = %+v, %v", id, r, err)
				}
				if g == 0 && i%10 == 0 {
					c.RevokeToken(ctx, id, now)
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > 8 {
		t.Fatalf("%d cached records, limit 8", n)
	}
}
