package audit_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
)

// FuzzRecordExportRoundTrip records events built from arbitrary text and
// checks that every accepted event survives its export line: decoded
// again, it hashes to its hash.
func FuzzRecordExportRoundTrip(f *testing.F) {
	f.Add("t1", "key.rotate", "target", `{"a":1}`, "reason", "k", "v", int64(0))
	f.Add("", "usage", "", `"\u2028"`, "", "é", "\xff", int64(-1))
	f.Add("x\x00y", "vault.unwrap", "<&>", "[1, 2.50e3]", "line\nbreak", "", "", int64(1)<<62)
	f.Fuzz(func(t *testing.T, tenant, action, target, before, reason, dk, dv string, nanos int64) {
		e := audit.Event{Tenant: tenant, Time: time.Unix(0, nanos), Actor: audit.Actor{Kind: audit.Service, ID: "svc"},
			Action: action, Target: target, Before: json.RawMessage(before), Reason: reason, Outcome: audit.Success}
		if dk != "" {
			e.Details = map[string]string{dk: dv}
		}
		got, err := audit.New(newMemStore(), nil).Record(context.Background(), e)
		if err != nil {
			return // refused: nothing to round-trip
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back audit.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("line %s does not decode: %v", b, err)
		}
		if h := audit.ComputeHash(&back); h != got.Hash {
			t.Fatalf("line %s hashes to %s, not its hash %s", b, h, got.Hash)
		}
	})
}
