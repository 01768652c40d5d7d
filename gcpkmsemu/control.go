package gcpkmsemu

import (
	"context"
	"net"
	"strings"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Fault is a failure the emulator injects into calls ([Emulator.InjectFault]).
type Fault struct {
	// Methods limits the fault to these gRPC methods, by short name
	// ("Encrypt", "GetIamPolicy"); empty means every method.
	Methods []string
	// Resource limits the fault to calls on this resource or under it (the
	// request's name, parent or resource field is Resource or starts with
	// Resource + "/": one tenant's key and its versions); empty means every
	// resource.
	Resource string
	// Latency delays the call before anything else happens (the call's
	// deadline still applies: a deadline shorter than the latency ends in
	// DEADLINE_EXCEEDED). Alone, the call then proceeds.
	Latency time.Duration
	// Code, when not OK, answers the call with this status instead of
	// serving it: codes.Unavailable, codes.ResourceExhausted, or any
	// other. Message overrides the default text (Google's, for those two).
	Code    codes.Code
	Message string
	// Reset closes the call's connection (TCP RST) instead of answering;
	// the client sees UNAVAILABLE and reconnects.
	Reset bool
	// Count is how many calls the fault hits; 0 means until ClearFaults.
	Count int
}

type faultEntry struct {
	Fault
	left int // calls left; -1: unlimited
}

// InjectFault adds a fault; faults are checked in the order added, and the
// first that matches a call applies to it.
func (e *Emulator) InjectFault(f Fault) {
	left := f.Count
	if left <= 0 {
		left = -1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, &faultEntry{Fault: f, left: left})
}

// ClearFaults removes every fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
}

// Call identifies calls for the counters: the method's short name, the
// authenticated service account ("" when authentication failed or came
// after a fault) and the status code answered.
type Call struct {
	Method    string
	Principal string
	Code      codes.Code
}

// Calls returns the call counters since start or the last ResetCalls.
func (e *Emulator) Calls() map[Call]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[Call]int, len(e.calls))
	for k, v := range e.calls {
		out[k] = v
	}
	return out
}

// CallCount returns how many calls of method were answered, whatever
// their caller and status.
func (e *Emulator) CallCount(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for k, v := range e.calls {
		if k.Method == method {
			n += v
		}
	}
	return n
}

// count adds one to a counter.
func (e *Emulator) count(c Call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[c]++
}

// ResetCalls zeroes the call counters.
func (e *Emulator) ResetCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = map[Call]int{}
}

type callKey struct{}

// callInfo carries what the inner interceptor learns back to observe.
type callInfo struct{ principal string }

// observe is the outer interceptor: it applies faults, then counts and
// logs the call with its status.
func (e *Emulator) observe(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	ci := &callInfo{}
	start := time.Now()
	resp, err := e.applyFault(ctx, method, resourceOf(req))
	if err == nil {
		resp, err = handler(context.WithValue(ctx, callKey{}, ci), req)
	}
	code := status.Code(err)
	e.mu.Lock()
	e.calls[Call{Method: method, Principal: ci.principal, Code: code}]++
	e.mu.Unlock()
	e.log.Info("call", "method", method, "principal", ci.principal, "code", code.String(), "took", time.Since(start))
	return resp, err
}

// applyFault runs the first matching fault: nil, nil means "serve the
// call".
func (e *Emulator) applyFault(ctx context.Context, method, resource string) (any, error) {
	e.mu.Lock()
	var f *Fault
	for i, fe := range e.faults {
		if !matches(fe.Methods, method) || !under(resource, fe.Resource) {
			continue
		}
		ff := fe.Fault
		f = &ff
		if fe.left > 0 {
			fe.left--
			if fe.left == 0 {
				e.faults = append(e.faults[:i:i], e.faults[i+1:]...)
			}
		}
		break
	}
	var conn net.Conn
	if f != nil && f.Reset {
		if p, ok := peer.FromContext(ctx); ok {
			conn = e.conns[p.Addr.String()]
		}
	}
	e.mu.Unlock()
	if f == nil {
		return nil, nil
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	switch {
	case f.Reset:
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		if conn != nil {
			conn.Close()
		}
		return nil, status.Error(codes.Unavailable, "gcpkmsemu: connection reset by an injected fault")
	case f.Code != codes.OK:
		return nil, faultStatus(f.Code, f.Message)
	}
	return nil, nil
}

// under reports whether resource is prefix or below it ("" is above all).
func under(resource, prefix string) bool {
	return prefix == "" || resource == prefix || strings.HasPrefix(resource, strings.TrimSuffix(prefix, "/")+"/")
}

// resourceOf returns the resource a request names: its name, parent or
// (IAM) resource field.
func resourceOf(req any) string {
	switch r := req.(type) {
	case interface{ GetName() string }:
		return r.GetName()
	case interface{ GetParent() string }:
		return r.GetParent()
	case interface{ GetResource() string }:
		return r.GetResource()
	case interface{ GetCryptoKey() *kmspb.CryptoKey }:
		return r.GetCryptoKey().GetName()
	case interface {
		GetCryptoKeyVersion() *kmspb.CryptoKeyVersion
	}:
		return r.GetCryptoKeyVersion().GetName()
	}
	return ""
}

func matches(methods []string, method string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, m := range methods {
		if m == method {
			return true
		}
	}
	return false
}

// faultStatus is the answer of an injected fault: Google's texts and
// details for UNAVAILABLE and RESOURCE_EXHAUSTED unless msg is given.
func faultStatus(code codes.Code, msg string) error {
	switch {
	case code == codes.Unavailable && msg == "":
		return status.Error(code, "The service is currently unavailable.")
	case code == codes.ResourceExhausted && msg == "":
		st := status.New(code, "Quota exceeded for quota metric 'Cryptographic requests' and limit 'Cryptographic requests per minute' of service 'cloudkms.googleapis.com'.")
		return withDetails(st,
			errorInfo("RATE_LIMIT_EXCEEDED", map[string]string{
				"service": Service, "quota_metric": "cloudkms.googleapis.com/crypto_requests", "quota_limit": "CryptoRequestsPerMinutePerProject",
			}),
			&errdetails.Help{Links: []*errdetails.Help_Link{{Description: "Request a higher quota limit.", Url: "https://cloud.google.com/docs/quotas/help/request_increase"}}})
	case msg == "":
		msg = "gcpkmsemu: injected fault"
	}
	return status.Error(code, msg)
}
