package vault

import (
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ThrottleMode selects how a vault throttles.
type ThrottleMode int

const (
	// ThrottleOff never answers 429 (the default).
	ThrottleOff ThrottleMode = iota
	// ThrottleDocumented applies Key Vault's documented per-vault limits
	// per 10 seconds: 4,000 software / 2,000 HSM operations on RSA-2048 and
	// EC keys, 1,000 / 500 on RSA-3072, 500 / 250 on RSA-4096, and 20
	// software / 10 HSM key creations. An operation on a bigger key costs
	// proportionally more of the vault's budget (an RSA-4096 HSM operation
	// costs 16 RSA-2048 software ones).
	ThrottleDocumented
	// ThrottleCustom allows Rate requests per second with bursts of Burst.
	ThrottleCustom
)

// Throttle configures a vault's token bucket.
type Throttle struct {
	Mode  ThrottleMode
	Rate  float64 // ThrottleCustom: requests per second
	Burst int     // ThrottleCustom: bucket size (at least 1)
	// RetryAfter, when positive, is sent as a Retry-After header (in whole
	// seconds, rounded up) with every 429. Azure sends none.
	RetryAfter time.Duration
}

// bucket is a token bucket refilled continuously from the Service clock.
type bucket struct {
	tokens, capacity, rate float64
	last                   time.Time
}

func (b *bucket) take(cost float64, now time.Time) bool {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = math.Min(b.capacity, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < cost {
		return false
	}
	b.tokens -= cost
	return true
}

// documentedLimit is Key Vault's per-10-second limit for one class of
// operation on a key of type kty and size bits.
func documentedLimit(create, hsm bool, size int) float64 {
	if create {
		if hsm {
			return 10
		}
		return 20
	}
	limit := 4000.0
	switch {
	case size >= 4096:
		limit = 500
	case size >= 3072:
		limit = 1000
	}
	if hsm {
		limit /= 2
	}
	return limit
}

// admit takes the cost of one op on a key (nil: none yet) from v's bucket,
// reporting false when the vault is over its limit.
func (v *vaultState) admit(op Op, key *keyVersion, now time.Time) bool {
	t := v.throttle
	if t.Mode == ThrottleOff {
		return true
	}
	if v.buckets == nil {
		v.buckets = map[string]*bucket{}
	}
	class, capacity, cost := "all", float64(max(t.Burst, 1)), 1.0
	if t.Mode == ThrottleDocumented {
		create := op == OpCreateKey || op == OpImportKey || op == OpRotateKey
		hsm, size := false, 2048
		if key != nil {
			hsm, size = key.hsm(), key.size()
		}
		class, capacity = "other", 4000.0
		if create {
			class, capacity = "create", 20
		}
		cost = capacity / documentedLimit(create, hsm, size)
	}
	b := v.buckets[class]
	if b == nil {
		rate := t.Rate
		if t.Mode == ThrottleDocumented {
			rate = capacity / 10
		}
		b = &bucket{tokens: capacity, capacity: capacity, rate: rate, last: now}
		v.buckets[class] = b
	}
	return b.take(cost, now)
}

func throttled(retryAfter time.Duration) *apiError {
	return &apiError{
		status: http.StatusTooManyRequests, code: "Throttled", retryAfter: retryAfter,
		msg: "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
	}
}

// Fault is an injected failure of a vault's next requests, applied after the
// caller is authenticated (so challenge round trips never consume it).
type Fault struct {
	// Status is the HTTP status to answer (e.g. 500, 503), with Key Vault's
	// error envelope. Ignored when Reset is set.
	Status int
	// Reset drops the connection instead of answering: an HTTP/1 connection
	// is hijacked and closed, an HTTP/2 stream is reset.
	Reset bool
	// Count is how many requests fail; 0 means every request until
	// [Service.ClearFaults].
	Count int
	// Ops limits the fault to these operations; empty means all.
	Ops []Op
}

// nextFault returns the fault that applies to op, consuming one use of it.
func (v *vaultState) nextFault(op Op) *Fault {
	for i, f := range v.faults {
		if len(f.Ops) > 0 && !slices.Contains(f.Ops, op) {
			continue
		}
		hit := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				v.faults = slices.Delete(v.faults, i, i+1)
			}
		}
		return &hit
	}
	return nil
}

func injected(status int) *apiError {
	code := strings.ReplaceAll(http.StatusText(status), " ", "")
	if code == "" {
		code = "InternalError"
	}
	return &apiError{status: status, code: code, msg: "kvemu injected this failure (Service.InjectFault)."}
}

// Call counts requests to one vault with one operation, principal and
// status.
type Call struct {
	Vault     string
	Op        Op
	Principal string // the token's oid; empty before authentication
	// Status is the HTTP status answered; 0 for a dropped connection.
	Status int
	N      int64
}

type callKey struct {
	vault, principal string
	op               Op
	status           int
}
