package audit

import (
	"encoding/json"
	"fmt"
	"time"
)

// wireEvent is the JSON form of an Event: one line of an export. Every
// field the hash covers appears as the exact string the hash covers, so
// that another tool can verify an export from the lines alone: Time in
// the canonical layout, Before and After as JSON strings holding the JSON
// text (not as nested values, which a re-encoding would alter).
type wireEvent struct {
	Tenant   string            `json:"tenant"`
	Seq      uint64            `json:"seq"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
	ID       string            `json:"id"`
	Time     string            `json:"time"`
	Actor    Actor             `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target,omitempty"`
	Before   string            `json:"before,omitempty"`
	After    string            `json:"after,omitempty"`
	Outcome  Outcome           `json:"outcome"`
	Reason   string            `json:"reason,omitempty"`
	Vault    *VaultCall        `json:"vault,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
}

// MarshalJSON encodes e in the line format of docs/audit.md.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireEvent{
		Tenant: e.Tenant, Seq: e.Seq, PrevHash: e.PrevHash, Hash: e.Hash,
		ID: e.ID, Time: canonicalTime(e.Time), Actor: e.Actor, Action: e.Action, Target: e.Target,
		Before: string(e.Before), After: string(e.After), Outcome: e.Outcome, Reason: e.Reason,
		Vault: e.Vault, Details: e.Details,
	})
}

// UnmarshalJSON decodes the line format of docs/audit.md.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return fmt.Errorf("audit: event time %q is not RFC 3339: %w", w.Time, err)
	}
	*e = Event{
		Tenant: w.Tenant, Seq: w.Seq, PrevHash: w.PrevHash, Hash: w.Hash,
		ID: w.ID, Time: t.UTC(), Actor: w.Actor, Action: w.Action, Target: w.Target,
		Outcome: w.Outcome, Reason: w.Reason, Vault: w.Vault, Details: w.Details,
	}
	if w.Before != "" {
		e.Before = json.RawMessage(w.Before)
	}
	if w.After != "" {
		e.After = json.RawMessage(w.After)
	}
	return nil
}
