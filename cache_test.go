package byok_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

func limits(tks, deks int) func(*byok.Config) {
	return func(c *byok.Config) { c.MaxTenantKeys, c.MaxDEKs = tks, deks }
}

// Concurrent callers over more tenants and DEKs than the caches hold: the
// limits hold at every moment, evictions happen, and every ciphertext
// still decrypts.
func TestCacheLimitsHoldUnderConcurrentLoad(t *testing.T) {
	const maxTKs, maxDEKs = 3, 5
	f := newFixture(t, limits(maxTKs, maxDEKs), func(c *byok.Config) { c.DEKMaxMessages = 4 })
	tenants := []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"}
	for _, id := range tenants {
		f.tenant(id, byok.Grace)
	}

	var over atomic.Value // the first Stats seen over a limit
	var polls atomic.Int64
	checkLimits := func() {
		s := f.kr.Stats()
		polls.Add(1)
		if s.TenantKeys.Entries > maxTKs || s.DEKs.Entries > maxDEKs {
			over.CompareAndSwap(nil, s)
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 6 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			type sealed struct {
				tenant, scope, msg string
				ct                 []byte
			}
			var mine []sealed
			for i := range 30 {
				tenant := tenants[r.IntN(len(tenants))]
				scope := fmt.Sprintf("s%d", r.IntN(3))
				msg := fmt.Sprintf("%d/%d", w, i)
				ct, err := f.kr.Encrypt(f.ctx, tenant, scope, []byte(msg), []byte("aad"))
				if err != nil {
					errs <- err
					return
				}
				mine = append(mine, sealed{tenant, scope, msg, ct})
				checkLimits()
				old := mine[r.IntN(len(mine))]
				pt, err := f.kr.Decrypt(f.ctx, old.tenant, old.scope, old.ct, []byte("aad"))
				if err != nil || string(pt) != old.msg {
					errs <- fmt.Errorf("Decrypt(%s, %s) = %q, %v; want %q", old.tenant, old.scope, pt, err, old.msg)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := over.Load(); s != nil {
		t.Fatalf("a cache went over its limit (%d tenant keys, %d DEKs): %+v", maxTKs, maxDEKs, s)
	}
	s := f.kr.Stats()
	t.Logf("stats after the load (%d polls): %+v", polls.Load(), s)
	if s.TenantKeys.Evictions == 0 || s.DEKs.Evictions == 0 {
		t.Fatalf("no eviction with %d tenants over %d tenant keys and %d DEKs: %+v", len(tenants), maxTKs, maxDEKs, s)
	}
	if s.TenantKeys.Limit != maxTKs || s.DEKs.Limit != maxDEKs {
		t.Fatalf("limits reported %d and %d, want %d and %d", s.TenantKeys.Limit, s.DEKs.Limit, maxTKs, maxDEKs)
	}
	if s.DEKs.Hits == 0 || s.DEKs.Misses == 0 || s.TenantKeys.Misses == 0 {
		t.Fatalf("hits and misses not counted: %+v", s)
	}
}

// An evicted tenant key is reloaded on its next use: its shares are
// unwrapped again and its data reads as before.
func TestEvictedTenantKeyReloads(t *testing.T) {
	f := newFixture(t, limits(1, 100))
	f.byokTenant("acme", byok.Grace)
	f.tenant("globex", byok.Grace)
	ct := f.encrypt("acme", "covered", "acme data")
	f.encrypt("globex", "chat", "evicts acme's key")

	if byok.CachedKeyMaterial(f.kr, "acme") || byok.CachedDEKs(f.kr, "acme") != 0 {
		t.Fatal("acme's tenant key or DEKs still cached after the limit of one tenant key evicted it")
	}
	if s := f.kr.Stats(); s.TenantKeys.Entries != 1 || s.TenantKeys.Evictions != 1 {
		t.Fatalf("stats = %+v, want 1 tenant key cached, 1 evicted", s.TenantKeys)
	}
	f.cmk.ResetCalls()
	f.mustDecrypt("acme", "covered", ct, "acme data")
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("reloading the evicted key made %d customer unwraps, want 1", n)
	}
	// Reloaded, it serves warm again.
	f.mustDecrypt("acme", "covered", ct, "acme data")
	f.mustDecrypt("acme", "covered", f.encrypt("acme", "covered", "new"), "new")
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("warm calls after the reload made %d customer unwraps in all, want 1", n)
	}
}

// A key revoked in the vault while it was evicted is refused when it is
// reloaded, even though its last check is less than a check interval old:
// eviction never extends a check's validity.
func TestKeyRevokedWhileEvictedIsRefusedOnReload(t *testing.T) {
	f := newFixture(t, limits(1, 100))
	keyID := f.byokTenant("acme", byok.Grace)
	f.tenant("globex", byok.Grace)
	ct := f.encrypt("acme", "covered", "acme data")
	f.encrypt("globex", "chat", "evicts acme's key")

	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDisabled)
	// No time passes: the evicted key's check would still be valid.
	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Decrypt after a revocation while evicted = %v, want ErrKeyRevoked", err)
	}
	if _, err := f.kr.Encrypt(f.ctx, "acme", "covered", []byte("x"), nil); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Encrypt after a revocation while evicted = %v, want ErrKeyRevoked", err)
	}
	// A transient failure while evicted fails closed too: the reloaded key
	// has no cached material to serve under Grace.
	f.cmk.HealKey(keyID)
	f.byokTenant("initech", byok.Grace)
	ct2 := f.encrypt("initech", "covered", "initech data")
	f.encrypt("globex", "chat", "evicts initech's key")
	f.cmk.Fail(kms.Transient, kms.ReasonUnavailable)
	if _, err := f.decrypt("initech", "covered", ct2); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("Decrypt of an evicted key while its vault is down = %v, want ErrKeyUnavailable", err)
	}
}

