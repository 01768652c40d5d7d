package byok_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

// holdAfterUnwrap passes calls to a provider; while armed, the next
// Unwrap is held after the provider answered, until released.
type holdAfterUnwrap struct {
	kms.Provider
	armed    atomic.Bool
	entered  chan struct{}
	released chan struct{}
}

func (h *holdAfterUnwrap) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	pt, err := h.Provider.Unwrap(ctx, w)
	if h.armed.CompareAndSwap(true, false) {
		h.entered <- struct{}{}
		<-h.released
	}
	return pt, err
}

// A check that started before a revocation and ends after a later check
// saw the revocation must not bring the key back: the newest check wins.
func TestStaleCheckDoesNotUndoRevocation(t *testing.T) {
	var hold *holdAfterUnwrap
	f := newFixture(t, func(c *byok.Config) {
		hold = &holdAfterUnwrap{entered: make(chan struct{}), released: make(chan struct{})}
		c.CustomerKMS = func(context.Context, string) (kms.Provider, error) { return hold, nil }
	})
	hold.Provider = f.cmk
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "covered data")
	f.clock.Advance(checkInterval) // the next call checks the key

	hold.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := f.decrypt("acme", "covered", ct)
		done <- err
	}()
	<-hold.entered // its check read the customer share before the revocation

	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDisabled)
	hs, err := f.kr.Check(f.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Kind == byok.CustomerManaged && h.State != byok.StateRevoked {
			t.Fatalf("Check after the revocation: customer key %s, want %s", h.State, byok.StateRevoked)
		}
	}
	close(hold.released)
	<-done

	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Decrypt after the revocation was detected = %v, want ErrKeyRevoked", err)
	}
	for _, h := range f.kr.Health("acme") {
		if h.Kind == byok.CustomerManaged && h.State != byok.StateRevoked {
			t.Fatalf("customer key %s after a stale check ended, want %s", h.State, byok.StateRevoked)
		}
	}
}

// A DEK loaded while Forget runs must not stay cached under the tenant key
// entry Forget dropped: that entry no longer gets policy changes, so the
// DEK would keep the old policy.
func TestForgetDuringDEKLoad(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "covered data")
	fresh, err := byok.New(f.cfg) // nothing cached
	if err != nil {
		t.Fatal(err)
	}
	gate := f.cmk.Block() // the customer-managed key's load waits here
	done := make(chan error, 1)
	go func() {
		_, err := fresh.Decrypt(f.ctx, "acme", "covered", ct, []byte("aad"))
		done <- err
	}()
	<-gate.Entered()
	// Another replica made the tenant strict and told this one.
	if err := f.db.SetTenantPolicy(f.ctx, "acme", byok.Strict); err != nil {
		t.Fatal(err)
	}
	fresh.Forget("acme")
	gate.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
	f.clock.Advance(checkInterval)
	_, err = fresh.Decrypt(f.ctx, "acme", "covered", ct, []byte("aad"))
	if !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("Decrypt of a strict tenant while its vault fails = %v, want ErrKeyUnavailable", err)
	}
}
