package byok_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

// TestCheckCustomerKey: the monitor's check costs one customer unwrap
// and no platform call, none within the interval after any check, and
// applies the keyring's rules: a revocation fails the data closed, a
// restoration brings it back; a transient failure of a tenant with no
// cached material is only recorded (the data call still tries); a check
// of cached material keeps it valid.
func TestCheckCustomerKey(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("t1", byok.Grace)
	calls := func(what string, customer, platform int64) {
		t.Helper()
		c, p := f.cmk.Calls(), f.prk.Calls()
		if c.Unwrap != customer || p.Unwrap+p.Wrap != platform {
			t.Fatalf("%s: %d customer unwraps and %d platform calls, want %d and %d", what, c.Unwrap, p.Unwrap+p.Wrap, customer, platform)
		}
		f.cmk.ResetCalls()
		f.prk.ResetCalls()
	}
	check := func(wantCalled bool, want byok.KeyState) {
		t.Helper()
		h, called, err := f.kr.CheckCustomerKey(f.ctx, "t1", f.clock.Now().Add(-checkInterval))
		if err != nil || called != wantCalled || h.State != want {
			t.Fatalf("CheckCustomerKey: %+v called %v, %v; want called %v, %s", h, called, err, wantCalled, want)
		}
	}
	f.cmk.ResetCalls()
	f.prk.ResetCalls()

	// Nothing cached: one customer unwrap, the material left to the data path.
	check(true, byok.StateHealthy)
	calls("a check of an uncached key", 1, 0)
	check(false, byok.StateHealthy)
	calls("a second check within the interval", 0, 0)
	ct := f.encrypt("t1", "covered", "m")
	calls("the first data call derives the key", 1, 1)

	// Cached: the monitor's check keeps the material valid for the data path.
	f.clock.Advance(checkInterval)
	check(true, byok.StateHealthy)
	calls("a check of a cached key", 1, 0)
	f.mustDecrypt("t1", "covered", ct, "m")
	calls("a data call after the monitor's check", 0, 0)

	// Revoked: the data fails closed; restored: it comes back.
	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDisabled)
	f.clock.Advance(checkInterval)
	check(true, byok.StateRevoked)
	if _, err := f.decrypt("t1", "covered", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Decrypt after the monitor saw a revocation: %v", err)
	}
	f.cmk.HealKey(keyID)
	f.clock.Advance(checkInterval)
	check(true, byok.StateHealthy)
	f.mustDecrypt("t1", "covered", ct, "m")
	if ev := f.eventTypes(); !slices.Contains(ev, byok.EventRevoked) || !slices.Contains(ev, byok.EventRestored) {
		t.Fatalf("events: %v", ev)
	}

	// A transient failure with no material cached is recorded, and the
	// next data call still tries the vault (and succeeds).
	f.kr.Forget("t1")
	f.cmk.Fail(kms.Transient, kms.ReasonUnavailable)
	f.clock.Advance(checkInterval)
	check(true, byok.StateUnavailable)
	f.cmk.Heal()
	f.cmk.ResetCalls()
	f.mustDecrypt("t1", "covered", ct, "m")
	if c := f.cmk.Calls(); c.Unwrap != 1 {
		t.Fatalf("the data call after a failed check of an uncached key made %d customer unwraps, want 1", c.Unwrap)
	}

	// A tenant with no customer-managed key.
	f.tenant("t2", byok.Grace)
	if _, _, err := f.kr.CheckCustomerKey(f.ctx, "t2", time.Time{}); !errors.Is(err, byok.ErrNotFound) {
		t.Fatalf("CheckCustomerKey of a platform-managed tenant: %v", err)
	}
	// Warm loads a key as the first data call would.
	f.kr.Forget("t1")
	f.cmk.ResetCalls()
	f.prk.ResetCalls()
	if err := f.kr.Warm(f.ctx, "t1", byok.CustomerManaged); err != nil {
		t.Fatal(err)
	}
	calls("Warm", 1, 1)
	f.mustDecrypt("t1", "covered", ct, "m")
	calls("a data call after Warm", 0, 0)
}