// Evicting a DEK, even a scope's active one, only costs a reload or a new
// DEK.
func TestEvictedDEKReloads(t *testing.T) {
	f := newFixture(t, limits(100, 1))
	f.tenant("acme", byok.Grace)
	a := f.encrypt("acme", "chat", "chat data")
	b := f.encrypt("acme", "mail", "mail data") // evicts chat's active DEK
	if n := byok.CachedDEKs(f.kr, "acme"); n != 1 {
		t.Fatalf("%d DEKs cached, want 1", n)
	}
	f.mustDecrypt("acme", "chat", a, "chat data")
	f.mustDecrypt("acme", "mail", b, "mail data")
	c := f.encrypt("acme", "chat", "more chat")
	if dekOf(t, c) == dekOf(t, a) {
		t.Fatal("Encrypt sealed under a DEK that is no longer active")
	}
	f.mustDecrypt("acme", "chat", c, "more chat")
	if s := f.kr.Stats().DEKs; s.Entries != 1 || s.Evictions < 3 {
		t.Fatalf("DEK stats = %+v, want 1 entry and at least 3 evictions", s)
	}
}

// A tenant key no data call used for TenantKeyIdleTimeout leaves memory
// with its DEKs, and the keyring makes no more provider calls for it; a
// key used within the timeout stays.
func TestIdleTenantKeyIsDropped(t *testing.T) {
	const idle = 10 * time.Minute
	f := newFixture(t, func(c *byok.Config) { c.TenantKeyIdleTimeout = idle })
	f.byokTenant("idle", byok.Grace)
	f.byokTenant("busy", byok.Grace)
	f.tenant("other", byok.Grace)
	idleCT := f.encrypt("idle", "covered", "idle data")
	busyCT := f.encrypt("busy", "covered", "busy data")
	f.cmk.ResetCalls()

	// Half an hour passes; "busy" is used every minute (so its key is
	// checked each interval), "other" drives the keyring too.
	for range 30 {
		f.clock.Advance(time.Minute)
		f.mustDecrypt("busy", "covered", busyCT, "busy data")
		f.encrypt("other", "chat", "traffic")
	}
	if byok.CachedKeyMaterial(f.kr, "idle") || byok.CachedDEKs(f.kr, "idle") != 0 {
		t.Fatal("the idle tenant's key or DEKs are still in memory after the idle timeout")
	}
	if !byok.CachedKeyMaterial(f.kr, "busy") || byok.CachedDEKs(f.kr, "busy") == 0 {
		t.Fatal("the busy tenant's key or DEK was dropped although used every minute")
	}
	// One customer unwrap per check interval of busy's key, none for idle's.
	if n := f.cmk.Calls().Unwrap; n != 30 {
		t.Fatalf("%d customer unwraps in 30 intervals, want 30 (busy's checks only)", n)
	}
	if s := f.kr.Stats(); s.TenantKeys.IdleEvictions == 0 || s.DEKs.IdleEvictions != 0 {
		// idle's DEK went with its tenant key, counted there.
		t.Fatalf("stats = %+v, want idle tenant key evictions", s)
	}
	// Used again, it reloads with one check.
	f.cmk.ResetCalls()
	f.mustDecrypt("idle", "covered", idleCT, "idle data")
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("reloading the idle key made %d customer unwraps, want 1", n)
	}
}

