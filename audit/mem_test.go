package audit_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// memStore is an in-memory audit.Store for the package's tests, with a
// failure to inject per chain.
type memStore struct {
	mu     sync.Mutex
	chains map[string][]audit.Event
	ids    map[string]bool
	fail   map[string]error // AppendAudit to this chain fails
}

func newMemStore() *memStore {
	return &memStore{chains: map[string][]audit.Event{}, ids: map[string]bool{}, fail: map[string]error{}}
}

func (m *memStore) AppendAudit(ctx context.Context, tenant string, seal func(audit.Head) ([]audit.Event, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[tenant]; err != nil {
		return err
	}
	var head audit.Head
	if c := m.chains[tenant]; len(c) > 0 {
		head = audit.Head{Seq: c[len(c)-1].Seq, Hash: c[len(c)-1].Hash}
	}
	es, err := seal(head)
	if err != nil {
		return err
	}
	for _, e := range es {
		if m.ids[e.ID] {
			return fmt.Errorf("id %s: %w", e.ID, byok.ErrExists)
		}
	}
	for _, e := range es {
		m.ids[e.ID] = true
		m.chains[tenant] = append(m.chains[tenant], e)
	}
	return nil
}

func (m *memStore) AuditEvents(ctx context.Context, q audit.Query) ([]audit.Event, error) {
	if q.Limit < 1 {
		return nil, &byok.InputError{Arg: "limit", Reason: "is not positive"}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	chains := []string{q.Tenant}
	if q.All {
		chains = m.chainNames()
	}
	out := []audit.Event{}
	for _, c := range chains {
		for _, e := range m.chains[c] {
			if e.Tenant < q.After.Tenant || e.Tenant == q.After.Tenant && e.Seq <= q.After.Seq {
				continue
			}
			if !q.Since.IsZero() && e.Time.Before(q.Since) || !q.Until.IsZero() && !e.Time.Before(q.Until) ||
				!strings.HasPrefix(e.Action, q.ActionPrefix) {
				continue
			}
			if len(out) == q.Limit {
				return out, nil
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) AuditChains(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chainNames(), nil
}

func (m *memStore) chainNames() []string {
	var cs []string
	for c, es := range m.chains {
		if len(es) > 0 {
			cs = append(cs, c)
		}
	}
	slices.Sort(cs)
	return cs
}

// events returns a copy of chain tenant.
func (m *memStore) events(tenant string) []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.chains[tenant])
}

// edit changes event seq of chain tenant in place, behind the log's back.
func (m *memStore) edit(tenant string, seq uint64, f func(*audit.Event)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.chains[tenant][seq-1])
}

// fakeClock is a Clock that tests move by hand. Every After call is
// announced on afters, so a test knows when the code under test waits.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	afters chan after
}

type after struct {
	d  time.Duration
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, afters: make(chan after, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.afters <- after{d, ch}
	return ch
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
