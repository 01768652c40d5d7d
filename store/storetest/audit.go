package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// RunAudit runs the conformance suite of [audit.Store]. open must return
// a new, empty store each time it is called, and close it when t ends.
func RunAudit(t *testing.T, open func(t *testing.T) audit.Store) {
	s := auditSuite{open: open}
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"RoundTrip", s.testRoundTrip},
		{"Head", s.testHead},
		{"SealError", s.testSealError},
		{"Discontinuous", s.testDiscontinuous},
		{"DuplicateID", s.testDuplicateID},
		{"ConcurrentAppends", s.testConcurrentAppends},
		{"Query", s.testQuery},
		{"QueryAll", s.testQueryAll},
		{"InvalidLimit", s.testInvalidLimit},
		{"Chains", s.testChains},
	} {
		t.Run(tc.name, tc.f)
	}
}

type auditSuite struct {
	open func(t *testing.T) audit.Store
}

// auditAt is an event time with nanoseconds, in a zone other than UTC.
var auditAt = time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC-3", -3*3600))

// auditEvent returns a minimal valid event of tenant at auditAt+i seconds.
func auditEvent(tenant, action string, i int) audit.Event {
	return audit.Event{
		Tenant:  tenant,
		Time:    auditAt.Add(time.Duration(i) * time.Second),
		Actor:   audit.Actor{Kind: audit.TenantAdmin, ID: "admin-1"},
		Action:  action,
		Outcome: audit.Success,
	}
}

// auditRecord records e through an audit.Log over st.
func auditRecord(t *testing.T, st audit.Store, e audit.Event) audit.Event {
	t.Helper()
	got, err := audit.New(st, nil).Record(context.Background(), e)
	if err != nil {
		t.Fatalf("Record(%s): %v", e.Action, err)
	}
	return got
}

