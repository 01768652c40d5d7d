package audit_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
)

// golden is the example event of docs/audit.md; goldenHash its hash,
// also given there.
var golden = audit.Event{
	Tenant:   "contoso",
	Seq:      2,
	PrevHash: "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
	ID:       "9f1c0a3b5d7e4f60a1b2c3d4e5f60718",
	Time:     time.Date(2026, 7, 1, 12, 0, 30, 5000, time.UTC),
	Actor:    audit.Actor{Kind: audit.System, ID: "health-monitor"},
	Action:   "vault.unwrap",
	Target:   "https://contoso-kv.vault.azure.net/keys/cmk/4f0e",
	After:    json.RawMessage(`{"state":"revoked"}`),
	Outcome:  audit.Failure,
	Reason:   "Forbidden: the caller lacks permission unwrapKey",
	Vault: &audit.VaultCall{Operation: "unwrapKey", KeyID: "https://contoso-kv.vault.azure.net/keys/cmk/4f0e",
		Purpose: audit.PurposeBackgroundCheck, RequestID: "9f1c0a3b5d7e4f60a1b2c3d4e5f60718"},
	Details: map[string]string{"status": "403", "code": "Forbidden"},
}

const goldenHash = "d10fa470f8a86d0be18f38038234486904776601f11dfbead8c28bd8dabfa2c4"

// goldenLine is the example event's export line in docs/audit.md.
const goldenLine = `{"tenant":"contoso","seq":2,"prev_hash":"5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef","hash":"d10fa470f8a86d0be18f38038234486904776601f11dfbead8c28bd8dabfa2c4","id":"9f1c0a3b5d7e4f60a1b2c3d4e5f60718","time":"2026-07-01T12:00:30.000005000Z","actor":{"kind":"system","id":"health-monitor"},"action":"vault.unwrap","target":"https://contoso-kv.vault.azure.net/keys/cmk/4f0e","after":"{\"state\":\"revoked\"}","outcome":"failure","reason":"Forbidden: the caller lacks permission unwrapKey","vault":{"operation":"unwrapKey","key_id":"https://contoso-kv.vault.azure.net/keys/cmk/4f0e","purpose":"background-check","request_id":"9f1c0a3b5d7e4f60a1b2c3d4e5f60718"},"details":{"code":"Forbidden","status":"403"}}`

func TestGoldenLine(t *testing.T) {
	e := golden
	e.Hash = goldenHash
	b, err := json.Marshal(e)
	if err != nil || string(b) != goldenLine {
		t.Errorf("export line of the example event =\n%s (%v)\nwant the line of docs/audit.md\n%s", b, err, goldenLine)
	}
}

func TestComputeHashGolden(t *testing.T) {
	e := golden
	if h := audit.ComputeHash(&e); h != goldenHash {
		t.Errorf("hash of the example event of docs/audit.md = %s, want %s", h, goldenHash)
	}
	e.Hash = "anything" // not covered
	if h := audit.ComputeHash(&e); h != goldenHash {
		t.Errorf("the hash covers the Hash field")
	}
}

// TestComputeHashCoversEveryField changes each field in turn, including
// moving bytes from one field to the next, and expects a new hash each
// time.
func TestComputeHashCoversEveryField(t *testing.T) {
	edits := map[string]func(*audit.Event){
		"tenant":             func(e *audit.Event) { e.Tenant = "fabrikam" },
		"tenant to platform": func(e *audit.Event) { e.Tenant = "" },
		"seq":                func(e *audit.Event) { e.Seq = 3 },
		"prev hash":          func(e *audit.Event) { e.PrevHash = audit.GenesisHash },
		"id":                 func(e *audit.Event) { e.ID = "x" },
		"time":               func(e *audit.Event) { e.Time = e.Time.Add(time.Nanosecond) },
		"actor kind":         func(e *audit.Event) { e.Actor.Kind = audit.Operator },
		"actor id":           func(e *audit.Event) { e.Actor.ID = "scheduler" },
		"action":             func(e *audit.Event) { e.Action = "vault.wrap" },
		"target":             func(e *audit.Event) { e.Target = "" },
		"before":             func(e *audit.Event) { e.Before = json.RawMessage(`{"state":"active"}`) },
		"after":              func(e *audit.Event) { e.After = nil },
		"after to before":    func(e *audit.Event) { e.Before, e.After = e.After, nil },
		"outcome":            func(e *audit.Event) { e.Outcome = audit.Denied },
		"reason":             func(e *audit.Event) { e.Reason += "." },
		"no vault call":      func(e *audit.Event) { e.Vault = nil },
		"vault operation":    func(e *audit.Event) { v := *e.Vault; v.Operation = "wrapKey"; e.Vault = &v },
		"vault key id":       func(e *audit.Event) { v := *e.Vault; v.KeyID += "0"; e.Vault = &v },
		"vault purpose":      func(e *audit.Event) { v := *e.Vault; v.Purpose = audit.PurposeTest; e.Vault = &v },
		"vault request id":   func(e *audit.Event) { v := *e.Vault; v.RequestID = "other"; e.Vault = &v },
		"detail value":       func(e *audit.Event) { e.Details = map[string]string{"status": "404", "code": "Forbidden"} },
		"detail key":         func(e *audit.Event) { e.Details = map[string]string{"statuS": "403", "code": "Forbidden"} },
		"detail removed":     func(e *audit.Event) { e.Details = map[string]string{"status": "403"} },
		"no details":         func(e *audit.Event) { e.Details = nil },
		"target into reason": func(e *audit.Event) {
			e.Reason = e.Target[len(e.Target)-1:] + e.Reason
			e.Target = e.Target[:len(e.Target)-1]
		},
		"detail key into value": func(e *audit.Event) { e.Details = map[string]string{"statu": "s403", "code": "Forbidden"} },
	}
	seen := map[string]string{goldenHash: "unedited"}
	for name, edit := range edits {
		e := golden
		edit(&e)
		h := audit.ComputeHash(&e)
		if prev, ok := seen[h]; ok {
			t.Errorf("edit %q gives the same hash as %q", name, prev)
		}
		seen[h] = name
	}
}

func TestComputeHashDetailsOrder(t *testing.T) {
	a, b := golden, golden
	a.Details = map[string]string{"a": "1", "b": "2", "c": "3"}
	b.Details = map[string]string{"c": "3", "a": "1", "b": "2"}
	if audit.ComputeHash(&a) != audit.ComputeHash(&b) {
		t.Error("the hash depends on the order details were inserted in")
	}
	a.Details, b.Details = nil, map[string]string{}
	if audit.ComputeHash(&a) != audit.ComputeHash(&b) {
		t.Error("nil and empty details hash differently")
	}
}
