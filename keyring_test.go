package byok_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
)

func TestRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	for _, n := range []int{0, 1, 1000, 1 << 20} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		for _, aad := range [][]byte{nil, []byte("row 42")} {
			ct, err := f.kr.Encrypt(f.ctx, "acme", "chat", pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			if n > 16 && bytes.Contains(ct, pt[:16]) {
				t.Fatalf("ciphertext of %d bytes contains the plaintext", n)
			}
			got, err := f.kr.Decrypt(f.ctx, "acme", "chat", ct, aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("round trip of %d bytes changed the data", n)
			}
		}
	}
}

// A ciphertext presented under any other tenant, scope or associated data
// fails with ErrDecrypt and returns no data.
func TestCiphertextBoundToTenantScopeAndAAD(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	f.tenant("globex", byok.Grace)
	ct := f.encrypt("acme", "chat", "secret")
	f.encrypt("globex", "chat", "warm globex up")

	cases := []struct{ tenant, scope, aad string }{
		{"globex", "chat", "aad"},
		{"acme", "mail", "aad"},
		{"acme", "chat", "other aad"},
		{"acme", "chat", ""},
	}
	for _, c := range cases {
		pt, err := f.kr.Decrypt(f.ctx, c.tenant, c.scope, ct, []byte(c.aad))
		if !errors.Is(err, byok.ErrDecrypt) || pt != nil {
			t.Errorf("Decrypt as %+v = %q, %v; want nil, ErrDecrypt", c, pt, err)
		}
	}
	f.mustDecrypt("acme", "chat", ct, "secret")
}

