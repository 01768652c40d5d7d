package lifecycle_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// listingFake is a platform key provider that lists its versions, as
// kms/local and kms/azurekv do.
type listingFake struct {
	*kmstest.Fake
	versions []string
}

func (l *listingFake) Versions(ctx context.Context, keyID string) ([]string, error) {
	return l.versions, nil
}

// inventory returns the platform key's inventory by version id.
func inventory(t *testing.T, svc *lifecycle.Service) map[string]lifecycle.PlatformVersion {
	t.Helper()
	inv, err := svc.PlatformInventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]lifecycle.PlatformVersion{}
	for _, v := range inv {
		m[v.KeyID] = v
	}
	return m
}

// TestPlatformRekey rotates the platform root key and moves every share
// and sealed credential onto the new version: the old version ends with
// nothing under it, safe to retire, and every tenant's data still
// decrypts with the old version gone.
func TestPlatformRekey(t *testing.T) {
	lister := &listingFake{}
	f := newFixture(t, func(c *lifecycle.Config) {
		lister.Fake = c.PlatformKMS.(*kmstest.Fake)
		c.PlatformKMS = lister
	})
	ctx := context.Background()
	v1 := f.platform.Rotate("fake:prk") // the key's version 2 is where the fixture starts
	lister.versions = []string{"fake:prk/v1", v1}
	f.activate(nil)
	cts := f.encrypt("a", 5)
	// A tenant with a client secret: its credential is sealed under the
	// platform key too.
	if err := f.svc.CreateTenant(ctx, operator, "t2", byok.Strict, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	s := f.settings()
	s = withOptions(s, func(o *azure.Options) { o.Credential = azure.CredentialClientSecret })
	s.Secret = lifecycle.NewSecret("a-client-secret-value")
	f.must(f.svc.Configure(ctx, admin, "t2", s))

	v2 := f.platform.Rotate("fake:prk")
	lister.versions = append(lister.versions, v2)
	before := inventory(t, f.svc)
	// t1: platform-managed (2 shares) + customer-managed (1 platform
	// share); t2: platform-managed (2) + its sealed secret (1).
	if got := before[v1]; got.Shares != 6 || got.Current || got.SafeToRetire {
		t.Fatalf("before the re-key, %s = %+v, want 6 shares", v1, got)
	}
	if got := before[v2]; got.Shares != 0 || !got.Current || got.SafeToRetire {
		t.Fatalf("before the re-key, %s = %+v, want current and empty", v2, got)
	}
	if got := before["fake:prk/v1"]; !got.SafeToRetire {
		t.Fatalf("the never-used version 1 = %+v, want safe to retire", got)
	}

	var seen []int
	run, err := f.svc.RekeyPlatform(ctx, lifecycle.PlatformRekey{Actor: operator}, func(r lifecycle.PlatformRekey) { seen = append(seen, r.Done) })
	if err != nil {
		t.Fatal(err)
	}
	if run.State != lifecycle.JobDone || run.Target != v2 || run.Total != 6 || run.Done != 6 || run.Failed != 0 {
		t.Fatalf("run = %+v", run)
	}
	if len(seen) == 0 || seen[len(seen)-1] != 6 {
		t.Fatalf("progress = %v, want it to end at 6", seen)
	}
	after := inventory(t, f.svc)
	if got := after[v1]; got.Shares != 0 || !got.SafeToRetire {
		t.Fatalf("after the re-key, %s = %+v, want safe to retire", v1, got)
	}
	if got := after[v2]; got.Shares != 6 || !got.Current {
		t.Fatalf("after the re-key, %s = %+v, want 6 shares", v2, got)
	}

	// Retire version v1: everything still works, from a cold cache.
	f.platform.FailKey(v1, kms.Authoritative, kms.ReasonNotFound)
	f.svc.Keyring().Forget("t1")
	f.decryptAll("a", cts)
	if r, err := f.svc.Test(ctx, admin, "t2"); err != nil || !r.Passed() {
		t.Fatalf("t2's sealed credential after the re-key: %+v, %v", r, err)
	}
	if got := f.audit.actions(); got["platform-key.rekey.start/success"] != 1 || got["platform-key.rekey.finish/success"] != 1 {
		t.Fatalf("audit = %v", got)
	}

	// A second run finds nothing to move.
	again, err := f.svc.RekeyPlatform(ctx, lifecycle.PlatformRekey{Actor: operator}, nil)
	if err != nil || again.Total != 0 || again.Done != 0 {
		t.Fatalf("second run = %+v, %v", again, err)
	}
}

// TestPlatformRekeyFailureLosesNothing makes the old version unreachable
// during a re-key: the run fails with the reason and a remedy, every share
// stays usable where it was, and a run after the fault moves the rest.
func TestPlatformRekeyFailureLosesNothing(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.activate(nil)
	cts := f.encrypt("a", 3)
	old := inventory(t, f.svc)
	var v1 string
	for id, v := range old {
		if v.Current {
			v1 = id
		}
	}
	v2 := f.platform.Rotate("fake:prk")
	f.platform.FailKey(v1, kms.Transient, kms.ReasonUnavailable)
	run, err := f.svc.RekeyPlatform(ctx, lifecycle.PlatformRekey{Actor: operator}, nil)
	if err == nil || run.State != lifecycle.JobFailed || run.Failed != 3 || run.Done != 0 {
		t.Fatalf("run = %+v, %v; want failed with 3 failures", run, err)
	}
	if !strings.Contains(err.Error(), "run it again") || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("the error does not say why and what to do: %v", err)
	}
	if got := inventory(t, f.svc)[v1].Shares; got != 3 {
		t.Fatalf("after the failed run %s holds %d shares, want all 3 still", v1, got)
	}
	if got := f.audit.actions(); got["platform-key.rekey.finish/failure"] != 1 {
		t.Fatalf("audit = %v", got)
	}
	f.platform.HealKey(v1)
	f.svc.Keyring().Forget("t1")
	f.decryptAll("a", cts)
	run, err = f.svc.RekeyPlatform(ctx, lifecycle.PlatformRekey{Actor: operator}, nil)
	if err != nil || run.Done != 3 {
		t.Fatalf("the run after the fault = %+v, %v", run, err)
	}
	if inv := inventory(t, f.svc); inv[v2].Shares != 3 {
		t.Fatalf("inventory = %+v", inv)
	}
}