// auditAll returns every event of the store.
func auditAll(t *testing.T, st audit.Store) []audit.Event {
	t.Helper()
	es, err := st.AuditEvents(context.Background(), audit.Query{All: true, Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func (s auditSuite) testRoundTrip(t *testing.T) {
	st := s.open(t)
	full := audit.Event{
		Tenant: "t1", ID: audit.NewID(), Time: auditAt,
		Actor:  audit.Actor{Kind: audit.System, ID: "health-monitor"},
		Action: "vault.unwrap", Target: "https://v.vault.azure.net/keys/k/0123",
		Before: json.RawMessage(`{"state":"active"}`), After: json.RawMessage(`{"state":"revoked","n":[1,2.5]}`),
		Outcome: audit.Failure, Reason: "403 Forbidden: caller lacks unwrapKey",
		Vault: &audit.VaultCall{Operation: "unwrapKey", KeyID: "https://v.vault.azure.net/keys/k/0123",
			Purpose: audit.PurposeBackgroundCheck, RequestID: "req-1"},
		Details: map[string]string{"b": "2", "a": "1", "empty": ""},
	}
	minimal := auditEvent("t1", "key.test", 1)
	want := []audit.Event{auditRecord(t, st, full), auditRecord(t, st, minimal)}
	got := auditAll(t, st)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stored events differ from recorded ones:\n got %+v\nwant %+v", got, want)
	}
	if got[0].Time.Location() != time.UTC || !got[0].Time.Equal(auditAt) {
		t.Errorf("time = %v, want %v in UTC", got[0].Time, auditAt)
	}
	if got[1].Vault != nil || got[1].Details != nil || got[1].Before != nil || got[1].After != nil {
		t.Errorf("minimal event came back with vault %v, details %v, before %q, after %q; want all nil",
			got[1].Vault, got[1].Details, got[1].Before, got[1].After)
	}
	for _, e := range got {
		if h := audit.ComputeHash(&e); h != e.Hash {
			t.Errorf("seq %d: stored hash %s, recomputed %s: a field did not round-trip exactly", e.Seq, e.Hash, h)
		}
	}
}

func (s auditSuite) testHead(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	var heads []audit.Head
	for i := range 3 {
		err := st.AppendAudit(ctx, "t1", func(h audit.Head) ([]audit.Event, error) {
			heads = append(heads, h)
			e := auditEvent("t1", "key.test", i)
			e.ID = audit.NewID()
			e.Seq, e.PrevHash = h.Seq+1, h.Hash
			if h.Seq == 0 {
				e.PrevHash = audit.GenesisHash
			}
			e.Hash = fmt.Sprintf("%064d", i+1)
			return []audit.Event{e}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []audit.Head{{}, {Seq: 1, Hash: fmt.Sprintf("%064d", 1)}, {Seq: 2, Hash: fmt.Sprintf("%064d", 2)}}
	if !reflect.DeepEqual(heads, want) {
		t.Errorf("heads given to seal = %v, want %v", heads, want)
	}
	// Another chain starts from the zero head.
	err := st.AppendAudit(ctx, "t2", func(h audit.Head) ([]audit.Event, error) {
		if h != (audit.Head{}) {
			t.Errorf("head of new chain t2 = %v, want zero", h)
		}
		return nil, nil
	})
	if err != nil {
		t.Errorf("empty append: %v", err)
	}
}

func (s auditSuite) testSealError(t *testing.T) {
	st := s.open(t)
	auditRecord(t, st, auditEvent("t1", "key.test", 0))
	boom := errors.New("seal failed")
	err := st.AppendAudit(context.Background(), "t1", func(h audit.Head) ([]audit.Event, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Errorf("AppendAudit = %v, want the seal's error", err)
	}
	if n := len(auditAll(t, st)); n != 1 {
		t.Errorf("%d events stored after a failed seal, want 1", n)
	}
}

func (s auditSuite) testDiscontinuous(t *testing.T) {
	st := s.open(t)
	first := auditRecord(t, st, auditEvent("t1", "key.test", 0))
	next := func() audit.Event {
		e := auditEvent("t1", "key.test", 1)
		e.ID, e.Seq, e.PrevHash, e.Hash = audit.NewID(), 2, first.Hash, "h"
		return e
	}
	for name, edit := range map[string]func(*audit.Event){
		"other tenant":  func(e *audit.Event) { e.Tenant = "t2" },
		"skipped seq":   func(e *audit.Event) { e.Seq = 3 },
		"repeated seq":  func(e *audit.Event) { e.Seq = 1 },
		"wrong prev":    func(e *audit.Event) { e.PrevHash = audit.GenesisHash },
		"empty prev":    func(e *audit.Event) { e.PrevHash = "" },
		"second breaks": nil,
	} {
		t.Run(name, func(t *testing.T) {
			err := st.AppendAudit(context.Background(), "t1", func(h audit.Head) ([]audit.Event, error) {
				e := next()
				if edit == nil {
					bad := next()
					bad.Seq = 4
					return []audit.Event{e, bad}, nil
				}
				edit(&e)
				return []audit.Event{e}, nil
			})
			if !errors.Is(err, byok.ErrInvalidInput) {
				t.Errorf("AppendAudit = %v, want ErrInvalidInput", err)
			}
			if n := len(auditAll(t, st)); n != 1 {
				t.Errorf("%d events stored, want 1", n)
			}
		})
	}
}

func (s auditSuite) testDuplicateID(t *testing.T) {
	st := s.open(t)
	e := auditEvent("t1", "key.test", 0)
	e.ID = audit.NewID()
	auditRecord(t, st, e)
	for _, tenant := range []string{"t1", "t2"} {
		ok := auditEvent(tenant, "key.test", 1)
		dup := auditEvent(tenant, "key.test", 2)
		dup.ID = e.ID
		err := st.AppendAudit(context.Background(), tenant, func(h audit.Head) ([]audit.Event, error) {
			prev := h.Hash
			if h.Seq == 0 {
				prev = audit.GenesisHash
			}
			ok.ID, ok.Seq, ok.PrevHash, ok.Hash = audit.NewID(), h.Seq+1, prev, "hash-ok"
			dup.Seq, dup.PrevHash, dup.Hash = h.Seq+2, "hash-ok", "hash-dup"
			return []audit.Event{ok, dup}, nil
		})
		if !errors.Is(err, byok.ErrExists) {
			t.Errorf("append with a duplicate id to chain %q = %v, want ErrExists", tenant, err)
		}
	}
	if n := len(auditAll(t, st)); n != 1 {
		t.Errorf("%d events stored, want 1: a failed append must insert none of its events", n)
	}
}

func (s auditSuite) testConcurrentAppends(t *testing.T) {
	st := s.open(t)
	log := audit.New(st, nil)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				tenant := []string{"t1", "t2"}[i%2]
				if _, err := log.Record(context.Background(), auditEvent(tenant, "key.test", w*each+i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seqs := map[string]uint64{}
	prev := map[string]string{}
	for _, e := range auditAll(t, st) {
		seqs[e.Tenant]++
		want := prev[e.Tenant]
		if want == "" {
			want = audit.GenesisHash
		}
		if e.Seq != seqs[e.Tenant] || e.PrevHash != want {
			t.Fatalf("chain %q forked: event seq %d prev %s follows seq %d hash %s", e.Tenant, e.Seq, e.PrevHash, seqs[e.Tenant]-1, want)
		}
		prev[e.Tenant] = e.Hash
	}
	if seqs["t1"] != writers*each/2 || seqs["t2"] != writers*each/2 {
		t.Errorf("chain lengths %v, want %d each", seqs, writers*each/2)
	}
}

// auditSeqs returns "tenant/seq" of each event.
func auditSeqs(es []audit.Event) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s/%d", e.Tenant, e.Seq))
	}
	return out
}

func (s auditSuite) testQuery(t *testing.T) {
	st := s.open(t)
	actions := []string{"key.configure", "key.test", "vault.unwrap", "key.test", "usage"}
	for i, a := range actions {
		auditRecord(t, st, auditEvent("t1", a, i))
		auditRecord(t, st, auditEvent("t2", a, i))
	}
	auditRecord(t, st, auditEvent("", "tenant.create", 0))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		q    audit.Query
		want []string
	}{
		{"chain", audit.Query{Tenant: "t1", Limit: 10}, []string{"t1/1", "t1/2", "t1/3", "t1/4", "t1/5"}},
		{"platform", audit.Query{Limit: 10}, []string{"/1"}},
		{"limit", audit.Query{Tenant: "t2", Limit: 2}, []string{"t2/1", "t2/2"}},
		{"after", audit.Query{Tenant: "t2", After: audit.Position{Tenant: "t2", Seq: 3}, Limit: 10}, []string{"t2/4", "t2/5"}},
		{"after an earlier chain", audit.Query{Tenant: "t2", After: audit.Position{Tenant: "t1", Seq: 4}, Limit: 10},
			[]string{"t2/1", "t2/2", "t2/3", "t2/4", "t2/5"}},
		{"after a later chain", audit.Query{Tenant: "t1", After: audit.Position{Tenant: "t2", Seq: 1}, Limit: 10}, []string{}},
		{"since", audit.Query{Tenant: "t1", Since: auditAt.Add(3 * time.Second), Limit: 10}, []string{"t1/4", "t1/5"}},
		{"until", audit.Query{Tenant: "t1", Until: auditAt.Add(1 * time.Second), Limit: 10}, []string{"t1/1"}},
		{"since and until", audit.Query{Tenant: "t1", Since: auditAt.Add(time.Second), Until: auditAt.Add(3 * time.Second), Limit: 10}, []string{"t1/2", "t1/3"}},
		{"far bounds", audit.Query{Tenant: "t1", Since: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Limit: 2}, []string{"t1/1", "t1/2"}},
		{"action prefix", audit.Query{Tenant: "t1", ActionPrefix: "key.", Limit: 10}, []string{"t1/1", "t1/2", "t1/4"}},
		{"exact action", audit.Query{Tenant: "t1", ActionPrefix: "usage", Limit: 10}, []string{"t1/5"}},
		{"prefix inside an action", audit.Query{Tenant: "t1", ActionPrefix: "test", Limit: 10}, []string{}},
		{"wildcard-looking prefix", audit.Query{Tenant: "t1", ActionPrefix: "%", Limit: 10}, []string{}},
		{"unknown chain", audit.Query{Tenant: "nobody", Limit: 10}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := st.AuditEvents(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := auditSeqs(es); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("AuditEvents(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func (s auditSuite) testQueryAll(t *testing.T) {
	st := s.open(t)
	for i := range 2 {
		auditRecord(t, st, auditEvent("t2", "key.test", i))
		auditRecord(t, st, auditEvent("", "tenant.create", i))
		auditRecord(t, st, auditEvent("t1", "key.test", i))
	}
	var got []string
	var after audit.Position
	for {
		es, err := st.AuditEvents(context.Background(), audit.Query{All: true, After: after, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, auditSeqs(es)...)
		if len(es) < 4 {
			break
		}
		after = audit.Position{Tenant: es[len(es)-1].Tenant, Seq: es[len(es)-1].Seq}
	}
	want := []string{"/1", "/2", "t1/1", "t1/2", "t2/1", "t2/2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pages of all chains = %v, want %v", got, want)
	}
}

func (s auditSuite) testInvalidLimit(t *testing.T) {
	st := s.open(t)
	for _, limit := range []int{0, -1} {
		if _, err := st.AuditEvents(context.Background(), audit.Query{All: true, Limit: limit}); !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("AuditEvents with limit %d = %v, want ErrInvalidInput", limit, err)
		}
	}
}

func (s auditSuite) testChains(t *testing.T) {
	st := s.open(t)
	cs, err := st.AuditChains(context.Background())
	if err != nil || len(cs) != 0 {
		t.Fatalf("AuditChains of an empty store = %v, %v; want none", cs, err)
	}
	for i, tenant := range []string{"b", "a", "", "b", "c"} {
		auditRecord(t, st, auditEvent(tenant, "key.test", i))
	}
	cs, err = st.AuditChains(context.Background())
	if want := []string{"", "a", "b", "c"}; err != nil || !reflect.DeepEqual(cs, want) {
		t.Errorf("AuditChains = %q, %v; want %q", cs, err, want)
	}
}