// A fresh process given another tenant's ciphertext never loads that
// tenant's key on the caller's behalf.
func TestForeignCiphertextLoadsNoKey(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	f.tenant("globex", byok.Grace)
	ct := f.encrypt("globex", "chat", "globex data")

	fresh, err := byok.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.prk.ResetCalls()
	if _, err := fresh.Decrypt(f.ctx, "acme", "chat", ct, []byte("aad")); !errors.Is(err, byok.ErrDecrypt) {
		t.Fatalf("Decrypt = %v, want ErrDecrypt", err)
	}
	if c := f.prk.Calls(); c.Unwrap != 0 {
		t.Fatalf("decrypting globex's ciphertext as acme made %d unwrap calls, want 0", c.Unwrap)
	}
	if byok.CachedKeyMaterial(fresh, "globex") {
		t.Fatal("globex's tenant key was loaded on acme's behalf")
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	good := f.encrypt("acme", "chat", "hello")
	cancelled, cancel := context.WithCancel(f.ctx)
	cancel()

	unknownVersion := bytes.Clone(good)
	unknownVersion[4] = 7

	cases := []struct {
		name          string
		ctx           context.Context
		tenant, scope string
		data, aad     []byte
		decrypt       bool
		want          error
		msg           string // a part of the error message
	}{
		{"empty tenant", f.ctx, "", "chat", nil, nil, false, byok.ErrInvalidInput, "tenant is empty"},
		{"empty scope", f.ctx, "acme", "", nil, nil, false, byok.ErrInvalidInput, "scope is empty"},
		{"long tenant", f.ctx, strings.Repeat("a", 256), "chat", nil, nil, false, byok.ErrInvalidInput, "256 bytes, the limit is 255"},
		{"long scope", f.ctx, "acme", strings.Repeat("s", 300), nil, nil, true, byok.ErrInvalidInput, "300 bytes"},
		{"space in tenant", f.ctx, "ac me", "chat", nil, nil, false, byok.ErrInvalidInput, "space or control character"},
		{"control in scope", f.ctx, "acme", "ch\x00at", nil, nil, false, byok.ErrInvalidInput, "control character"},
		{"big aad", f.ctx, "acme", "chat", nil, make([]byte, byok.MaxAAD+1), false, byok.ErrInvalidInput, "aad is"},
		{"big plaintext", f.ctx, "acme", "chat", make([]byte, byok.MaxPlaintext+1), nil, false, byok.ErrInvalidInput, "use EncryptStream"},
		{"cancelled encrypt", cancelled, "acme", "chat", []byte("x"), nil, false, context.Canceled, "canceled"},
		{"cancelled decrypt", cancelled, "acme", "chat", good, []byte("aad"), true, context.Canceled, "canceled"},
		{"unknown tenant", f.ctx, "nobody", "chat", []byte("x"), nil, false, byok.ErrUnknownTenant, `"nobody"`},
		{"unknown version", f.ctx, "acme", "chat", unknownVersion, []byte("aad"), true, byok.ErrFormat, "version 7"},
		{"not a ciphertext", f.ctx, "acme", "chat", []byte("hello, world, this is plain text....................."), nil, true, byok.ErrFormat, ""},
		{"empty ciphertext", f.ctx, "acme", "chat", nil, nil, true, byok.ErrFormat, ""},
		{"truncated", f.ctx, "acme", "chat", good[:len(good)-1], []byte("aad"), true, byok.ErrDecrypt, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out []byte
			var err error
			if c.decrypt {
				out, err = f.kr.Decrypt(c.ctx, c.tenant, c.scope, c.data, c.aad)
			} else {
				out, err = f.kr.Encrypt(c.ctx, c.tenant, c.scope, c.data, c.aad)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if out != nil {
				t.Fatalf("returned %d bytes along with the error", len(out))
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not say %q", err, c.msg)
			}
		})
	}
}

// Steady-state operations make no provider call at all.
func TestWarmPathMakesNoProviderCalls(t *testing.T) {
	f := newFixture(t)
	f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "warm up")
	f.mustDecrypt("acme", "covered", ct, "warm up")
	f.prk.ResetCalls()
	f.cmk.ResetCalls()
	for i := range 10000 {
		ct := f.encrypt("acme", "covered", "x")
		f.mustDecrypt("acme", "covered", ct, "x")
		if i%1000 == 0 {
			f.clock.Advance(checkInterval / 20) // time passes, within the interval
		}
	}
	if c, p := f.cmk.Calls(), f.prk.Calls(); c != (kmstest.Counts{}) || p != (kmstest.Counts{}) {
		t.Fatalf("10^4 warm operations made provider calls: customer %+v, platform %+v", c, p)
	}
}

// Each check interval, a cached customer-managed tenant key is checked by
// one unwrap of its customer share. Its platform share was unwrapped when
// the key was derived and is reused: no call to the platform root key.
// (A key used within a sixteenth of the interval of its check is checked
// ahead of time in the background: refresh_test.go.)
func TestCheckInterval(t *testing.T) {
	f := newFixture(t)
	f.byokTenant("acme", byok.Grace)
	f.encrypt("acme", "covered", "load")
	f.cmk.ResetCalls()
	f.prk.ResetCalls()

	f.clock.Advance(checkInterval - checkInterval/16 - time.Second)
	f.encrypt("acme", "covered", "before the interval")
	byok.WaitRefreshes(f.kr)
	if n := f.cmk.Calls().Unwrap; n != 0 {
		t.Fatalf("%d unwraps before the interval elapsed, want 0", n)
	}
	f.clock.Advance(checkInterval/16 + time.Second)
	for range 100 {
		f.encrypt("acme", "covered", "at the interval")
	}
	byok.WaitRefreshes(f.kr)
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("%d unwraps when the interval elapsed, want 1", n)
	}
	if p := f.prk.Calls(); p != (kmstest.Counts{}) {
		t.Fatalf("the check called the platform root key: %+v", p)
	}
}

