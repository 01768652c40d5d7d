package azurekv

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/openbyok/byok/kms"
)

// A vault that answers 429 with Retry-After holds every later request of
// the process to it — the health monitor's, the data path's checks, the
// jobs' — until the hint has passed, instead of each caller finding out
// with a 429 of its own (azcore honours Retry-After only within one call).
// When the hold ends, one request (the probe) goes to the vault; the
// others wait for its answer: another 429 with Retry-After holds them
// again, anything else lets them all through. A storm of 429s thus costs
// about one request per Retry-After, whatever the number of callers.
//
// A request held beyond its context's deadline fails at once, without
// reaching the vault, with a transient [kms.ReasonThrottled] error whose
// RetryAfter is the time left, so the keyring's backoff honours it.
//
// The hold is per vault host and lives in the host's budget ([budgetFor]);
// holdPolicy applies it to every try of every request (azcore's own
// retries included: it runs after the retry policy).

// hold is the Retry-After state of one vault host.
type hold struct {
	mu    sync.Mutex
	until time.Time     // no request before; zero when not held
	probe chan struct{} // closed when the probe in flight returns; nil if none
}

// holdPolicy applies the host's hold to every try of a request and learns
// new holds from the answers.
type holdPolicy struct{ host string }

func (p holdPolicy) Do(req *policy.Request) (*http.Response, error) {
	b := budgetFor(p.host)
	done, err := b.admit(req.Raw().Context(), p.host)
	if err != nil {
		return nil, err
	}
	resp, err := req.Next()
	done(resp)
	return resp, err
}

// admit waits until a request to the vault may be sent, and returns the
// function to call with its answer (nil when it failed). It fails at once
// when the hold outlasts ctx's deadline.
func (b *bucket) admit(ctx context.Context, host string) (func(*http.Response), error) {
	h := &b.hold
	for {
		h.mu.Lock()
		now := b.now()
		switch {
		case now.Before(h.until):
			wait := h.until.Sub(now)
			h.mu.Unlock()
			if dl, ok := ctx.Deadline(); ok && now.Add(wait).After(dl) {
				return nil, heldError(host, wait)
			}
			if err := sleepCtx(ctx, wait); err != nil {
				return nil, err
			}
		case h.probe != nil:
			ch := h.probe
			h.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case !h.until.IsZero():
			// The hold has passed: this request probes the vault alone.
			ch := make(chan struct{})
			h.probe = ch
			h.mu.Unlock()
			return func(resp *http.Response) {
				held := b.observe(resp)
				h.mu.Lock()
				if !held {
					h.until = time.Time{}
				}
				h.probe = nil
				h.mu.Unlock()
				close(ch)
			}, nil
		default:
			h.mu.Unlock()
			return func(resp *http.Response) { b.observe(resp) }, nil
		}
	}
}

// observe holds the vault if resp is a 429 with Retry-After, and reports
// whether it did.
func (b *bucket) observe(resp *http.Response) bool {
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		return false
	}
	d := retryAfterHint(resp)
	if d <= 0 {
		return false
	}
	b.holdFor(d)
	return true
}

// holdFor holds the vault for d from now (a longer hold already set
// stays).
func (b *bucket) holdFor(d time.Duration) {
	h := &b.hold
	h.mu.Lock()
	defer h.mu.Unlock()
	if until := b.now().Add(d); until.After(h.until) {
		h.until = until
	}
}

// heldUntil returns the end of the vault's hold; zero if it is not held.
func (b *bucket) heldUntil() time.Time {
	h := &b.hold
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.until
}

// retryAfterHint reads Retry-After (seconds or an HTTP date) or the
// millisecond forms some Azure services send.
func retryAfterHint(resp *http.Response) time.Duration {
	for _, name := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v := resp.Header.Get(name); v != "" {
			if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
				return time.Duration(ms) * time.Millisecond
			}
		}
	}
	return retryAfter(resp)
}

// heldError is the error of a request the hold kept from the vault:
// transient and throttled, with the time left as RetryAfter. azcore does
// not retry it (NonRetriable); Classify passes the *kms.Error through.
func heldError(host string, wait time.Duration) error {
	return nonRetriable{ke: &kms.Error{Op: "call", KeyID: "https://" + host, Class: kms.Transient, Reason: kms.ReasonThrottled, RetryAfter: wait,
		Err: fmt.Errorf("the vault answered 429 with Retry-After: held for %v more, beyond the call's deadline", wait.Round(time.Millisecond))}}
}

type nonRetriable struct{ ke *kms.Error }

func (e nonRetriable) Error() string { return e.ke.Error() }
func (e nonRetriable) Unwrap() error { return e.ke }
func (nonRetriable) NonRetriable()   {}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
