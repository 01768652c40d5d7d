package azurekv

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kvemu"
)

// resetBudgets forgets every vault's budget and hold: every emulator
// serves the same host names, and a hold left by one test's 429 would
// hold the next test's calls.
func resetBudgets() { budgets.Clear() }

func throttled(retryAfter string) *http.Response {
	h := http.Header{}
	h.Set("Retry-After", retryAfter)
	return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h}
}

// TestHoldRules: a 429 with Retry-After holds the vault; a caller whose
// deadline comes first fails at once (transient, throttled, with the time
// left); when the hold ends one probe goes and the others wait for its
// answer, which holds them again (429) or lets them through.
func TestHoldRules(t *testing.T) {
	b := newBucket(budgetCapacity, budgetWindow, time.Now)
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(bg, time.Minute) }

	// Not held: admitted at once; a 429 without Retry-After holds nothing.
	done, err := b.admit(bg, "v.vault.azure.net")
	if err != nil {
		t.Fatal(err)
	}
	done(&http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}})
	if !b.heldUntil().IsZero() {
		t.Fatal("a 429 without Retry-After held the vault")
	}
	done(throttled("3600"))
	if until := b.heldUntil(); until.Before(time.Now().Add(59 * time.Minute)) {
		t.Fatalf("held until %v after Retry-After: 3600", until)
	}
	ctx, cancel := short()
	defer cancel()
	_, err = b.admit(ctx, "v.vault.azure.net")
	var ke *kms.Error
	if !errors.As(err, &ke) || ke.Class != kms.Transient || ke.Reason != kms.ReasonThrottled || ke.RetryAfter < 59*time.Minute {
		t.Fatalf("admit during an hour's hold with a minute to go: %v", err)
	}
	if Classify("unwrap", "k", err) != ke {
		t.Error("Classify does not pass the hold's *kms.Error through")
	}

	// The hold ends: the first caller probes, a second waits for it.
	b.hold.mu.Lock()
	b.hold.until = time.Now().Add(-time.Millisecond)
	b.hold.mu.Unlock()
	probe, err := b.admit(bg, "v.vault.azure.net")
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		ctx, cancel := short()
		defer cancel()
		_, err := b.admit(ctx, "v.vault.azure.net")
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("a second caller went while the probe was out: %v", err)
	case <-time.After(20 * time.Millisecond): // (a failure shows as a passed call; the pass does not depend on it)
	}
	probe(throttled("3600")) // throttled again: the second caller is held again, past its deadline
	if err := <-second; !errors.As(err, &ke) || ke.Reason != kms.ReasonThrottled {
		t.Fatalf("after a throttled probe: %v", err)
	}

	// A probe answered otherwise ends the hold for everyone.
	b.hold.mu.Lock()
	b.hold.until = time.Now().Add(-time.Millisecond)
	b.hold.mu.Unlock()
	probe, err = b.admit(bg, "v.vault.azure.net")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := b.admit(bg, "v.vault.azure.net")
		second <- err
	}()
	probe(&http.Response{StatusCode: http.StatusOK})
	if err := <-second; err != nil {
		t.Fatalf("after a successful probe: %v", err)
	}
	if !b.heldUntil().IsZero() {
		t.Error("the hold outlived a successful probe")
	}
}

// TestRetryAfterShared: in a storm of 429s with Retry-After, many callers
// of one vault make about one request per Retry-After between them, not
// one each; when the storm ends they all get through.
func TestRetryAfterShared(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config(contoso+"/keys/cmk")) // no SDK retries: every try is ours
	retryAfterStorm(t, e, func(int) *Provider { return p })
}

// TestRetryAfterSharedByProviders: as TestRetryAfterShared, but each
// caller has a Provider of its own for the vault, as in production, where
// each tenant's settings, the health monitor, the data path and the jobs
// build their own (lifecycle). The hold is the vault's (budgetFor), not
// the provider's: a 429 one provider gets holds the others, and the storm
// costs the same one request per Retry-After as with one provider, not one
// per provider.
func TestRetryAfterSharedByProviders(t *testing.T) {
	e := newEnv(t)
	ps := make([]*Provider, stormCallers)
	for i := range ps {
		ps[i] = e.provider(t, e.config(contoso+"/keys/cmk"))
	}
	if ps[0] == ps[1] {
		t.Fatal("New returned the same Provider twice")
	}
	retryAfterStorm(t, e, func(i int) *Provider { return ps[i] })
}

const stormCallers = 8

