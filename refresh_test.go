package byok_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

// refreshAhead is the keyring's: a sixteenth of the check interval.
const refreshAhead = checkInterval / 16

// A key used in the last sixteenth of its check interval is re-checked in
// the background: the call that starts the check is served at once, and
// once the check is back the key is valid for a new interval, so no
// caller waits for the vault at the old deadline.
func TestRefreshAheadServesAndExtends(t *testing.T) {
	f := newFixture(t)
	f.byokTenant("acme", byok.Strict)
	ct := f.encrypt("acme", "covered", "m")
	f.cmk.ResetCalls()

	f.clock.Advance(checkInterval - refreshAhead - time.Second)
	f.mustDecrypt("acme", "covered", ct, "m")
	byok.WaitRefreshes(f.kr)
	if n := f.cmk.Calls().Unwrap; n != 0 {
		t.Fatalf("%d customer unwraps before the refresh moment, want 0", n)
	}

	// Into the window: the call is served while the vault is held.
	gate := f.cmk.Block()
	f.clock.Advance(2 * time.Second)
	f.mustDecrypt("acme", "covered", ct, "m")
	f.encrypt("acme", "covered", "served while the refresh waits")
	gate.Release()
	byok.WaitRefreshes(f.kr)
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("%d customer unwraps for a refresh, want 1 (one background check for every caller)", n)
	}

	// Past the old deadline: the refreshed key serves without a call.
	f.clock.Advance(refreshAhead)
	f.mustDecrypt("acme", "covered", ct, "m")
	byok.WaitRefreshes(f.kr)
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("%d customer unwraps after the old deadline, want still 1", n)
	}
}

// A revocation that the background check finds fails the key closed at
// once, before the deadline the key had.
func TestRefreshAheadDetectsRevocationEarly(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "m")

	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDisabled)
	f.clock.Advance(checkInterval - refreshAhead/2)
	// Within the interval the cached key still serves (the rule allows
	// it), and its use starts the check that finds the revocation.
	f.mustDecrypt("acme", "covered", ct, "m")
	byok.WaitRefreshes(f.kr)
	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Decrypt after the refresh found the key disabled: %v, want ErrKeyRevoked", err)
	}
	if byok.CachedKeyMaterial(f.kr, "acme") && byok.CachedDEKs(f.kr, "acme") > 0 {
		t.Fatal("the revoked key's DEKs are still cached")
	}
}

// A key no one uses in its refresh window is not refreshed: the next use
// after its deadline checks it, as without refresh-ahead, and waits.
func TestIdleKeyIsNotRefreshed(t *testing.T) {
	f := newFixture(t)
	f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "m")
	f.cmk.ResetCalls()
	f.clock.Advance(checkInterval)
	byok.WaitRefreshes(f.kr)
	if n := f.cmk.Calls().Unwrap; n != 0 {
		t.Fatalf("%d customer unwraps for an unused key, want 0", n)
	}
	f.mustDecrypt("acme", "covered", ct, "m")
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("%d customer unwraps by the first call after the deadline, want 1", n)
	}
}

// A transient failure of the background check follows the tenant's
// policy, as a due check's does: a Grace tenant keeps being served and
// the next attempt waits for the backoff, a Strict one fails closed.
func TestRefreshAheadTransientFailure(t *testing.T) {
	for _, tc := range []struct {
		policy byok.Policy
		served bool
	}{{byok.Grace, true}, {byok.Strict, false}} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			f := newFixture(t)
			keyID := f.byokTenant("acme", tc.policy)
			ct := f.encrypt("acme", "covered", "m")
			f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
			f.cmk.ResetCalls()
			f.clock.Advance(checkInterval - refreshAhead/2)
			f.mustDecrypt("acme", "covered", ct, "m")
			byok.WaitRefreshes(f.kr)
			_, err := f.decrypt("acme", "covered", ct)
			if tc.served && err != nil {
				t.Fatalf("Grace tenant after a failed refresh: %v, want served from cache", err)
			}
			if !tc.served && !errors.Is(err, byok.ErrKeyUnavailable) {
				t.Fatalf("Strict tenant after a failed refresh: %v, want ErrKeyUnavailable", err)
			}
			byok.WaitRefreshes(f.kr)
			if n := f.cmk.Calls().Unwrap; n != 1 {
				t.Fatalf("%d customer unwraps, want 1: no second attempt before the backoff", n)
			}
		})
	}
}

// Many concurrent callers in the window start one check between them.
func TestRefreshAheadOnceForConcurrentCallers(t *testing.T) {
	f := newFixture(t)
	f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "m")
	f.cmk.ResetCalls()
	gate := f.cmk.Block()
	f.clock.Advance(checkInterval - refreshAhead/2)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				if _, err := f.decrypt("acme", "covered", ct); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	gate.Release()
	byok.WaitRefreshes(f.kr)
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("%d customer unwraps for 800 calls in the refresh window, want 1", n)
	}
}
