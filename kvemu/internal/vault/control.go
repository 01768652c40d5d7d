package vault

import (
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"
)

// SetLatency delays every request to vault by fixed plus a uniformly random
// duration below jitter.
func (s *Service) SetLatency(vault string, fixed, jitter time.Duration) error {
	if fixed < 0 || jitter < 0 {
		return fmt.Errorf("%w: latency %v and jitter %v must not be negative", ErrInvalid, fixed, jitter)
	}
	return s.withVault(vault, func(v *vaultState) { v.latency, v.jitter = fixed, jitter })
}

// SetThrottle sets vault's throttle and refills its buckets.
func (s *Service) SetThrottle(vault string, t Throttle) error {
	if t.Mode == ThrottleCustom && (t.Rate <= 0 || t.Burst < 1) {
		return fmt.Errorf("%w: custom throttle needs Rate > 0 and Burst >= 1, got %v and %d", ErrInvalid, t.Rate, t.Burst)
	}
	if t.Mode < ThrottleOff || t.Mode > ThrottleCustom {
		return fmt.Errorf("%w: unknown throttle mode %d", ErrInvalid, t.Mode)
	}
	return s.withVault(vault, func(v *vaultState) { v.throttle, v.buckets = t, nil })
}

// InjectFault queues a fault on vault's next requests. Faults apply in the
// order injected; the first one matching a request's operation is used.
func (s *Service) InjectFault(vault string, f Fault) error {
	if !f.Reset && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("%w: fault status %d is not an HTTP error status (400-599); set Reset to drop connections", ErrInvalid, f.Status)
	}
	if f.Count < 0 {
		return fmt.Errorf("%w: fault count %d is negative", ErrInvalid, f.Count)
	}
	f.Ops = slices.Clone(f.Ops)
	return s.withVault(vault, func(v *vaultState) { v.faults = append(v.faults, &f) })
}

// ClearFaults removes every fault queued on vault.
func (s *Service) ClearFaults(vault string) error {
	return s.withVault(vault, func(v *vaultState) { v.faults = nil })
}

// SetOffline cuts vault off the network (every request's connection is
// dropped before any answer) or reconnects it.
func (s *Service) SetOffline(vault string, offline bool) error {
	return s.withVault(vault, func(v *vaultState) { v.offline = offline })
}

func (s *Service) withVault(vault string, f func(*vaultState)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	f(v)
	return nil
}

// Calls returns the request counters, sorted by vault, operation, principal
// and status.
func (s *Service) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, 0, len(s.calls))
	for k, n := range s.calls {
		out = append(out, Call{Vault: k.vault, Op: k.op, Principal: k.principal, Status: k.status, N: n})
	}
	slices.SortFunc(out, func(a, b Call) int {
		return cmpAll(strings.Compare(a.Vault, b.Vault), strings.Compare(string(a.Op), string(b.Op)),
			strings.Compare(a.Principal, b.Principal), a.Status-b.Status)
	})
	return out
}

func cmpAll(cs ...int) int {
	for _, c := range cs {
		if c != 0 {
			return c
		}
	}
	return 0
}

// CallCount sums the counters of vault and op over every principal whose
// status is status (0: any status).
func (s *Service) CallCount(vault string, op Op, status int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k, c := range s.calls {
		if strings.EqualFold(k.vault, vault) && k.op == op && (status == 0 || k.status == status) {
			n += c
		}
	}
	return n
}

// ResetCalls zeroes every counter.
func (s *Service) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

func (s *Service) count(vault string, op Op, principal string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[callKey{vault: vault, op: op, principal: principal, status: status}]++
}

func (s *Service) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return mrand.N(d)
}
