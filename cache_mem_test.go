package byok_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/internal/fakeclock"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
)

// memStore is a byok.Store in maps, so that measurements of the keyring's
// memory see no database cache.
type memStore struct {
	mu      sync.Mutex
	tenants map[string]byok.TenantRecord
	keys    map[string][]byok.TenantKeyRecord // by tenant/kind, epoch order
	scopes  map[[2]string]byok.ScopeRecord
	deks    map[byok.DEKID]byok.DEKRecord
	discard bool // PutDEK stores nothing
}

func newMemStore() *memStore {
	return &memStore{tenants: map[string]byok.TenantRecord{}, keys: map[string][]byok.TenantKeyRecord{},
		scopes: map[[2]string]byok.ScopeRecord{}, deks: map[byok.DEKID]byok.DEKRecord{}}
}

func keysOf(tenant string, kind byok.KeyKind) string { return fmt.Sprintf("%s/%d", tenant, kind) }

func (s *memStore) CreateTenant(_ context.Context, t byok.TenantRecord, keys []byok.TenantKeyRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tenants[t.ID]; ok {
		return byok.ErrExists
	}
	s.tenants[t.ID] = t
	for _, k := range keys {
		s.keys[keysOf(k.Tenant, k.Kind)] = append(s.keys[keysOf(k.Tenant, k.Kind)], k)
	}
	return nil
}

func (s *memStore) Tenant(_ context.Context, id string) (byok.TenantRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[id]
	if !ok {
		return t, byok.ErrNotFound
	}
	return t, nil
}

func (s *memStore) SetTenantPolicy(_ context.Context, id string, p byok.Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[id]
	if !ok {
		return byok.ErrNotFound
	}
	t.Policy = p
	s.tenants[id] = t
	return nil
}

func (s *memStore) TenantKey(_ context.Context, tenant string, kind byok.KeyKind) (byok.TenantKeyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := s.keys[keysOf(tenant, kind)]
	if len(ks) == 0 {
		return byok.TenantKeyRecord{}, byok.ErrNotFound
	}
	return ks[len(ks)-1], nil
}

func (s *memStore) TenantKeyEpoch(_ context.Context, tenant string, kind byok.KeyKind, epoch uint32) (byok.TenantKeyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys[keysOf(tenant, kind)] {
		if k.Epoch == epoch {
			return k, nil
		}
	}
	return byok.TenantKeyRecord{}, byok.ErrNotFound
}

func (s *memStore) PutTenantKey(_ context.Context, k byok.TenantKeyRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[keysOf(k.Tenant, k.Kind)] = append(s.keys[keysOf(k.Tenant, k.Kind)], k)
	return nil
}

func (s *memStore) Scope(_ context.Context, tenant, scope string) (byok.ScopeRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.scopes[[2]string{tenant, scope}]
	if !ok {
		return r, byok.ErrNotFound
	}
	return r, nil
}

func (s *memStore) PutScope(_ context.Context, r byok.ScopeRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes[[2]string{r.Tenant, r.Scope}] = r
	return nil
}

func (s *memStore) PutDEK(_ context.Context, d byok.DEKRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.discard {
		s.deks[d.ID] = d
	}
	return nil
}

func (s *memStore) DEK(_ context.Context, id byok.DEKID) (byok.DEKRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deks[id]
	if !ok {
		return d, byok.ErrNotFound
	}
	return d, nil
}

// heapBytes returns the live heap after a full collection.
func heapBytes() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkCacheEntryBytes measures the memory one cached tenant key and
// one cached DEK cost (reported as bytes/tenant-key and bytes/DEK), with
// the real clock (each tenant key and active DEK has a timer), tenant ids
// of 12 bytes and scope ids of 5: the live heap (runtime.MemStats after a
// full GC) of a keyring that loads n tenant keys, then 2n DEKs, then makes
// n new active DEKs (one per scope, with its message count and age timer),
// divided by the count. The store is in maps filled beforehand, so its memory is
// not counted. docs/operations.md ("Cache limits") quotes these figures.
func BenchmarkCacheEntryBytes(b *testing.B) {
	const n = 20_000
	ctx := context.Background()
	st := newMemStore()
	prk := kmstest.NewFake()
	cfg := byok.Config{Store: st, PlatformKMS: prk, PlatformKeyID: prk.AddKey("platform"),
		CustomerKMS:   func(context.Context, string) (kms.Provider, error) { return nil, fmt.Errorf("none") },
		MaxTenantKeys: -1, MaxDEKs: -1}
	wcfg := cfg
	wcfg.Now = fakeclock.New(time.Now()).Now // no timers
	wcfg.DEKMaxMessages = 1                  // a DEK per message
	writer, err := byok.New(wcfg)
	if err != nil {
		b.Fatal(err)
	}
	tenants := make([]string, n)
	cts := make([][2][]byte, n)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tenant-%06d", i)
		if err := writer.CreateTenant(ctx, tenants[i], byok.Grace); err != nil {
			b.Fatal(err)
		}
		for j := range 2 {
			if cts[i][j], err = writer.Encrypt(ctx, tenants[i], "scope", []byte("x"), nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	writer = nil

	for b.Loop() {
		kr, err := byok.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		m0 := heapBytes()
		for _, t := range tenants {
			if _, err := kr.Check(ctx, t); err != nil {
				b.Fatal(err)
			}
		}
		m1 := heapBytes()
		for i, t := range tenants {
			for j := range 2 {
				if _, err := kr.Decrypt(ctx, t, "scope", cts[i][j], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
		m2 := heapBytes()
		st.discard = true
		for _, t := range tenants {
			if _, err := kr.Encrypt(ctx, t, "scope", []byte("x"), nil); err != nil {
				b.Fatal(err)
			}
		}
		m3 := heapBytes()
		st.discard = false
		if s := kr.Stats(); s.TenantKeys.Entries != n || s.DEKs.Entries != 3*n {
			b.Fatalf("cached %+v, want %d tenant keys and %d DEKs", s, n, 3*n)
		}
		b.ReportMetric(float64(m1-m0)/n, "bytes/tenant-key")
		b.ReportMetric(float64(m2-m1)/(2*n), "bytes/DEK")
		b.ReportMetric(float64(m3-m2)/n, "bytes/active-DEK")
		runtime.KeepAlive(kr)
	}
}