// A platform-managed tenant key's check re-reads its record but calls no
// provider: both of its shares are the platform root key's, unwrapped when
// the key was derived. Only BYOK tenants cost vault calls as time passes.
func TestPlatformManagedCheckMakesNoCall(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	ct := f.encrypt("acme", "plain", "load")
	f.prk.ResetCalls()
	for range 3 {
		f.clock.Advance(checkInterval)
		f.mustDecrypt("acme", "plain", ct, "load")
	}
	if p := f.prk.Calls(); p != (kmstest.Counts{}) {
		t.Fatalf("three checks of a platform-managed key called the platform root key: %+v", p)
	}
	// A forgotten key is derived again from its stored shares.
	f.kr.Forget("acme")
	f.mustDecrypt("acme", "plain", ct, "load")
	if n := f.prk.Calls().Unwrap; n != 2 {
		t.Fatalf("a forgotten key reloaded with %d platform unwraps, want 2", n)
	}
}

// A platform share re-wrapped under a new version of the platform root key
// (a platform re-key) is unwrapped once at the next check, and the key it
// derives is the same: nothing is forgotten.
func TestCheckAfterPlatformRewrap(t *testing.T) {
	f := newFixture(t)
	f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "before")
	rec, err := f.db.TenantKey(f.ctx, "acme", byok.CustomerManaged)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.prk.Unwrap(f.ctx, rec.PlatformShare)
	if err != nil {
		t.Fatal(err)
	}
	nw, err := f.prk.Wrap(f.ctx, f.prk.Rotate(f.cfg.PlatformKeyID), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.ReplacePlatformShare(f.ctx, "acme", byok.CustomerManaged, rec.Epoch, rec.PlatformShare.KeyID, nw); err != nil {
		t.Fatal(err)
	}
	f.prk.ResetCalls()
	f.clock.Advance(checkInterval)
	f.mustDecrypt("acme", "covered", ct, "before")
	if n := f.prk.Calls().Unwrap; n != 1 {
		t.Fatalf("%d platform unwraps at the check after the re-wrap, want 1", n)
	}
	f.clock.Advance(checkInterval)
	f.mustDecrypt("acme", "covered", ct, "before")
	if n := f.prk.Calls().Unwrap; n != 1 {
		t.Fatalf("%d platform unwraps after the next check, want still 1", n)
	}
}

// An authoritative failure revokes at once: the tenant key and its DEKs
// leave memory, covered calls fail with the reason, and the tenant's
// platform-managed scope keeps working.
func TestAuthoritativeFailureRevokesAtOnce(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	covered := f.encrypt("acme", "covered", "covered data")
	other := f.encrypt("acme", "other", "other data")

	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDisabled)
	f.clock.Advance(checkInterval)

	_, err := f.kr.Encrypt(f.ctx, "acme", "covered", []byte("x"), nil)
	var re *byok.RevokedError
	if !errors.Is(err, byok.ErrKeyRevoked) || !errors.As(err, &re) || re.Reason != kms.ReasonDisabled {
		t.Fatalf("Encrypt after revocation = %v, want a RevokedError with reason %s", err, kms.ReasonDisabled)
	}
	if !re.DetectedAt.Equal(f.clock.Now()) {
		t.Fatalf("DetectedAt = %v, want %v", re.DetectedAt, f.clock.Now())
	}
	if _, err := f.decrypt("acme", "covered", covered); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Decrypt of covered data after revocation = %v, want ErrKeyRevoked", err)
	}
	f.mustDecrypt("acme", "other", other, "other data")
	// Only the platform-managed scope's DEK is left in memory.
	if n := byok.CachedDEKs(f.kr, "acme"); n != 1 {
		t.Fatalf("%d DEKs of acme in memory after revocation, want 1 (the platform-managed scope's)", n)
	}
	// Failing closed makes no further provider call until the next check.
	f.cmk.ResetCalls()
	for range 10 {
		f.decrypt("acme", "covered", covered)
	}
	if n := f.cmk.Calls().Unwrap; n != 0 {
		t.Fatalf("revoked calls made %d unwraps, want 0", n)
	}
	if got := f.eventTypes(); !slices.Equal(got, []byok.EventType{byok.EventRevoked}) {
		t.Fatalf("events = %v, want [revoked]", got)
	}
}