// A key revoked in the vault after it went idle and left memory is
// refused when it is next used, although its last check would still be
// valid: idle eviction, like eviction by the limit, never extends a
// check's validity.
func TestKeyRevokedWhileIdleIsRefusedOnReload(t *testing.T) {
	const idle = 10 * time.Minute
	f := newFixture(t, func(c *byok.Config) {
		c.TenantKeyIdleTimeout = idle
		c.CheckInterval = 2 * time.Hour // the last check outlives the eviction
	})
	keyID := f.byokTenant("acme", byok.Grace)
	f.tenant("other", byok.Grace)
	ct := f.encrypt("acme", "covered", "acme data")
	// The idle sweep runs on the slow paths, such as the monitor's checks:
	// here of another tenant, every minute.
	for range 30 {
		f.clock.Advance(time.Minute)
		f.encrypt("other", "chat", "traffic")
		if _, err := f.kr.Check(f.ctx, "other"); err != nil {
			t.Fatal(err)
		}
	}
	if byok.CachedKeyMaterial(f.kr, "acme") {
		t.Fatal("acme's key is still in memory after the idle timeout")
	}
	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDisabled)
	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Decrypt after a revocation while idle = %v, want ErrKeyRevoked", err)
	}
	if _, err := f.kr.Encrypt(f.ctx, "acme", "covered", []byte("x"), nil); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Encrypt after a revocation while idle = %v, want ErrKeyRevoked", err)
	}
}

// Check (the health monitor's call) is not a use: a key only the monitor
// checks goes idle and leaves memory.
func TestCheckIsNotAUse(t *testing.T) {
	const idle = 10 * time.Minute
	f := newFixture(t, func(c *byok.Config) { c.TenantKeyIdleTimeout = idle })
	f.byokTenant("acme", byok.Grace)
	f.encrypt("acme", "covered", "data")
	for range 20 {
		f.clock.Advance(time.Minute)
		if _, err := f.kr.Check(f.ctx, "acme"); err != nil {
			t.Fatal(err)
		}
	}
	if n := byok.CachedDEKs(f.kr, "acme"); n != 0 {
		t.Fatalf("%d DEKs of a tenant only the monitor checked are in memory after the idle timeout", n)
	}
	if s := f.kr.Stats(); s.TenantKeys.IdleEvictions == 0 {
		t.Fatalf("no idle eviction of keys only Check touched: %+v", s)
	}
}

// A DEK load whose tenant key is evicted while it waits for the vault
// still caches the DEK under a cached tenant key, so a later Forget and
// policy change reach it (as TestForgetDuringDEKLoad, with an eviction).
func TestEvictionDuringDEKLoad(t *testing.T) {
	f := newFixture(t, limits(1, 100))
	keyID := f.byokTenant("acme", byok.Grace)
	f.tenant("globex", byok.Grace)
	ct := f.encrypt("acme", "covered", "covered data")
	fresh, err := byok.New(f.cfg) // nothing cached
	if err != nil {
		t.Fatal(err)
	}
	gate := f.cmk.Block() // acme's load waits here
	done := make(chan error, 1)
	go func() {
		_, err := fresh.Decrypt(f.ctx, "acme", "covered", ct, []byte("aad"))
		done <- err
	}()
	<-gate.Entered()
	// globex's key evicts acme's while acme's load waits.
	if _, err := fresh.Encrypt(f.ctx, "globex", "chat", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	gate.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := fresh.SetPolicy(f.ctx, "acme", byok.Strict); err != nil {
		t.Fatal(err)
	}
	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
	f.clock.Advance(checkInterval)
	if _, err := fresh.Decrypt(f.ctx, "acme", "covered", ct, []byte("aad")); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("Decrypt of a strict tenant while its vault fails = %v, want ErrKeyUnavailable", err)
	}
	f.cmk.HealKey(keyID)
	fresh.Forget("acme")
	if n := byok.CachedDEKs(fresh, "acme"); n != 0 {
		t.Fatalf("%d DEKs of acme escaped Forget", n)
	}
}

