package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/openbyok/byok"
)

// ErrTampered is wrapped by the error of [Log.Verify] when a chain is
// broken: a row was edited, deleted, inserted or reordered.
var ErrTampered = errors.New("audit: chain broken")

// MaxFindings is the most findings a [Report] lists; past it, Verify
// counts the rest in Report.MoreFindings.
const MaxFindings = 1000

// Report is the result of [Log.Verify].
type Report struct {
	// Chains lists every chain verified, with its event count and head.
	Chains []ChainStatus
	// Findings lists every problem found, in chain then sequence order.
	Findings []Finding
	// MoreFindings counts the problems past MaxFindings.
	MoreFindings int
}

// ChainStatus is what Verify read of one chain.
type ChainStatus struct {
	Tenant string // "" for the platform chain
	Events uint64 // rows read
	Head   Head   // the last row's sequence number and stored hash
}

// Finding is one problem in a chain, at a sequence number.
type Finding struct {
	Tenant  string
	Seq     uint64
	Problem string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s seq %d: %s", chainName(f.Tenant), f.Seq, f.Problem)
}

// chainName names a chain in messages.
func chainName(tenant string) string {
	if tenant == "" {
		return "platform chain"
	}
	return fmt.Sprintf("chain of tenant %q", tenant)
}

// TamperError is the error of a Verify that found problems.
type TamperError struct {
	Findings []Finding // the first findings, at most MaxFindings
	More     int       // findings past those
}

func (e *TamperError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "audit: %d problem(s) found; the log was altered outside byok:", len(e.Findings)+e.More)
	for i, f := range e.Findings {
		if i == 3 {
			fmt.Fprintf(&b, " … and %d more", len(e.Findings)-3+e.More)
			break
		}
		b.WriteString(" " + f.String() + ";")
	}
	return strings.TrimSuffix(b.String(), ";")
}

func (e *TamperError) Unwrap() error { return ErrTampered }

// Verify reads the chains f selects from the first row to the last and
// recomputes them. It reports, at the sequence number where it sees it:
//
//   - a row whose stored hash is not the hash of its fields: edited, or
//     moved to another sequence number;
//   - a row whose prev_hash is not the hash of the row before it: the row
//     before was replaced (edited with its hash recomputed), or rows were
//     inserted or reordered;
//   - a gap in the sequence numbers: rows deleted;
//   - a first row whose prev_hash is not [GenesisHash]: the start of the
//     chain was cut off.
//
// Verify checks whole chains: a filter with a time range or an action
// prefix is refused. Deleting the newest rows of a chain leaves a shorter
// chain that checks: compare the heads of the report with heads kept
// elsewhere (docs/audit.md) to catch that.
//
// The error is a [*TamperError] (wrapping [ErrTampered]) if anything was
// found, and the report is complete either way; any other error means the
// chains could not be read.
func (l *Log) Verify(ctx context.Context, f Filter) (Report, error) {
	if err := f.check(); err != nil {
		return Report{}, err
	}
	if !f.Since.IsZero() || !f.Until.IsZero() || f.ActionPrefix != "" {
		return Report{}, &byok.InputError{Arg: "audit verify filter", Reason: "has a time range or action prefix; Verify checks whole chains: select chains only"}
	}
	chains := []string{f.Tenant}
	if f.All {
		var err error
		if chains, err = l.store.AuditChains(ctx); err != nil {
			return Report{}, fmt.Errorf("audit: verify: %w", err)
		}
	}
	var r Report
	for _, c := range chains {
		if err := l.verifyChain(ctx, c, &r); err != nil {
			return r, err
		}
	}
	if len(r.Findings) > 0 {
		return r, &TamperError{Findings: r.Findings, More: r.MoreFindings}
	}
	return r, nil
}

// verifyChain checks the chain of tenant and adds its status and findings
// to r.
func (l *Log) verifyChain(ctx context.Context, tenant string, r *Report) error {
	st := ChainStatus{Tenant: tenant}
	find := func(seq uint64, format string, args ...any) {
		if len(r.Findings) == MaxFindings {
			r.MoreFindings++
			return
		}
		r.Findings = append(r.Findings, Finding{Tenant: tenant, Seq: seq, Problem: fmt.Sprintf(format, args...)})
	}
	prev := Head{Hash: GenesisHash}
	for {
		es, err := l.store.AuditEvents(ctx, Query{Tenant: tenant, After: Position{Tenant: tenant, Seq: prev.Seq}, Limit: pageSize})
		if err != nil {
			return fmt.Errorf("audit: verify %s: %w", chainName(tenant), err)
		}
		for i := range es {
			e := &es[i]
			switch {
			case e.Seq != prev.Seq+1 && prev.Seq+1 == e.Seq-1:
				find(prev.Seq+1, "missing: the chain goes from seq %d to seq %d (a row was deleted)", prev.Seq, e.Seq)
			case e.Seq != prev.Seq+1:
				find(prev.Seq+1, "missing up to seq %d: the chain goes from seq %d to seq %d (rows were deleted)", e.Seq-1, prev.Seq, e.Seq)
			case e.PrevHash != prev.Hash && prev.Seq == 0:
				find(e.Seq, "prev_hash is %s, not the genesis hash: the first row is not the chain's start (rows before it were deleted)", short(e.PrevHash))
			case e.PrevHash != prev.Hash:
				find(e.Seq, "prev_hash %s is not the hash %s of seq %d: seq %d was replaced, or rows were inserted or reordered",
					short(e.PrevHash), short(prev.Hash), prev.Seq, prev.Seq)
			}
			if h := ComputeHash(e); h != e.Hash {
				find(e.Seq, "stored hash %s is not the hash %s of the row's fields: the row was edited or moved", short(e.Hash), short(h))
			}
			prev = Head{Seq: e.Seq, Hash: e.Hash}
			st.Events++
		}
		if len(es) < pageSize {
			break
		}
	}
	st.Head = prev
	if st.Events == 0 {
		st.Head = Head{}
	}
	r.Chains = append(r.Chains, st)
	return nil
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}
