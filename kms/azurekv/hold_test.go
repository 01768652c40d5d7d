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
	cmk := contoso + "/keys/cmk"
	p := e.provider(t, e.config(cmk)) // no SDK retries: every try is ours
	w := must(p.Wrap(bg, cmk, []byte("share")))
	// The emulator's throttle refills on its own (fake, still) clock: at
	// 0.001/s with a burst of one, everything is refused until it is lifted.
	must(0, e.emu.SetThrottle("contoso", kvemu.Throttle{Mode: kvemu.ThrottleCustom, Rate: 0.001, Burst: 1, RetryAfter: time.Second}))
	e.emu.ResetCalls()
	start := time.Now()
	// The first unwrap takes the burst, the second is refused and holds.
	if _, err := p.Unwrap(bg, w); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Unwrap(bg, w); kms.ReasonOf(err) != kms.ReasonThrottled {
		t.Fatalf("unwrap on an empty throttle: %v", err)
	}
	const callers = 8
	const storm = 3 * time.Second
	var (
		wg           sync.WaitGroup
		calls, fails atomic.Int64
		over         atomic.Bool
	)
	for range callers {
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
			callers, stormEnd.Round(time.Millisecond), n429, limit, calls.Load(), fails.Load())
	}
	if n200 < callers {
		t.Errorf("after the storm %d unwraps succeeded, want at least one per caller (%d)", n200, callers)
	}
	t.Logf("%d callers, %v storm: %d requests answered 429, %d answered 200, %d calls made (%d failed)",
		callers, stormEnd.Round(time.Millisecond), n429, n200, calls.Load(), fails.Load())
}