// Forget, SetPolicy and evictions interleaved with concurrent calls leave
// no entry behind with a stale policy: once the tenant is strict, an
// outage fails every one of its calls closed.
func TestForgetAndPolicyDuringEviction(t *testing.T) {
	f := newFixture(t, limits(2, 4), func(c *byok.Config) { c.DEKMaxMessages = 3 })
	keyID := f.byokTenant("acme", byok.Grace)
	others := []string{"o1", "o2", "o3"}
	for _, id := range others {
		f.tenant(id, byok.Grace)
	}
	var cts [][]byte
	for i := range 6 {
		cts = append(cts, f.encrypt("acme", "covered", fmt.Sprint(i)))
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if w%2 == 0 {
					_, err = f.kr.Decrypt(f.ctx, "acme", "covered", cts[i%len(cts)], []byte("aad"))
				} else {
					_, err = f.kr.Encrypt(f.ctx, others[i%len(others)], "s", []byte("x"), nil)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// At least 30 rounds, and on until the callers have caused an
	// eviction (a loaded machine may not have run them yet).
	for i := 0; i < 30 || f.kr.Stats().TenantKeys.Evictions == 0 && i < 1_000_000; i++ {
		p := byok.Grace
		if i%2 == 1 {
			p = byok.Strict
		}
		if err := f.kr.SetPolicy(f.ctx, "acme", p); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			f.kr.Forget("acme")
		}
	}
	if err := f.kr.SetPolicy(f.ctx, "acme", byok.Strict); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := f.kr.Stats(); s.TenantKeys.Evictions == 0 {
		t.Fatalf("no eviction happened during the test: %+v", s)
	}
	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
	f.clock.Advance(checkInterval)
	for i, ct := range cts {
		if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyUnavailable) {
			t.Fatalf("ciphertext %d of a strict tenant during an outage: %v, want ErrKeyUnavailable", i, err)
		}
	}
}

// Limits and the idle timeout can be turned off.
func TestCacheLimitsOff(t *testing.T) {
	f := newFixture(t, limits(-1, -1), func(c *byok.Config) { c.TenantKeyIdleTimeout = -1 })
	for i := range 5 {
		id := fmt.Sprintf("t%d", i)
		f.tenant(id, byok.Grace)
		f.encrypt(id, "chat", "x")
	}
	f.clock.Advance(365 * 24 * time.Hour)
	f.encrypt("t0", "chat", "x")
	if s := f.kr.Stats(); s.TenantKeys.Entries != 5 || s.TenantKeys.Evictions+s.TenantKeys.IdleEvictions != 0 {
		t.Fatalf("stats with no limits = %+v, want 5 tenant keys and no eviction", s.TenantKeys)
	}
}

// countingStore counts the DEK rows written.
type countingStore struct {
	byok.Store
	puts atomic.Int64
}

func (s *countingStore) PutDEK(ctx context.Context, d byok.DEKRecord) error {
	s.puts.Add(1)
	return s.Store.PutDEK(ctx, d)
}

// A rolling restart adds one DEK row per replica and scope it writes to:
// each process makes its own active DEK. docs/operations.md quotes this.
func TestRollingRestartAddsADEKRowPerReplicaAndScope(t *testing.T) {
	const replicas, scopes = 3, 20
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	st := &countingStore{Store: f.db}
	cfg := f.cfg
	cfg.Store = st
	start := func() []*byok.Keyring {
		var krs []*byok.Keyring
		for range replicas {
			kr, err := byok.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			krs = append(krs, kr)
		}
		return krs
	}
	write := func(krs []*byok.Keyring) {
		for _, kr := range krs {
			for s := range scopes {
				for range 5 {
					if _, err := kr.Encrypt(f.ctx, "acme", fmt.Sprintf("s%d", s), []byte("x"), nil); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	write(start())
	before := st.puts.Load()
	write(start()) // every replica restarted
	if added := st.puts.Load() - before; added != replicas*scopes {
		t.Fatalf("a rolling restart of %d replicas writing to %d scopes added %d DEK rows, want %d", replicas, scopes, added, replicas*scopes)
	}
}

// Keys that only Check loaded are the first evicted: the health monitor
// going through every tenant does not push out the keys in use.
func TestCheckedKeysGoFirst(t *testing.T) {
	f := newFixture(t, limits(2, 100))
	f.tenant("busy", byok.Grace)
	ct := f.encrypt("busy", "chat", "data")
	for i := range 5 {
		id := fmt.Sprintf("idle%d", i)
		f.tenant(id, byok.Grace)
		f.mustDecrypt("busy", "chat", ct, "data")
		if _, err := f.kr.Check(f.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if !byok.CachedKeyMaterial(f.kr, "busy") || byok.CachedDEKs(f.kr, "busy") != 1 {
		t.Fatal("the monitor's checks of idle tenants evicted the key in use")
	}
}
