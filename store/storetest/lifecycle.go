package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle/record"
	"github.com/openbyok/byok/store"
)

// RunLifecycle runs the conformance suite of [record.Store]. open must
// return a new, empty store each time.
func RunLifecycle(t *testing.T, open func(t *testing.T) record.Store) {
	ctx := context.Background()
	at := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
	setup := func(t *testing.T) record.Store {
		st := open(t)
		t.Cleanup(func() { st.Close() })
		share := kms.Wrapped{KeyID: "fake:k/v1", Algorithm: "A256GCM", Ciphertext: []byte{1, 2, 3}}
		for _, tenant := range []string{"t1", "t2"} {
			err := st.CreateTenant(ctx, byok.TenantRecord{ID: tenant, Policy: byok.Grace, Created: at},
				[]byok.TenantKeyRecord{{Tenant: tenant, Kind: byok.PlatformManaged, Epoch: 1, CustomerShare: share, PlatformShare: share, Created: at}})
			if err != nil {
				t.Fatal(err)
			}
		}
		return st
	}
	rec := record.Record{
		Tenant: "t1", Version: 1, State: record.StateScheduled,
		Settings: record.Settings{Provider: "azure-key-vault", KeyID: "https://v.vault.azure.net/keys/k",
			Options: json.RawMessage(`{"directory_id":"d","client_id":"c","credential":"client-secret"}`)},
		SettingsHash: "abc", SealedSecret: kms.Wrapped{KeyID: "fake:prk/v1", Algorithm: "A256GCM", Ciphertext: []byte{9, 9}},
		Coverage:  record.Coverage{All: true, Exclude: []string{"x"}},
		EnforceAt: at, ActivatedAt: at.Add(time.Hour), Versions: []string{"v1", "v2"}, Updated: at,
		LastTest: &record.Report{SettingsHash: "abc", KeyID: "k/v1", At: at,
			Checks: []record.Check{{Name: "uri", Outcome: record.Pass, Detail: "ok", Duration: time.Millisecond}}},
	}

	t.Run("KeyRecordRoundTripAndCAS", func(t *testing.T) {
		st := setup(t)
		if _, err := st.KeyRecord(ctx, "t1"); !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("KeyRecord before any write: %v", err)
		}
		if err := st.PutKeyRecord(ctx, rec); err != nil {
			t.Fatal(err)
		}
		got, err := st.KeyRecord(ctx, "t1")
		if err != nil || !reflect.DeepEqual(got, rec) {
			t.Fatalf("KeyRecord:\n got %+v, %v\nwant %+v", got, err, rec)
		}
		if err := st.PutKeyRecord(ctx, rec); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second insert of version 1: %v", err)
		}
		next := rec
		next.Version, next.State = 2, record.StateActive
		if err := st.PutKeyRecord(ctx, next); err != nil {
			t.Fatal(err)
		}
		skip := next
		skip.Version = 4
		if err := st.PutKeyRecord(ctx, skip); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("write of version 4 over 2: %v", err)
		}
		none := rec
		none.Tenant = "ghost"
		if err := st.PutKeyRecord(ctx, none); !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("record of an unknown tenant: %v", err)
		}
		bad := rec
		bad.Tenant, bad.State = "t2", record.StateNone
		if err := st.PutKeyRecord(ctx, bad); !errors.Is(err, byok.ErrInvalidInput) {
			t.Fatalf("record in state none: %v", err)
		}
		r2 := rec
		r2.Tenant, r2.State, r2.LastTest = "t2", record.StateDraft, nil
		if err := st.PutKeyRecord(ctx, r2); err != nil {
			t.Fatal(err)
		}
		list, err := st.ListKeyRecords(ctx, "", 10, record.StateActive)
		if err != nil || len(list) != 1 || list[0].Tenant != "t1" {
			t.Fatalf("ListKeyRecords(active) = %+v, %v", list, err)
		}
		list, err = st.ListKeyRecords(ctx, "t1", 10)
		if err != nil || len(list) != 1 || list[0].Tenant != "t2" || list[0].LastTest != nil {
			t.Fatalf("ListKeyRecords after t1 = %+v, %v", list, err)
		}
		if _, err := st.ListKeyRecords(ctx, "", 0); !errors.Is(err, byok.ErrInvalidInput) {
			t.Fatalf("limit 0: %v", err)
		}
	})

	t.Run("CommitRotation", func(t *testing.T) {
		st := setup(t)
		cm := kms.Wrapped{KeyID: "fake:cmk/v1", Algorithm: "A256GCM", Ciphertext: []byte{4}}
		if err := st.PutTenantKey(ctx, byok.TenantKeyRecord{Tenant: "t1", Kind: byok.CustomerManaged, Epoch: 1, CustomerShare: cm, PlatformShare: cm, Created: at}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutKeyRecord(ctx, rec); err != nil {
			t.Fatal(err)
		}
		next := rec
		next.Version, next.Settings.KeyID = 2, "fake:cmk/v2"
		v2 := kms.Wrapped{KeyID: "fake:cmk/v2", Algorithm: "A256GCM", Ciphertext: []byte{5}}
		// Wrong old key id: neither write happens.
		if err := st.CommitRotation(ctx, next, byok.CustomerManaged, 1, "fake:cmk/v0", v2); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CommitRotation with a stale key id: %v", err)
		}
		if got, _ := st.KeyRecord(ctx, "t1"); got.Version != 1 {
			t.Fatalf("record written by a failed rotation: version %d", got.Version)
		}
		// Stale rec: the share is not replaced either.
		stale := next
		stale.Version = 3
		if err := st.CommitRotation(ctx, stale, byok.CustomerManaged, 1, "fake:cmk/v1", v2); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("CommitRotation with a stale record: %v", err)
		}
		if k, _ := st.TenantKey(ctx, "t1", byok.CustomerManaged); k.CustomerShare.KeyID != "fake:cmk/v1" {
			t.Fatalf("share replaced by a failed rotation: %s", k.CustomerShare.KeyID)
		}
		if err := st.CommitRotation(ctx, next, byok.CustomerManaged, 1, "fake:cmk/v1", v2); err != nil {
			t.Fatal(err)
		}
		k, _ := st.TenantKey(ctx, "t1", byok.CustomerManaged)
		got, _ := st.KeyRecord(ctx, "t1")
		if !reflect.DeepEqual(k.CustomerShare, v2) || got.Version != 2 || got.Settings.KeyID != "fake:cmk/v2" {
			t.Fatalf("after CommitRotation: share %+v record %+v", k.CustomerShare, got)
		}
		if err := st.CommitRotation(ctx, next, byok.CustomerManaged, 9, "x", v2); !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("CommitRotation of a missing epoch: %v", err)
		}
	})

	t.Run("JobsAndBatches", func(t *testing.T) {
		st := setup(t)
		j := record.JobRecord{Job: record.Job{ID: "j1", Tenant: "t1", Kind: record.JobRekey, State: record.JobPending,
			Total: 3, Actor: audit.Actor{Kind: audit.TenantAdmin, ID: "a"}, Created: at, Updated: at}, Epoch: 1, Walk: 1}
		if err := st.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if got, err := st.JobRecord(ctx, "j1"); err != nil || !reflect.DeepEqual(got, j) {
			t.Fatalf("JobRecord:\n got %+v, %v\nwant %+v", got, err, j)
		}
		if _, err := st.JobRecord(ctx, "nope"); !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("missing job: %v", err)
		}
		j2 := j
		j2.ID, j2.Tenant, j2.State = "j2", "t2", record.JobDone
		if err := st.PutJob(ctx, j2); err != nil {
			t.Fatal(err)
		}
		if js, err := st.ListJobs(ctx, "", true, 10); err != nil || len(js) != 1 || js[0].ID != "j1" {
			t.Fatalf("unfinished jobs: %+v, %v", js, err)
		}
		if js, err := st.ListJobs(ctx, "", false, 10); err != nil || len(js) != 2 || js[0].ID != "j2" {
			t.Fatalf("all jobs, newest first: %+v, %v", js, err)
		}
		if js, err := st.ListJobs(ctx, "t2", false, 10); err != nil || len(js) != 1 || js[0].ID != "j2" {
			t.Fatalf("jobs of t2: %+v, %v", js, err)
		}
		ghost := j
		ghost.ID, ghost.Tenant = "j3", "ghost"
		if err := st.PutJob(ctx, ghost); !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("job of an unknown tenant: %v", err)
		}

		// A batch writes DEKs, the scope and the job together, or nothing.
		d := byok.DEKRecord{ID: byok.DEKID{1}, Tenant: "t1", Scope: "s", Kind: byok.PlatformManaged, Epoch: 1, Wrapped: []byte{7}, Created: at}
		if err := st.PutDEK(ctx, d); err != nil {
			t.Fatal(err)
		}
		if n, err := st.CountDEKs(ctx, "t1", byok.PlatformManaged, 2, ""); err != nil || n != 1 {
			t.Fatalf("CountDEKs = %d, %v", n, err)
		}
		if n, err := st.CountDEKs(ctx, "t1", byok.PlatformManaged, 1, ""); err != nil || n != 0 {
			t.Fatalf("CountDEKs below epoch 1 = %d, %v", n, err)
		}
		if n, err := st.CountDEKs(ctx, "t1", byok.PlatformManaged, 2, "other"); err != nil || n != 0 {
			t.Fatalf("CountDEKs of another scope = %d, %v", n, err)
		}
		j.Done, j.Cursor, j.State = 1, d.ID, record.JobRunning
		missing := d
		missing.ID = byok.DEKID{2}
		if err := st.RewrapBatch(ctx, nil, []byok.DEKRecord{d, missing}, j); !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("batch with a missing DEK: %v", err)
		}
		if got, _ := st.JobRecord(ctx, "j1"); got.Done != 0 {
			t.Fatalf("job progress written by a failed batch: %+v", got)
		}
		d.Wrapped = []byte{8}
		scope := byok.ScopeRecord{Tenant: "t1", Scope: "s", Kind: byok.PlatformManaged}
		if err := st.RewrapBatch(ctx, &scope, []byok.DEKRecord{d}, j); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.JobRecord(ctx, "j1"); got.Done != 1 || got.Cursor != d.ID || got.State != record.JobRunning {
			t.Fatalf("job after a batch: %+v", got)
		}
		if got, _ := st.DEK(ctx, d.ID); !reflect.DeepEqual(got.Wrapped, []byte{8}) {
			t.Fatalf("DEK after a batch: %+v", got)
		}
		if sc, err := st.Scope(ctx, "t1", "s"); err != nil || sc.Kind != byok.PlatformManaged {
			t.Fatalf("scope after a batch: %+v, %v", sc, err)
		}
		wrongScope := byok.ScopeRecord{Tenant: "t1", Scope: "other", Kind: byok.PlatformManaged}
		if err := st.RewrapBatch(ctx, &wrongScope, []byok.DEKRecord{d}, j); !errors.Is(err, byok.ErrInvalidInput) {
			t.Fatalf("batch of another scope's DEK: %v", err)
		}
	})

	t.Run("JobLeases", func(t *testing.T) {
		st := setup(t)
		lease := 2 * time.Minute
		j := record.JobRecord{Job: record.Job{ID: "j1", Tenant: "t1", Kind: record.JobRekey, State: record.JobPending,
			Total: 1, Actor: audit.Actor{Kind: audit.TenantAdmin, ID: "a"}, Created: at, Updated: at}, Epoch: 2, Walk: 1}
		if err := st.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		d := byok.DEKRecord{ID: byok.DEKID{1}, Tenant: "t1", Scope: "s", Kind: byok.PlatformManaged, Epoch: 1, Wrapped: []byte{7}, Created: at}
		if err := st.PutDEK(ctx, d); err != nil {
			t.Fatal(err)
		}

		// A free job: claimed, and the returned rec is the stored one.
		got, ok, err := st.ClaimJob(ctx, "j1", "a", at, at.Add(lease))
		want := j
		want.Owner, want.LeaseUntil = "a", at.Add(lease)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("claim of a free job = %+v, %v, %v; want %+v, true", got, ok, err, want)
		}
		if stored, _ := st.JobRecord(ctx, "j1"); !reflect.DeepEqual(stored, want) {
			t.Fatalf("stored after the claim: %+v", stored)
		}
		// Another owner is refused while the lease runs, even a nanosecond
		// before it ends; the holder may claim again (renew).
		if got, ok, err := st.ClaimJob(ctx, "j1", "b", at.Add(lease-1), at.Add(2*lease)); err != nil || ok || got.Owner != "a" || !got.LeaseUntil.Equal(at.Add(lease)) {
			t.Fatalf("claim by b during a's lease = %+v, %v, %v; want a's lease, false", got, ok, err)
		}
		if got, ok, err := st.ClaimJob(ctx, "j1", "a", at.Add(time.Minute), at.Add(time.Minute+lease)); err != nil || !ok || !got.LeaseUntil.Equal(at.Add(time.Minute+lease)) {
			t.Fatalf("renewal by a = %+v, %v, %v", got, ok, err)
		}
		// Writes of a job owned by a: a's pass and renew; anyone else's
		// are refused and change nothing.
		for _, owner := range []string{"b", ""} {
			w := want
			w.Owner, w.Done = owner, 1
			if err := st.PutJob(ctx, w); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("PutJob as %q of a's job: %v", owner, err)
			}
		}
		mine := want
		mine.State, mine.Done, mine.Cursor, mine.LeaseUntil = record.JobRunning, 1, d.ID, at.Add(3*time.Minute+lease)
		d.Wrapped = []byte{8}
		if err := st.RewrapBatch(ctx, nil, []byok.DEKRecord{d}, mine); err != nil {
			t.Fatalf("a's batch: %v", err)
		}
		if stored, _ := st.JobRecord(ctx, "j1"); !reflect.DeepEqual(stored, mine) {
			t.Fatalf("after a's batch:\n got %+v\nwant %+v", stored, mine)
		}

		// The lease ends (a stalled): b takes the job over at its end.
		end := mine.LeaseUntil
		got, ok, err = st.ClaimJob(ctx, "j1", "b", end, end.Add(lease))
		if err != nil || !ok || got.Owner != "b" || got.Done != 1 || got.Cursor != d.ID {
			t.Fatalf("takeover by b after the lease = %+v, %v, %v", got, ok, err)
		}
		// a's next batch fails as a whole: no DEK, no progress written.
		stale := mine
		stale.Done, stale.LeaseUntil = 2, end.Add(time.Minute)
		d.Wrapped = []byte{9}
		if err := st.RewrapBatch(ctx, nil, []byok.DEKRecord{d}, stale); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a's batch after b took over: %v", err)
		}
		if dk, _ := st.DEK(ctx, d.ID); !reflect.DeepEqual(dk.Wrapped, []byte{8}) {
			t.Fatalf("DEK written by a fenced batch: %x", dk.Wrapped)
		}
		if err := st.PutJob(ctx, stale); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a's PutJob after b took over: %v", err)
		}
		if stored, _ := st.JobRecord(ctx, "j1"); stored.Owner != "b" || stored.Done != 1 {
			t.Fatalf("job written by a after b took over: %+v", stored)
		}

		// b releases: the owner stays, the lease is gone, anyone may claim.
		released := got
		released.LeaseUntil = time.Time{}
		if err := st.PutJob(ctx, released); err != nil {
			t.Fatalf("release by b: %v", err)
		}
		if stored, _ := st.JobRecord(ctx, "j1"); !reflect.DeepEqual(stored, released) {
			t.Fatalf("after the release:\n got %+v\nwant %+v", stored, released)
		}
		got, ok, err = st.ClaimJob(ctx, "j1", "a", end, end.Add(lease))
		if err != nil || !ok || got.Owner != "a" {
			t.Fatalf("claim of a released job = %+v, %v, %v", got, ok, err)
		}

		// A finished job is never claimed, not even by its owner.
		done := got
		done.State, done.LeaseUntil = record.JobDone, time.Time{}
		if err := st.PutJob(ctx, done); err != nil {
			t.Fatal(err)
		}
		for _, owner := range []string{"a", "b"} {
			if got, ok, err := st.ClaimJob(ctx, "j1", owner, end.Add(time.Hour), end.Add(2*time.Hour)); err != nil || ok || got.State != record.JobDone {
				t.Fatalf("claim of a done job by %s = %+v, %v, %v", owner, got, ok, err)
			}
		}
		if _, _, err := st.ClaimJob(ctx, "nope", "a", at, at.Add(lease)); !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("claim of a missing job: %v", err)
		}
		if _, _, err := st.ClaimJob(ctx, "j1", "", at, at.Add(lease)); !errors.Is(err, byok.ErrInvalidInput) {
			t.Fatalf("claim without an owner: %v", err)
		}
	})

	t.Run("StartJob", func(t *testing.T) {
		st := setup(t)
		if err := st.PutKeyRecord(ctx, rec); err != nil {
			t.Fatal(err)
		}
		j := record.JobRecord{Job: record.Job{ID: "j1", Tenant: "t1", Kind: record.JobActivate, State: record.JobPending,
			Actor: audit.Actor{Kind: audit.System, ID: "scheduler"}, Created: at, Updated: at}}
		next := rec
		next.Version = 2
		if err := st.StartJob(ctx, next, j); err != nil {
			t.Fatal(err)
		}
		if got, err := st.JobRecord(ctx, "j1"); err != nil || !reflect.DeepEqual(got, j) {
			t.Fatalf("started job = %+v, %v", got, err)
		}
		if got, _ := st.KeyRecord(ctx, "t1"); got.Version != 2 {
			t.Fatalf("record version after StartJob = %d, want 2", got.Version)
		}
		// A second scheduler that read version 1: neither write happens.
		j2 := j
		j2.ID = "j2"
		if err := st.StartJob(ctx, next, j2); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("StartJob with a stale record: %v", err)
		}
		if _, err := st.JobRecord(ctx, "j2"); !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("job stored by a refused StartJob: %v", err)
		}
		// An existing job id: the rec is not written either.
		third := next
		third.Version = 3
		if err := st.StartJob(ctx, third, j); !errors.Is(err, byok.ErrExists) {
			t.Fatalf("StartJob with an existing job id: %v", err)
		}
		if got, _ := st.KeyRecord(ctx, "t1"); got.Version != 2 {
			t.Fatalf("record written by a refused StartJob: version %d", got.Version)
		}
		other := j2
		other.Tenant = "t2"
		if err := st.StartJob(ctx, third, other); !errors.Is(err, byok.ErrInvalidInput) {
			t.Fatalf("StartJob of another tenant's job: %v", err)
		}
	})

	t.Run("HealthEvents", func(t *testing.T) {
		st := setup(t)
		e1 := record.HealthEvent{Tenant: "t1", Kind: record.HealthRevoked, Reason: kms.ReasonDenied, DetectedAt: at, EnforcedAt: at.Add(time.Second), Replica: "r1"}
		e2 := record.HealthEvent{Tenant: "t1", Kind: record.HealthRestored, DetectedAt: at.Add(time.Minute), EnforcedAt: at.Add(time.Minute), Replica: "r1"}
		for _, e := range []record.HealthEvent{e1, e2} {
			if err := st.AddHealthEvent(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.HealthEvents(ctx, "t1", 10)
		if err != nil || !reflect.DeepEqual(got, []record.HealthEvent{e2, e1}) {
			t.Fatalf("HealthEvents = %+v, %v", got, err)
		}
		if got, err := st.HealthEvents(ctx, "t2", 10); err != nil || len(got) != 0 {
			t.Fatalf("HealthEvents of t2 = %+v, %v", got, err)
		}
		if err := st.AddHealthEvent(ctx, record.HealthEvent{Tenant: "ghost", Kind: record.HealthRevoked}); !errors.Is(err, byok.ErrNotFound) {
			t.Fatalf("event of an unknown tenant: %v", err)
		}
		if err := st.AddHealthEvent(ctx, record.HealthEvent{Tenant: "t1"}); !errors.Is(err, byok.ErrInvalidInput) {
			t.Fatalf("event without a kind: %v", err)
		}
	})
}
