package byok_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store/sqlite"
)

// heldTenantStore holds Tenant reads while hold is set, so a test can
// change the policy while a load has read the old one.
type heldTenantStore struct {
	*sqlite.DB
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (s *heldTenantStore) Tenant(ctx context.Context, id string) (byok.TenantRecord, error) {
	rec, err := s.DB.Tenant(ctx, id)
	if s.hold.Load() {
		s.entered <- struct{}{}
		<-s.release
	}
	return rec, err
}

// A policy set while another call is loading the tenant's key is the one
// the loaded key keeps.
func TestSetPolicyDuringLoad(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "data")

	held := &heldTenantStore{DB: f.db, entered: make(chan struct{}), release: make(chan struct{})}
	cfg := f.cfg
	cfg.Store = held
	fresh, err := byok.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	held.hold.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := fresh.Decrypt(f.ctx, "acme", "covered", ct, []byte("aad"))
		done <- err
	}()
	<-held.entered // the load has read the tenant's Grace policy
	held.hold.Store(false)
	if err := fresh.SetPolicy(f.ctx, "acme", byok.Strict); err != nil {
		t.Fatal(err)
	}
	close(held.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
	f.clock.Advance(checkInterval)
	if _, err := fresh.Decrypt(f.ctx, "acme", "covered", ct, []byte("aad")); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("after an outage under the Strict policy set during the load: %v, want ErrKeyUnavailable", err)
	}
}
