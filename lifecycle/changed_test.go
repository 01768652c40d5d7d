package lifecycle_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle"
)

// Every change of a tenant's keys or scopes tells the other replicas.
func TestChangedTellsReplicas(t *testing.T) {
	var mu sync.Mutex
	var changed []string
	f := newFixture(t, func(c *lifecycle.Config) {
		c.Changed = func(tenant string) {
			mu.Lock()
			changed = append(changed, tenant)
			mu.Unlock()
		}
	})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(changed)
	}
	f.activate(nil) // creates the tenant, then activates
	afterActivation := count()
	if afterActivation == 0 {
		t.Fatal("activation moved scopes without telling the replicas")
	}
	ctx := context.Background()
	if _, err := f.svc.Rotate(ctx, admin, "t1", lifecycle.RotateRequest{KeyID: f.customer.Rotate(f.cmk)}); err != nil {
		t.Fatal(err)
	}
	if count() == afterActivation {
		t.Fatal("a rotation did not tell the replicas")
	}
	beforeDisable := count()
	if _, err := f.svc.Disable(ctx, admin, "t1"); err != nil {
		t.Fatal(err)
	}
	f.tick()
	if count() == beforeDisable {
		t.Fatal("disable did not tell the replicas")
	}
	beforePolicy := count()
	if err := f.svc.SetPolicy(ctx, operator, "t1", byok.Strict); err != nil {
		t.Fatal(err)
	}
	if count() == beforePolicy {
		t.Fatal("a policy change did not tell the replicas")
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.ContainsFunc(changed, func(s string) bool { return s != "t1" }) {
		t.Fatalf("notices name other tenants: %v", changed)
	}
}