// heldUnwraps holds every Unwrap of a provider until release is closed.
type heldUnwraps struct {
	kms.Provider
	entered chan struct{}
	release chan struct{}
}

func (h *heldUnwraps) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	h.entered <- struct{}{}
	<-h.release
	return h.Provider.Unwrap(ctx, w)
}

// TestStartPlatformRekeyRunsInBackground starts a run through the
// background entry point and reads its status until it ends; a start
// while it runs returns the same run.
func TestStartPlatformRekeyRunsInBackground(t *testing.T) {
	held := &heldUnwraps{entered: make(chan struct{}, 8), release: make(chan struct{})}
	f := newFixture(t, func(c *lifecycle.Config) {
		held.Provider = c.PlatformKMS
		c.PlatformKMS = held
	})
	ctx := context.Background()
	if err := f.svc.CreateTenant(ctx, operator, "t1", byok.Grace, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PlatformRekeyStatus(""); !errors.Is(err, byok.ErrNotFound) {
		t.Fatalf("status before any run: %v", err)
	}
	f.platform.Rotate("fake:prk")
	run, err := f.svc.StartPlatformRekey(ctx, operator)
	if err != nil || run.State != lifecycle.JobRunning || run.Total != 2 {
		t.Fatalf("start = %+v, %v", run, err)
	}
	<-held.entered // the run is moving its first share
	same, err := f.svc.StartPlatformRekey(ctx, operator)
	if err != nil || same.ID != run.ID {
		t.Fatalf("a second start while running = %+v, %v; want run %s", same, err, run.ID)
	}
	close(held.release)
	for {
		st, err := f.svc.PlatformRekeyStatus(run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != lifecycle.JobRunning {
			if st.State != lifecycle.JobDone || st.Done != 2 {
				t.Fatalf("ended as %+v", st)
			}
			break
		}
		runtime.Gosched() // the run goes on in its goroutine
	}
	if last, err := f.svc.PlatformRekeyStatus(""); err != nil || last.ID != run.ID {
		t.Fatalf("the latest run = %+v, %v", last, err)
	}
	if _, err := f.svc.PlatformRekeyStatus("nope"); !errors.Is(err, byok.ErrNotFound) {
		t.Fatalf("status of an unknown run: %v", err)
	}
}
