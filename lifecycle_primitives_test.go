package byok_test

import (
	"errors"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

// Moving a scope onto the customer-managed key re-wraps its DEKs locally;
// its old data then depends on the customer's key.
func TestRewrapDEKsMovesAScope(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "other", "platform-managed so far")
	f.encrypt("acme", "covered", "loads the customer-managed key")

	recs, err := f.db.ListScopeDEKs(f.ctx, "acme", "other", byok.DEKID{}, 100)
	if err != nil || len(recs) != 1 {
		t.Fatalf("ListScopeDEKs = %d records, %v", len(recs), err)
	}
	f.prk.ResetCalls()
	f.cmk.ResetCalls()
	moved, err := f.kr.RewrapDEKs(f.ctx, "acme", recs, byok.CustomerManaged)
	if err != nil {
		t.Fatal(err)
	}
	if c, p := f.cmk.Calls(), f.prk.Calls(); c.Unwrap+c.Wrap+p.Unwrap+p.Wrap != 0 {
		t.Fatalf("re-wrapping made provider calls: customer %+v platform %+v", c, p)
	}
	if moved[0].ID != recs[0].ID || moved[0].Kind != byok.CustomerManaged || moved[0].Epoch != 1 {
		t.Fatalf("moved record = %+v", moved[0])
	}
	if err := f.db.MoveScope(f.ctx, byok.ScopeRecord{Tenant: "acme", Scope: "other", Kind: byok.CustomerManaged}, moved); err != nil {
		t.Fatal(err)
	}
	f.kr.Forget("acme")
	f.mustDecrypt("acme", "other", ct, "platform-managed so far")

	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDenied)
	f.clock.Advance(checkInterval)
	if _, err := f.decrypt("acme", "other", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("moved scope after revocation: %v, want ErrKeyRevoked", err)
	}
	// Nothing can be re-wrapped out of a revoked key.
	if _, err := f.kr.RewrapDEKs(f.ctx, "acme", moved, byok.PlatformManaged); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("RewrapDEKs from a revoked key = %v, want ErrKeyRevoked", err)
	}
}

func TestRewrapDEKsRejectsAnotherTenantsRecords(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	f.tenant("globex", byok.Grace)
	f.encrypt("globex", "chat", "x")
	recs, err := f.db.ListScopeDEKs(f.ctx, "globex", "chat", byok.DEKID{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.kr.RewrapDEKs(f.ctx, "acme", recs, byok.PlatformManaged); !errors.Is(err, byok.ErrInvalidInput) {
		t.Fatalf("RewrapDEKs of globex's DEKs as acme = %v, want ErrInvalidInput", err)
	}
}

// A re-key adds an epoch; new data goes under it, old data stays readable,
// and RewrapDEKs carries old DEKs to it.
func TestRekey(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	old := f.encrypt("acme", "chat", "epoch 1")
	rec, err := f.kr.NewTenantKey(f.ctx, "acme", byok.PlatformManaged, "")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Epoch != 2 {
		t.Fatalf("new epoch = %d, want 2", rec.Epoch)
	}
	f.kr.Forget("acme")
	newer := f.encrypt("acme", "chat", "epoch 2")
	if dekOf(t, newer) == dekOf(t, old) {
		t.Fatal("new data went under a DEK of the old epoch")
	}
	recs, _ := f.db.ListDEKs(f.ctx, "acme", byok.PlatformManaged, 2, byok.DEKID{}, 100)
	moved, err := f.kr.RewrapDEKs(f.ctx, "acme", recs, byok.PlatformManaged)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.RewrapDEKs(f.ctx, moved); err != nil {
		t.Fatal(err)
	}
	if left, _ := f.db.ListDEKs(f.ctx, "acme", byok.PlatformManaged, 2, byok.DEKID{}, 100); len(left) != 0 {
		t.Fatalf("%d DEKs left under epoch 1 after the re-key", len(left))
	}
	f.kr.Forget("acme")
	f.mustDecrypt("acme", "chat", old, "epoch 1")
	f.mustDecrypt("acme", "chat", newer, "epoch 2")
}

// Check detects a revocation on a tenant with no traffic, and Health
// reports it.
func TestCheckDetectsRevocationWithoutTraffic(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "data")
	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonNotFound)
	hs, err := f.kr.Check(f.ctx, "acme") // before the interval: Check does not wait for it
	if err != nil {
		t.Fatal(err)
	}
	states := map[byok.KeyKind]byok.KeyState{}
	for _, h := range hs {
		states[h.Kind] = h.State
	}
	if states[byok.CustomerManaged] != byok.StateRevoked || states[byok.PlatformManaged] != byok.StateHealthy {
		t.Fatalf("states after Check = %v, want customer-managed revoked and platform-managed healthy", states)
	}
	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Decrypt after Check found the revocation = %v, want ErrKeyRevoked", err)
	}
	if _, err := f.kr.Check(f.ctx, "nobody"); !errors.Is(err, byok.ErrUnknownTenant) {
		t.Fatalf("Check(nobody) = %v, want ErrUnknownTenant", err)
	}
}

