package lifecycle_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/internal/envelope"
	"github.com/openbyok/byok/lifecycle"
)

// mixedFixture is t1 with customer-managed epochs 1 to 3 and 2n DEKs of
// scope a wrapped straight into the store, n under epoch 1 and n under
// epoch 2, their random ids interleaved. It returns each DEK by id.
func mixedFixture(t *testing.T, n int, mod func(*lifecycle.Config)) (*fixture, map[byok.DEKID][]byte) {
	t.Helper()
	f := newFixture(t, mod)
	f.activate(nil)
	ctx := context.Background()
	for range 2 {
		if _, err := f.svc.Keyring().NewTenantKey(ctx, "t1", byok.CustomerManaged, f.cmk); err != nil {
			t.Fatal(err)
		}
	}
	deks := make(map[byok.DEKID][]byte)
	for _, epoch := range []uint32{1, 2} {
		aead := f.epochAEAD(epoch)
		for range n {
			var id byok.DEKID
			rand.Read(id[:])
			dek := make([]byte, envelope.KeySize)
			rand.Read(dek)
			w := envelope.WrapDEK(aead, envelope.KeyID(id), "t1", "a", dek)
			d := byok.DEKRecord{ID: id, Tenant: "t1", Scope: "a", Kind: byok.CustomerManaged, Epoch: epoch, Wrapped: w, Created: t0}
			if err := f.db.PutDEK(ctx, d); err != nil {
				t.Fatal(err)
			}
			deks[id] = dek
		}
	}
	return f, deks
}

// checkMovedTo checks that every DEK of deks is under epoch and unwraps
// there to itself, and that no other DEK is left.
func checkMovedTo(t *testing.T, f *fixture, epoch uint32, deks map[byok.DEKID][]byte) {
	t.Helper()
	recs, err := f.db.ListDEKs(context.Background(), "t1", byok.CustomerManaged, epoch+1, byok.DEKID{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(deks) {
		t.Fatalf("%d DEKs, want %d", len(recs), len(deks))
	}
	aead := f.epochAEAD(epoch)
	for _, d := range recs {
		got, err := envelope.UnwrapDEK(aead, envelope.KeyID(d.ID), "t1", d.Scope, d.Wrapped)
		if d.Epoch != epoch || err != nil || !bytes.Equal(got, deks[d.ID]) {
			t.Fatalf("DEK %x: epoch %d, unwrapped under epoch %d: %v; want its own bytes under epoch %d", d.ID, d.Epoch, epoch, err, epoch)
		}
	}
}

// A re-key over DEKs of two older epochs interleaved in id order moves
// them all in one walk: each page mixes the epochs, and each DEK is
// unwrapped under its own.
func TestRekeyMixedEpochs(t *testing.T) {
	ctx := context.Background()
	cs := &countingStore{}
	f, deks := mixedFixture(t, 20, func(c *lifecycle.Config) {
		cs.Store = c.Store
		c.Store = cs
	})
	j, err := f.svc.Rekey(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	f.tick()
	if j, err = f.svc.Job(ctx, "t1", j.ID); err != nil || j.State != lifecycle.JobDone || j.Done != 40 || j.Total != 40 {
		t.Fatalf("re-key job: %+v, %v; want done, 40 of 40", j, err)
	}
	checkMovedTo(t, f, 4, deks)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.pages != 6 || cs.deks != 40 { // batches of 7: five full pages, then 5
		t.Errorf("the re-key read %d pages with %d DEKs; want 6 pages, 40 DEKs", cs.pages, cs.deks)
	}
}

// A re-key job stored mid-walk by the version that walked one older epoch
// at a time resumes from the first id: its cursor covered epoch 1, on
// which it stopped, and not epoch 2, whose DEKs below the cursor had not
// moved.
func TestRekeyResumesAnEpochByEpochJob(t *testing.T) {
	ctx := context.Background()
	f, deks := mixedFixture(t, 20, nil)
	j, err := f.svc.Rekey(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	jr, err := f.db.JobRecord(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The old version's state: epoch 1 walked up to the cursor.
	first, err := f.db.ListDEKs(ctx, "t1", byok.CustomerManaged, 2, byok.DEKID{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	moved := first[:len(first)/2]
	out, err := f.svc.Keyring().RewrapDEKs(ctx, "t1", moved, byok.CustomerManaged)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.RewrapDEKs(ctx, out); err != nil {
		t.Fatal(err)
	}
	jr.Walk, jr.Cursor, jr.Done = 1, moved[len(moved)-1].ID, int64(len(moved))
	all, err := f.db.ListDEKs(ctx, "t1", byok.CustomerManaged, jr.Epoch, byok.DEKID{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(all, func(d byok.DEKRecord) bool {
		return d.Epoch == 2 && bytes.Compare(d.ID[:], jr.Cursor[:]) < 0
	}) {
		t.Fatal("no DEK of epoch 2 below the cursor: the test would not tell a resume from the cursor apart")
	}
	if err := f.db.PutJob(ctx, jr); err != nil {
		t.Fatal(err)
	}
	f.tick()
	if j, err = f.svc.Job(ctx, "t1", j.ID); err != nil || j.State != lifecycle.JobDone || j.Done != 40 {
		t.Fatalf("re-key job: %+v, %v; want done, 40 DEKs moved in all", j, err)
	}
	checkMovedTo(t, f, 4, deks)
}
