package audit_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

func TestVerifyIntact(t *testing.T) {
	s, log := populate(t, 4)
	r, err := log.Verify(context.Background(), audit.Filter{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var chains []string
	for _, c := range r.Chains {
		chains = append(chains, c.Tenant)
		last := s.events(c.Tenant)[3]
		if c.Events != 4 || c.Head != (audit.Head{Seq: 4, Hash: last.Hash}) {
			t.Errorf("chain %q: %d events, head %v; want 4, seq 4 %s", c.Tenant, c.Events, c.Head, last.Hash)
		}
	}
	if !reflect.DeepEqual(chains, []string{"", "a", "b"}) || len(r.Findings) != 0 {
		t.Errorf("report = %+v", r)
	}

	r, err = log.Verify(context.Background(), audit.Filter{Tenant: "nobody"})
	if err != nil || len(r.Chains) != 1 || r.Chains[0] != (audit.ChainStatus{Tenant: "nobody"}) {
		t.Errorf("Verify of an empty chain = %+v, %v; want one empty chain", r, err)
	}
}

func TestVerifyFindsEdits(t *testing.T) {
	s, log := populate(t, 4)
	s.edit("a", 2, func(e *audit.Event) { e.Details = map[string]string{"z": "edited"} })
	s.edit("b", 3, func(e *audit.Event) { e.Time = e.Time.Add(time.Nanosecond); e.Hash = audit.ComputeHash(e) })

	// Tenant a sees only its own chain's problem.
	r, err := log.Verify(context.Background(), audit.Filter{Tenant: "a"})
	if !errors.Is(err, audit.ErrTampered) || len(r.Findings) != 1 || r.Findings[0].Tenant != "a" || r.Findings[0].Seq != 2 {
		t.Fatalf("Verify(a) = %+v, %v; want one finding at a/2", r.Findings, err)
	}
	if !strings.Contains(err.Error(), `chain of tenant "a" seq 2: stored hash`) {
		t.Errorf("error %q does not say which row and why", err)
	}

	r, err = log.Verify(context.Background(), audit.Filter{All: true})
	var te *audit.TamperError
	if !errors.As(err, &te) {
		t.Fatalf("Verify(all) = %v, want a TamperError", err)
	}
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.String())
	}
	want := []string{
		`chain of tenant "a" seq 2: stored hash`,
		`chain of tenant "b" seq 4: prev_hash`, // seq 3 rehashed: the link from 4 breaks
	}
	if len(got) != len(want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("finding %d = %q, want it to start %q", i, got[i], want[i])
		}
	}
	if r, err := log.Verify(context.Background(), audit.Filter{Platform: true}); err != nil || len(r.Chains) != 1 {
		t.Errorf("Verify(platform) = %+v, %v; want the intact platform chain", r, err)
	}
}

func TestVerifyCapsFindings(t *testing.T) {
	s := newMemStore()
	log := audit.New(s, nil)
	const n = audit.MaxFindings + 7
	for range n {
		if _, err := log.Record(context.Background(), valid()); err != nil {
			t.Fatal(err)
		}
	}
	for seq := uint64(1); seq <= n; seq++ {
		s.edit("t1", seq, func(e *audit.Event) { e.Reason = "edited" })
	}
	r, err := log.Verify(context.Background(), audit.Filter{Tenant: "t1"})
	var te *audit.TamperError
	if !errors.As(err, &te) || len(r.Findings) != audit.MaxFindings || r.MoreFindings != 7 || te.More != 7 {
		t.Fatalf("Verify = %d findings + %d more, %v; want %d + 7", len(r.Findings), r.MoreFindings, err, audit.MaxFindings)
	}
	if !strings.Contains(err.Error(), "1007 problem(s)") || !strings.Contains(err.Error(), "and 1004 more") {
		t.Errorf("error %q does not count the problems", err)
	}
	if r.Chains[0].Events != n {
		t.Errorf("chain read %d events, want %d", r.Chains[0].Events, n)
	}
}

func TestVerifyRefusesPartialFilters(t *testing.T) {
	_, log := populate(t, 1)
	for _, f := range []audit.Filter{
		{},
		{Tenant: "a", All: true},
		{Tenant: "a", Since: t0},
		{All: true, Until: t0},
		{Platform: true, ActionPrefix: "key."},
	} {
		if _, err := log.Verify(context.Background(), f); !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("Verify(%+v) = %v, want ErrInvalidInput", f, err)
		}
	}
}

func TestStoreErrors(t *testing.T) {
	log := audit.New(errStore{}, nil)
	ctx := context.Background()
	for _, f := range []audit.Filter{{All: true}, {Tenant: "a"}} {
		if _, err := log.Verify(ctx, f); !errors.Is(err, errRead) || errors.Is(err, audit.ErrTampered) {
			t.Errorf("Verify(%+v) over a failing store = %v, want the read error, not ErrTampered", f, err)
		}
	}
	if _, _, err := log.List(ctx, audit.Filter{Tenant: "a"}, "", 10); !errors.Is(err, errRead) {
		t.Errorf("List over a failing store = %v, want the read error", err)
	}
	if _, err := log.Export(ctx, &strings.Builder{}, audit.Filter{Tenant: "a"}); !errors.Is(err, errRead) {
		t.Errorf("Export over a failing store = %v, want the read error", err)
	}
}

// errStore fails every call.
type errStore struct{}

var errRead = errors.New("store unreachable")

func (errStore) AppendAudit(context.Context, string, func(audit.Head) ([]audit.Event, error)) error {
	return errRead
}
func (errStore) AuditEvents(context.Context, audit.Query) ([]audit.Event, error) { return nil, errRead }
func (errStore) AuditChains(context.Context) ([]string, error)                   { return nil, errRead }