// retryAfterStorm runs stormCallers callers, caller i unwrapping with
// provider(i), through a 3 s storm of 429s with Retry-After: 1 on the
// vault "contoso", and checks that the vault saw about one request per
// second between them, then that every caller got through when the storm
// ended.
func retryAfterStorm(t *testing.T, e *env, provider func(i int) *Provider) {
	t.Helper()
	cmk := contoso + "/keys/cmk"
	var w kms.Wrapped
	for i := range stormCallers { // every provider signs in before the storm
		w = must(provider(i).Wrap(bg, cmk, []byte("share")))
	}
	// The emulator's throttle refills on its own (fake, still) clock: at
	// 0.001/s with a burst of one, everything is refused until it is lifted.
	must(0, e.emu.SetThrottle("contoso", kvemu.Throttle{Mode: kvemu.ThrottleCustom, Rate: 0.001, Burst: 1, RetryAfter: time.Second}))
	e.emu.ResetCalls()
	start := time.Now()
	// The first unwrap takes the burst, the second is refused and holds.
	if _, err := provider(0).Unwrap(bg, w); err != nil {
		t.Fatal(err)
	}
	if _, err := provider(1).Unwrap(bg, w); kms.ReasonOf(err) != kms.ReasonThrottled {
		t.Fatalf("unwrap on an empty throttle: %v", err)
	}
	const storm = 3 * time.Second
	var (
		wg           sync.WaitGroup
		calls, fails atomic.Int64
		over         atomic.Bool
	)
	for i := range stormCallers {
		p := provider(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				calls.Add(1)
				_, err := p.Unwrap(bg, w)
				if err == nil && over.Load() {
					return
				}
				if err != nil {
					fails.Add(1)
				}
			}
		}()
	}
	time.Sleep(storm)
	must(0, e.emu.SetThrottle("contoso", kvemu.Throttle{Mode: kvemu.ThrottleOff}))
	over.Store(true)
	stormEnd := time.Since(start)
	wg.Wait()
	n429 := e.emu.CallCount("contoso", kvemu.OpUnwrapKey, http.StatusTooManyRequests)
	n200 := e.emu.CallCount("contoso", kvemu.OpUnwrapKey, http.StatusOK)
	// One 429 per second of storm (the first one set the hold), plus a
	// probe that may straddle the lift.
	if limit := int64(stormEnd/time.Second) + 2; n429 > limit || n429 < 2 {
		t.Errorf("%d callers over a %v storm with Retry-After: 1 made %d requests answered 429, want 2 to %d (%d calls, %d failed)",
			stormCallers, stormEnd.Round(time.Millisecond), n429, limit, calls.Load(), fails.Load())
	}
	if n200 < stormCallers {
		t.Errorf("after the storm %d unwraps succeeded, want at least one per caller (%d)", n200, stormCallers)
	}
	t.Logf("%d callers, %v storm: %d requests answered 429, %d answered 200, %d calls made (%d failed)",
		stormCallers, stormEnd.Round(time.Millisecond), n429, n200, calls.Load(), fails.Load())
}

// TestRetryAfterHoldsTheVaultOnly: a 429 with Retry-After that one
// provider gets holds every Provider of that vault — the one that got it
// and distinct ones that never saw it fail at once, throttled, without a
// request reaching the vault — and no Provider of another vault of the
// same process, whose call goes through during the hold. The hold (an
// hour) is far longer than the calls' deadline (a minute): nothing here
// depends on timing.
func TestRetryAfterHoldsTheVaultOnly(t *testing.T) {
	e := newEnv(t)
	t.Cleanup(resetBudgets) // the hour's hold must not outlive the test
	if err := e.emu.CreateVault(kvemu.VaultConfig{Name: "northwind", TenantID: e.customer, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	must(e.emu.CreateKey("northwind", "cmk", kvemu.KeySpec{Tags: map[string]string{OwnerTagName: owner}}))
	e.grant(t, "northwind", e.app.ObjectID, kvemu.RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})
	cmk, nwk := contoso+"/keys/cmk", "https://northwind.vault.azure.net/keys/cmk"

	ps := make([]*Provider, 4) // for contoso: each signs in and learns its client first
	ws := make([]kms.Wrapped, len(ps))
	for i := range ps {
		ps[i] = e.provider(t, e.config(cmk))
		ws[i] = must(ps[i].Wrap(bg, cmk, []byte("share")))
	}
	other := e.provider(t, e.config(nwk)) // for northwind
	wo := must(other.Wrap(bg, nwk, []byte("share")))

	must(0, e.emu.SetThrottle("contoso", kvemu.Throttle{Mode: kvemu.ThrottleCustom, Rate: 0.001, Burst: 1, RetryAfter: time.Hour}))
	e.emu.ResetCalls()
	if _, err := ps[0].Unwrap(bg, ws[0]); err != nil { // takes the burst
		t.Fatal(err)
	}
	if _, err := ps[1].Unwrap(bg, ws[1]); kms.ReasonOf(err) != kms.ReasonThrottled { // 429, Retry-After: 3600
		t.Fatalf("unwrap on an empty throttle: %v", err)
	}
	if n := e.emu.CallCount("contoso", kvemu.OpUnwrapKey, http.StatusTooManyRequests); n != 1 {
		t.Fatalf("the vault answered %d unwraps with 429, want 1", n)
	}

	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	for i, p := range ps {
		_, err := p.Unwrap(ctx, ws[i])
		var ke *kms.Error
		if !errors.As(err, &ke) || ke.Class != kms.Transient || ke.Reason != kms.ReasonThrottled || ke.RetryAfter < 59*time.Minute {
			t.Errorf("provider %d of the held vault, with a minute to go: %v, want transient, throttled, retry after about an hour", i, err)
		}
	}
	// Only the burst and the 429 reached contoso: the held calls of every
	// provider, the one that got the 429 and the others, stayed here.
	if n := e.emu.CallCount("contoso", kvemu.OpUnwrapKey, 0); n != 2 {
		t.Errorf("%d unwraps reached the held vault, want 2 (the burst and the 429): providers of the vault other than the one that got the 429 are not held", n)
	}
	if !budgetFor("northwind.vault.azure.net").heldUntil().IsZero() {
		t.Error("contoso's 429 held northwind")
	}
	if _, err := other.Unwrap(ctx, wo); err != nil {
		t.Errorf("unwrap on another vault during contoso's hold: %v", err)
	}
	if n := e.emu.CallCount("northwind", kvemu.OpUnwrapKey, http.StatusOK); n != 1 {
		t.Errorf("%d unwraps reached northwind during contoso's hold, want 1", n)
	}
}