func TestHealthStates(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	state := func() byok.KeyState {
		for _, h := range f.kr.Health("acme") {
			if h.Kind == byok.CustomerManaged {
				return h.State
			}
		}
		return byok.StateUnloaded
	}
	if s := state(); s != byok.StateUnloaded {
		t.Fatalf("before use: %s", s)
	}
	f.encrypt("acme", "covered", "x")
	if s := state(); s != byok.StateHealthy {
		t.Fatalf("after use: %s", s)
	}
	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
	f.clock.Advance(checkInterval)
	f.encrypt("acme", "covered", "x")
	if s := state(); s != byok.StateDegraded {
		t.Fatalf("after a transient failure: %s", s)
	}
	f.clock.Advance(maxStaleness)
	f.kr.Encrypt(f.ctx, "acme", "covered", []byte("x"), nil)
	if s := state(); s != byok.StateUnavailable {
		t.Fatalf("past max staleness: %s", s)
	}
}

// Turning BYOK off re-wraps the customer share under the platform key:
// the customer's key is then no longer needed, and revoking it changes
// nothing.
func TestCustomerShareUnderPlatformKeyNeedsNoCustomerKey(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "data")

	rec, err := f.db.TenantKey(f.ctx, "acme", byok.CustomerManaged)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.cmk.Unwrap(f.ctx, rec.CustomerShare)
	if err != nil {
		t.Fatal(err)
	}
	w, err := f.prk.Wrap(f.ctx, f.cfg.PlatformKeyID, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.ReplaceShare(f.ctx, "acme", byok.CustomerManaged, rec.Epoch, rec.CustomerShare.KeyID, w); err != nil {
		t.Fatal(err)
	}
	f.kr.Forget("acme")
	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDisabled)
	f.cmk.ResetCalls()
	f.clock.Advance(checkInterval)
	f.mustDecrypt("acme", "covered", ct, "data")
	if n := f.cmk.Calls().Unwrap; n != 0 {
		t.Fatalf("%d calls to the customer's key after BYOK was turned off", n)
	}
}

// A scope that moves while a new DEK is being made for it gets its DEK
// under the tenant key it moved to: Forget during the making makes the
// keyring start over instead of sealing new data under the old key.
func TestForgetDuringNewDEK(t *testing.T) {
	f := newFixture(t)
	f.byokTenant("acme", byok.Grace)
	fresh, err := byok.New(f.cfg) // nothing cached
	if err != nil {
		t.Fatal(err)
	}
	gate := f.prk.Block() // the platform-managed key's load waits here
	type result struct {
		ct  []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		ct, err := fresh.Encrypt(f.ctx, "acme", "other", []byte("new data"), nil)
		done <- result{ct, err}
	}()
	<-gate.Entered()
	if err := f.db.PutScope(f.ctx, byok.ScopeRecord{Tenant: "acme", Scope: "other", Kind: byok.CustomerManaged}); err != nil {
		t.Fatal(err)
	}
	fresh.Forget("acme")
	gate.Release()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	rec, err := f.db.DEK(f.ctx, byok.DEKID(dekOf(t, r.ct)))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != byok.CustomerManaged {
		t.Fatalf("data written while the scope moved went under a %s DEK, want customer-managed", rec.Kind)
	}
}