// When access comes back, the next check restores service by itself.
func TestRestoresByItself(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "data")
	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDenied)
	f.clock.Advance(checkInterval)
	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Decrypt = %v, want ErrKeyRevoked", err)
	}

	f.cmk.HealKey(keyID)
	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("before the next check: Decrypt = %v, want ErrKeyRevoked still", err)
	}
	f.clock.Advance(checkInterval)
	f.mustDecrypt("acme", "covered", ct, "data")
	f.mustDecrypt("acme", "covered", f.encrypt("acme", "covered", "new"), "new")
	if got := f.eventTypes(); !slices.Equal(got, []byok.EventType{byok.EventRevoked, byok.EventRestored}) {
		t.Fatalf("events = %v, want [revoked restored]", got)
	}
}

// Under Grace, a transient failure keeps serving from cache up to max
// staleness, then fails closed; retries back off in between.
func TestTransientFailureServesUntilMaxStaleness(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "data")
	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
	f.cmk.ResetCalls()

	f.clock.Advance(checkInterval)
	for range 50 {
		f.mustDecrypt("acme", "covered", ct, "data") // served from cache
	}
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("%d unwraps for 50 calls right after a failure, want 1 (backoff)", n)
	}
	f.clock.Advance(maxStaleness - checkInterval - time.Second)
	f.mustDecrypt("acme", "covered", ct, "data")
	f.clock.Advance(2 * time.Second)
	_, err := f.decrypt("acme", "covered", ct)
	var ue *byok.UnavailableError
	if !errors.Is(err, byok.ErrKeyUnavailable) || !errors.As(err, &ue) {
		t.Fatalf("Decrypt past max staleness = %v, want an UnavailableError", err)
	}
	if !errors.Is(err, kms.ErrTransient) {
		t.Fatalf("the provider's error is not reachable from %v", err)
	}
	if _, err := f.kr.Encrypt(f.ctx, "acme", "covered", []byte("x"), nil); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("Encrypt past max staleness = %v, want ErrKeyUnavailable", err)
	}
	if n := byok.CachedDEKs(f.kr, "acme"); n != 0 {
		t.Fatalf("%d DEKs of acme still in memory past max staleness, want 0", n)
	}
	f.cmk.HealKey(keyID)
	f.clock.Advance(checkInterval)
	f.mustDecrypt("acme", "covered", ct, "data")
	want := []byok.EventType{byok.EventDegraded}
	if got := f.eventTypes(); len(got) < 3 || got[0] != want[0] || got[len(got)-2] != byok.EventUnavailable || got[len(got)-1] != byok.EventRestored {
		t.Fatalf("events = %v, want degraded ... unavailable, restored", got)
	}
}

// Under Strict, the first transient failure fails closed.
func TestStrictPolicyFailsClosedAtOnce(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Strict)
	ct := f.encrypt("acme", "covered", "data")
	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonThrottled)
	f.clock.Advance(checkInterval)
	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("Decrypt under Strict = %v, want ErrKeyUnavailable", err)
	}
	// Switching to Grace does not resurrect dropped material without a check.
	if err := f.kr.SetPolicy(f.ctx, "acme", byok.Grace); err != nil {
		t.Fatal(err)
	}
	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("Decrypt after switching to Grace = %v, want ErrKeyUnavailable until a check succeeds", err)
	}
	f.cmk.HealKey(keyID)
	f.clock.Advance(checkInterval)
	f.mustDecrypt("acme", "covered", ct, "data")
}

