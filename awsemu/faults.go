package awsemu

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"
)

// Fault makes the emulator fail requests instead of serving them. Faults
// apply before authentication, in the order injected; each matching
// request uses up one Count.
type Fault struct {
	// Ops are the operations the fault applies to, e.g. "Decrypt",
	// "DescribeKey", "AssumeRole", "GetCallerIdentity"; empty means all.
	Ops []string
	// Status is the HTTP status of the answer: 500 answers
	// KMSInternalException (STS: InternalFailure), 503 ServiceUnavailable
	// (STS: ServiceUnavailable). Ignored with Throttle or Reset.
	Status int
	// Throttle answers ThrottlingException "Rate exceeded" (STS:
	// Throttling), as AWS does when a request quota is exceeded.
	Throttle bool
	// Reset closes the connection without an answer (TCP RST).
	Reset bool
	// Count is how many requests fail; 0 means until [Emulator.ClearFaults].
	Count int
}

// InjectFault adds a fault.
func (e *Emulator) InjectFault(f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, &f)
}

// ClearFaults removes every fault and the latency.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
	e.latency = 0
}

// SetLatency delays every answer by d (0: none), as a distant region
// would. The delay ends early when the client gives up.
func (e *Emulator) SetLatency(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.latency = d
}

// Hold makes requests of op (e.g. "Decrypt") wait until release is
// called, or their client gives up: a test can then run a timeout or a
// concurrent change without sleeping. Requests that arrive while op is
// held count in [Emulator.Waiting].
func (e *Emulator) Hold(op string) (release func()) {
	ch := make(chan struct{})
	e.mu.Lock()
	e.holds[op] = ch
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		if e.holds[op] == ch {
			delete(e.holds, op)
		}
		e.mu.Unlock()
		close(ch)
	}
}

// Waiting returns a channel that receives the operation name of every
// request that starts waiting on a [Emulator.Hold]. Its buffer holds 64
// names; later ones are dropped when nobody reads.
func (e *Emulator) Waiting() <-chan string { return e.waiting }

// Call is one request the emulator answered, as CloudTrail would record
// it. Secrets and plaintexts are never recorded.
type Call struct {
	Service   string // "kms" or "sts"
	Op        string // e.g. "Decrypt", "AssumeRole"
	Principal string // the signer's ARN; "" if unauthenticated
	Resource  string // key ARN (KMS) or role ARN (AssumeRole)
	// EncryptionContext is the request's encryption context (KMS).
	EncryptionContext map[string]string
	UserAgent         string
	RequestID         string
	Status            int
	ErrorCode         string // "" on success
	At                time.Time
}

// Calls returns the calls answered since the start or the last
// [Emulator.ResetCalls], oldest first.
func (e *Emulator) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// CallCounts returns the number of calls per operation, failed ones
// included.
func (e *Emulator) CallCounts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.counts)
}

// ResetCalls forgets the calls and counters.
func (e *Emulator) ResetCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls, e.counts = nil, map[string]int{}
}

// maxCalls bounds the call log; older calls are dropped.
const maxCalls = 10000

func (e *Emulator) record(c Call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.At = e.now()
	e.counts[c.Op]++
	if len(e.calls) >= maxCalls {
		e.calls = e.calls[1:]
	}
	e.calls = append(e.calls, c)
}

// fault returns the fault that applies to op, using up one of its count,
// and the latency; it waits on a hold of op first.
func (e *Emulator) fault(ctx context.Context, op string) (*Fault, error) {
	e.mu.Lock()
	hold := e.holds[op]
	latency := e.latency
	e.mu.Unlock()
	if hold != nil {
		select {
		case e.waiting <- op:
		default:
		}
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, f := range e.faults {
		if len(f.Ops) > 0 && !slices.Contains(f.Ops, op) {
			continue
		}
		out := *f
		if f.Count > 0 {
			if f.Count--; f.Count == 0 {
				e.faults = slices.Delete(e.faults, i, i+1)
			}
		}
		return &out, nil
	}
	return nil, nil
}

// faultError is the answer of a fault that answers.
func faultError(f *Fault) *apiError {
	switch {
	case f.Throttle:
		return &apiError{400, "ThrottlingException", "Rate exceeded"}
	case f.Status == http.StatusServiceUnavailable:
		return &apiError{503, "ServiceUnavailableException", "Service Unavailable"}
	case f.Status >= 500:
		return &apiError{f.Status, "KMSInternalException", "An internal error occurred"}
	}
	return &apiError{f.Status, "ValidationException", fmt.Sprintf("awsemu fault with status %d", f.Status)}
}

// reset closes the request's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := underlyingTCP(conn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func underlyingTCP(c net.Conn) (*net.TCPConn, bool) {
	type netConner interface{ NetConn() net.Conn }
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v, true
		case netConner:
			c = v.NetConn()
		default:
			return nil, false
		}
	}
}
