package lifecycle_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle"
)

// faultyStore fails the write of one re-key batch (failAt, counting from
// 1); with dies, it also fails every write after it, as a process killed
// in the middle of that batch writes nothing more. With jobsFail, every
// PutJob fails and batches go through.
type faultyStore struct {
	lifecycle.Store
	mu       sync.Mutex
	n        int
	failAt   int
	dies     bool
	dead     bool
	jobsFail bool
}

var errInjected = errors.New("disk I/O error (injected)")

func (s *faultyStore) RewrapBatch(ctx context.Context, sc *byok.ScopeRecord, recs []byok.DEKRecord, j lifecycle.JobRecord) error {
	s.mu.Lock()
	s.n++
	fail := s.dead || s.n == s.failAt
	s.dead = s.dead || (fail && s.dies)
	s.mu.Unlock()
	if fail {
		return errInjected
	}
	return s.Store.RewrapBatch(ctx, sc, recs, j)
}

func (s *faultyStore) PutJob(ctx context.Context, j lifecycle.JobRecord) error {
	s.mu.Lock()
	dead := s.dead || s.jobsFail
	s.mu.Unlock()
	if dead {
		return errInjected
	}
	return s.Store.PutJob(ctx, j)
}

// rekeyFixture is an active tenant with n DEKs in scope a (batches of 7)
// under a store that fails as fs says, and the ciphertexts, one per DEK.
func rekeyFixture(t *testing.T, n int, fs *faultyStore) (*fixture, lifecycle.Config, [][]byte) {
	var cfg lifecycle.Config
	f := newFixture(t, func(c *lifecycle.Config) {
		fs.Store = c.Store
		c.Store = fs
		cfg = *c
	})
	f.activate(nil)
	var cts [][]byte
	for i := range n {
		f.svc.Keyring().Forget("t1") // a new DEK for each
		ct, err := f.svc.Keyring().Encrypt(context.Background(), "t1", "a", []byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
	}
	return f, cfg, cts
}

// checkRekeyed checks that the job is done with every DEK counted once,
// that no DEK is left under an older epoch, and that every ciphertext
// decrypts through kr.
func checkRekeyed(t *testing.T, f *fixture, kr *byok.Keyring, j lifecycle.Job, cts [][]byte) {
	t.Helper()
	ctx := context.Background()
	if j.State != lifecycle.JobDone || j.Done != int64(len(cts)) || j.Total != int64(len(cts)) {
		t.Fatalf("re-key job at the end: %+v; want done with %d of %d", j, len(cts), len(cts))
	}
	cur, err := f.db.TenantKey(ctx, "t1", byok.CustomerManaged)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.db.CountDEKs(ctx, "t1", byok.CustomerManaged, cur.Epoch, ""); err != nil || n != 0 {
		t.Fatalf("%d DEKs left under an older epoch (%v): a batch was skipped", n, err)
	}
	kr.Forget("t1")
	for i, ct := range cts {
		if pt, err := kr.Decrypt(ctx, "t1", "a", ct, nil); err != nil || len(pt) != 1 || pt[0] != byte(i) {
			t.Fatalf("Decrypt #%d after the re-key: %v", i, err)
		}
	}
}

// A batch whose write fails is not counted or skipped: the job's cursor
// and progress stay at the last batch written, and the next run carries
// on from there.
func TestRekeyFailedWriteSkipsNothing(t *testing.T) {
	ctx := context.Background()
	fs := &faultyStore{}
	f, _, cts := rekeyFixture(t, 50, fs)
	j, err := f.svc.Rekey(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	fs.n, fs.failAt = 0, 3
	fs.mu.Unlock()
	if err := f.svc.Tick(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Tick with the third batch's write failing: %v", err)
	}
	if j, _ = f.svc.Job(ctx, "t1", j.ID); j.Done != 14 || j.Attempts != 1 {
		t.Fatalf("job after its third batch failed: %+v; want 14 done (two batches of 7), attempt 1", j)
	}
	f.tick()
	j, _ = f.svc.Job(ctx, "t1", j.ID)
	checkRekeyed(t, f, f.svc.Keyring(), j, cts)
}

// A replica killed in the middle of a batch (its transaction never
// commits, and it writes nothing more) loses nothing: once its lease has
// passed, another replica resumes the job after the last batch committed
// and finishes it, and every DEK decrypts. (SQLite and PostgreSQL roll
// back a transaction whose process died; the batch and the job's cursor
// are one transaction.)
func TestRekeyKilledMidBatchResumes(t *testing.T) {
	ctx := context.Background()
	fs := &faultyStore{}
	f, cfg, cts := rekeyFixture(t, 60, fs)
	j, err := f.svc.Rekey(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	fs.n, fs.failAt, fs.dies = 0, 4, true
	fs.mu.Unlock()
	f.svc.Tick(ctx) // dies in its fourth batch
	if j, _ = f.svc.Job(ctx, "t1", j.ID); j.Done != 21 || j.State == lifecycle.JobDone {
		t.Fatalf("job as the killed replica left it: %+v; want 21 done (three batches of 7)", j)
	}

	cfg.Store, cfg.ReplicaID = f.db, "replica-2"
	other, err := lifecycle.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(lifecycle.DefaultJobLease + time.Second) // the dead replica's lease passes
	if err := other.Tick(ctx); err != nil {
		t.Fatalf("the other replica's Tick: %v", err)
	}
	if j, err = other.Job(ctx, "t1", j.ID); err != nil {
		t.Fatal(err)
	}
	checkRekeyed(t, f, other.Keyring(), j, cts)
}

// A scope move whose batch write fails is not counted or skipped either:
// every DEK of the deselected scope ends on the platform key.
func TestMoveScopesFailedWriteSkipsNothing(t *testing.T) {
	ctx := context.Background()
	fs := &faultyStore{}
	f, _, cts := rekeyFixture(t, 50, fs)
	fs.mu.Lock()
	fs.n, fs.failAt = 0, 3
	fs.mu.Unlock()
	ck, err := f.svc.SetScopes(ctx, admin, "t1", lifecycle.Coverage{All: true, Exclude: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Tick(ctx) // the job may have run inside SetScopes; its third write fails either way
	f.tick()
	j, err := f.svc.Job(ctx, "t1", ck.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != lifecycle.JobDone || j.Done != int64(len(cts)) || j.Attempts != 1 {
		t.Fatalf("scopes job at the end: %+v; want done with %d moved after one failed attempt", j, len(cts))
	}
	if n, err := f.db.CountDEKs(ctx, "t1", byok.CustomerManaged, ^uint32(0), "a"); err != nil || n != 0 {
		t.Fatalf("%d DEKs of the deselected scope left on the customer key (%v): a batch was skipped", n, err)
	}
	f.decryptAll("a", cts)
}

// aheadStore fails the write of re-key batch failAt (counting from 1)
// once the page after it has been read: the job reads and re-wraps a page
// while the batch before it commits.
type aheadStore struct {
	lifecycle.Store
	mu             sync.Mutex
	lists, writes  int
	failAt         int
	readAhead      chan struct{} // closed when page failAt+1 has been read
	readAheadClose sync.Once
}

func (s *aheadStore) ListDEKs(ctx context.Context, tenant string, kind byok.KeyKind, belowEpoch uint32, after byok.DEKID, limit int) ([]byok.DEKRecord, error) {
	recs, err := s.Store.ListDEKs(ctx, tenant, kind, belowEpoch, after, limit)
	s.mu.Lock()
	s.lists++
	if s.failAt > 0 && s.lists == s.failAt+1 {
		s.readAheadClose.Do(func() { close(s.readAhead) })
	}
	s.mu.Unlock()
	return recs, err
}

func (s *aheadStore) RewrapBatch(ctx context.Context, sc *byok.ScopeRecord, recs []byok.DEKRecord, j lifecycle.JobRecord) error {
	s.mu.Lock()
	s.writes++
	fail := s.writes == s.failAt
	s.mu.Unlock()
	if fail {
		select {
		case <-s.readAhead:
		case <-ctx.Done():
		}
		return errInjected
	}
	return s.Store.RewrapBatch(ctx, sc, recs, j)
}

// A batch write that fails after the batch before it committed, while the
// batch after it has already been read and re-wrapped ahead, loses and
// double-counts nothing: the job stays at the cursor and progress of the
// last batch written, the batch read ahead is dropped, and the next run
// carries on from the cursor.
func TestRekeyFailedWriteDropsReadAhead(t *testing.T) {
	ctx := context.Background()
	as := &aheadStore{readAhead: make(chan struct{})}
	f := newFixture(t, func(c *lifecycle.Config) {
		as.Store = c.Store
		c.Store = as
	})
	f.activate(nil)
	var cts [][]byte
	for i := range 50 {
		f.svc.Keyring().Forget("t1") // a new DEK for each
		ct, err := f.svc.Keyring().Encrypt(ctx, "t1", "a", []byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
	}
	j, err := f.svc.Rekey(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	as.mu.Lock()
	as.lists, as.writes, as.failAt = 0, 0, 3
	as.mu.Unlock()
	if err := f.svc.Tick(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Tick with the third batch's write failing: %v", err)
	}
	if j, _ = f.svc.Job(ctx, "t1", j.ID); j.Done != 14 || j.Attempts != 1 || j.State == lifecycle.JobDone {
		t.Fatalf("job after its third batch failed with the fourth read ahead: %+v; want 14 done (two batches of 7), attempt 1", j)
	}
	cur, err := f.db.TenantKey(ctx, "t1", byok.CustomerManaged)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.db.CountDEKs(ctx, "t1", byok.CustomerManaged, cur.Epoch, ""); err != nil || n != 50-14 {
		t.Fatalf("%d DEKs left under the old epoch after two batches written (%v); want %d", n, err, 50-14)
	}
	f.tick()
	j, _ = f.svc.Job(ctx, "t1", j.ID)
	checkRekeyed(t, f, f.svc.Keyring(), j, cts)
}

// countingStore counts the pages of DEKs a re-key lists and the DEKs in
// them.
type countingStore struct {
	lifecycle.Store
	mu          sync.Mutex
	pages, deks int
}

func (s *countingStore) ListDEKs(ctx context.Context, tenant string, kind byok.KeyKind, belowEpoch uint32, after byok.DEKID, limit int) ([]byok.DEKRecord, error) {
	recs, err := s.Store.ListDEKs(ctx, tenant, kind, belowEpoch, after, limit)
	s.mu.Lock()
	s.pages++
	s.deks += len(recs)
	s.mu.Unlock()
	return recs, err
}

// A re-key reads each DEK once in one walk in id order, however many
// epochs the tenant had before: it does not walk each older epoch.
func TestRekeyWalksOnce(t *testing.T) {
	ctx := context.Background()
	cs := &countingStore{}
	f := newFixture(t, func(c *lifecycle.Config) {
		cs.Store = c.Store
		c.Store = cs
	})
	f.activate(nil)
	var cts [][]byte
	for i := range 30 {
		f.svc.Keyring().Forget("t1") // a new DEK for each
		ct, err := f.svc.Keyring().Encrypt(ctx, "t1", "a", []byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
	}
	for rekey := 1; rekey <= 3; rekey++ {
		j, err := f.svc.Rekey(ctx, admin, "t1")
		if err != nil {
			t.Fatal(err)
		}
		cs.mu.Lock()
		cs.pages, cs.deks = 0, 0
		cs.mu.Unlock()
		f.tick()
		j, _ = f.svc.Job(ctx, "t1", j.ID)
		checkRekeyed(t, f, f.svc.Keyring(), j, cts)
		cs.mu.Lock()
		// Batches of 7: four full pages and a last one of 2.
		if cs.pages != 5 || cs.deks != 30 {
			t.Errorf("re-key %d (onto epoch %d) read %d pages with %d DEKs; want 5 pages, 30 DEKs", rekey, rekey+1, cs.pages, cs.deks)
		}
		cs.mu.Unlock()
	}
}

// While a re-key is unfinished, an older epoch it has emptied still counts
// for the inventory: its batches may not be durable yet, and the version
// its share is under is not safe to retire until the job is done.
func TestInventoryDuringARekey(t *testing.T) {
	ctx := context.Background()
	fs := &faultyStore{}
	f, _, cts := rekeyFixture(t, 14, fs)
	f.customer.Rotate(f.cmk) // the new epoch's share goes under a new version
	j, err := f.svc.Rekey(ctx, admin, "t1")
	if err != nil {
		t.Fatal(err)
	}
	old, err := f.db.TenantKeyEpoch(ctx, "t1", byok.CustomerManaged, 1)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := f.db.TenantKey(ctx, "t1", byok.CustomerManaged)
	if err != nil || cur.Epoch != 2 || cur.CustomerShare.KeyID == old.CustomerShare.KeyID {
		t.Fatalf("new epoch %d under %q, old under %q (%v): want epoch 2 under another version", cur.Epoch, cur.CustomerShare.KeyID, old.CustomerShare.KeyID, err)
	}
	safe := func() bool {
		t.Helper()
		inv, err := f.svc.Inventory(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range inv {
			if v.KeyID == old.CustomerShare.KeyID {
				return v.SafeToRetire
			}
		}
		t.Fatalf("inventory %+v has no version %q", inv, old.CustomerShare.KeyID)
		return false
	}

	fs.mu.Lock()
	fs.jobsFail = true // every batch written, the job's end not
	fs.mu.Unlock()
	if err := f.svc.Tick(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Tick with the job's writes failing: %v", err)
	}
	if n, err := f.db.CountDEKs(ctx, "t1", byok.CustomerManaged, 2, ""); err != nil || n != 0 {
		t.Fatalf("%d DEKs left under epoch 1 (%v); want every batch written", n, err)
	}
	if safe() {
		t.Fatal("the old version is safe to retire while the re-key that emptied its epoch is unfinished")
	}

	fs.mu.Lock()
	fs.jobsFail = false
	fs.mu.Unlock()
	f.tick()
	j, _ = f.svc.Job(ctx, "t1", j.ID)
	checkRekeyed(t, f, f.svc.Keyring(), j, cts)
	if !safe() {
		t.Fatal("the old version is not safe to retire after the re-key")
	}
}