// The policy is per tenant: the same outage fails one tenant closed and
// keeps the other served.
func TestPolicyIsPerTenant(t *testing.T) {
	f := newFixture(t)
	f.byokTenant("strict", byok.Strict)
	f.byokTenant("grace", byok.Grace)
	s := f.encrypt("strict", "covered", "s")
	g := f.encrypt("grace", "covered", "g")
	f.cmk.Fail(kms.Transient, kms.ReasonTimeout)
	f.clock.Advance(checkInterval)
	if _, err := f.decrypt("strict", "covered", s); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("strict tenant: %v, want ErrKeyUnavailable", err)
	}
	f.mustDecrypt("grace", "covered", g, "g")
}

// Concurrent calls that need the same tenant key share one provider call.
func TestOneProviderCallInFlightPerKey(t *testing.T) {
	f := newFixture(t, func(c *byok.Config) { c.DEKMaxMessages = 1 })
	f.byokTenant("acme", byok.Grace)
	const n = 16
	var cts [][]byte // each under its own DEK, all under one tenant key
	for range n {
		cts = append(cts, f.encrypt("acme", "covered", "data"))
	}

	fresh, err := byok.New(f.cfg) // a new process: nothing cached
	if err != nil {
		t.Fatal(err)
	}
	f.cmk.ResetCalls()
	gate := f.cmk.Block()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, ct := range cts {
		wg.Go(func() {
			_, err := fresh.Decrypt(f.ctx, "acme", "covered", ct, []byte("aad"))
			errs <- err
		})
	}
	<-gate.Entered() // the first unwrap is held
	// The others must queue behind it: wait until they all wait in the
	// keyring, or one of them reaches the provider too.
	for parked := 0; parked < n-1; parked = goroutinesIn("byok.(*Keyring).ensure") {
		select {
		case <-gate.Entered():
			t.Fatal("a second unwrap of the same tenant key reached the provider while the first was in flight")
		default:
			runtime.Gosched()
		}
	}
	gate.Release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := f.cmk.Calls().Unwrap; c != 1 {
		t.Fatalf("%d concurrent cold decrypts made %d customer unwraps, want 1", n, c)
	}
}

// A DEK retires after its message budget and after its age; old
// ciphertexts stay readable.
func TestDEKRetirement(t *testing.T) {
	f := newFixture(t, func(c *byok.Config) { c.DEKMaxMessages = 3; c.DEKMaxAge = 2 * time.Hour })
	f.tenant("acme", byok.Grace)
	var cts [][]byte
	for i := range 4 {
		cts = append(cts, f.encrypt("acme", "chat", string(rune('a'+i))))
	}
	first := dekOf(t, cts[0])
	for i := 1; i < 3; i++ {
		if dekOf(t, cts[i]) != first {
			t.Fatalf("message %d changed DEK before the budget of 3", i)
		}
	}
	second := dekOf(t, cts[3])
	if second == first {
		t.Fatal("the 4th message used a spent DEK")
	}
	f.clock.Advance(2 * time.Hour)
	if third := dekOf(t, f.encrypt("acme", "chat", "late")); third == second {
		t.Fatal("a DEK older than DEKMaxAge was used")
	}
	for i, ct := range cts {
		f.mustDecrypt("acme", "chat", ct, string(rune('a'+i)))
	}
}

// Reencrypt moves a ciphertext onto the current DEK without exposing the
// plaintext.
func TestReencrypt(t *testing.T) {
	f := newFixture(t, func(c *byok.Config) { c.DEKMaxMessages = 1 })
	f.tenant("acme", byok.Grace)
	old := f.encrypt("acme", "chat", "payload")
	re, err := f.kr.Reencrypt(f.ctx, "acme", "chat", old, []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if dekOf(t, re) == dekOf(t, old) {
		t.Fatal("Reencrypt kept the spent DEK")
	}
	f.mustDecrypt("acme", "chat", re, "payload")
	if _, err := f.kr.Reencrypt(f.ctx, "acme", "chat", old, []byte("wrong")); !errors.Is(err, byok.ErrDecrypt) {
		t.Fatalf("Reencrypt with wrong aad = %v, want ErrDecrypt", err)
	}
	if _, err := f.kr.Reencrypt(f.ctx, "globex", "chat", old, []byte("aad")); !errors.Is(err, byok.ErrUnknownTenant) && !errors.Is(err, byok.ErrDecrypt) {
		t.Fatalf("Reencrypt as another tenant = %v, want an error", err)
	}
}

// Every wrapped share records the exact key version, and a rotation of the
// customer's key does not break existing tenant keys.
func TestSharesRecordVersionedKeyIDs(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "before rotation")
	rec, err := f.db.TenantKey(f.ctx, "acme", byok.CustomerManaged)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CustomerShare.KeyID != keyID+"/v1" || !strings.HasPrefix(rec.PlatformShare.KeyID, f.cfg.PlatformKeyID+"/v") {
		t.Fatalf("shares name %q and %q, want versioned ids", rec.CustomerShare.KeyID, rec.PlatformShare.KeyID)
	}
	f.cmk.Rotate(keyID)
	f.clock.Advance(checkInterval) // the check unwraps under the recorded v1
	f.mustDecrypt("acme", "covered", ct, "before rotation")
	fresh, _ := byok.New(f.cfg)
	if _, err := fresh.Decrypt(f.ctx, "acme", "covered", ct, []byte("aad")); err != nil {
		t.Fatalf("a new process cannot read data after the key rotated: %v", err)
	}
}

func TestCreateTenantErrors(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	if err := f.kr.CreateTenant(f.ctx, "acme", byok.Grace); !errors.Is(err, byok.ErrExists) {
		t.Fatalf("second CreateTenant = %v, want ErrExists", err)
	}
	if err := f.kr.CreateTenant(f.ctx, "x", byok.Policy(9)); !errors.Is(err, byok.ErrInvalidInput) {
		t.Fatalf("CreateTenant with policy 9 = %v, want ErrInvalidInput", err)
	}
	f.prk.Fail(kms.Transient, kms.ReasonUnavailable)
	if err := f.kr.CreateTenant(f.ctx, "globex", byok.Grace); !errors.Is(err, kms.ErrTransient) {
		t.Fatalf("CreateTenant with the platform key down = %v, want the provider's error", err)
	}
	f.prk.Heal()
	if _, err := f.db.Tenant(f.ctx, "globex"); !errors.Is(err, byok.ErrNotFound) {
		t.Fatalf("a failed CreateTenant left tenant globex behind: %v", err)
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	if _, err := byok.New(byok.Config{}); err == nil || !strings.Contains(err.Error(), "PlatformKMS") {
		t.Fatalf("New(empty config) = %v, want an error naming what is missing", err)
	}
}

// goroutinesIn counts the goroutines whose stack is in function fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// Callers that share a DEK load do not share the first caller's fate: when
// it gives up (its ctx is cancelled), the load goes on for the others.
func TestCancelledCallerDoesNotFailSharedDEKLoad(t *testing.T) {
	f := newFixture(t)
	f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "data")
	fresh, err := byok.New(f.cfg) // a new process: nothing cached
	if err != nil {
		t.Fatal(err)
	}
	gate := f.cmk.Block()
	defer gate.Release()
	first, cancel := context.WithCancel(f.ctx)
	errs := make(chan error, 2)
	go func() {
		_, err := fresh.Decrypt(first, "acme", "covered", ct, []byte("aad"))
		errs <- err
	}()
	<-gate.Entered() // the first caller's load waits for the tenant key's unwrap
	go func() {
		_, err := fresh.Decrypt(f.ctx, "acme", "covered", ct, []byte("aad"))
		errs <- err
	}()
	for goroutinesIn("byok.(*Keyring).dekByID") < 2 { // the second caller joined the load
		runtime.Gosched()
	}
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller got %v, want context.Canceled", err)
	}
	gate.Release()
	if err := <-errs; err != nil {
		t.Fatalf("the other caller of the shared load failed with the first caller's cancellation: %v", err)
	}
}
