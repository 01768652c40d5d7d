package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 30, 5, time.UTC)

// valid returns a valid event of tenant t1.
func valid() audit.Event {
	return audit.Event{
		Tenant: "t1",
		Actor:  audit.Actor{Kind: audit.TenantAdmin, ID: "admin@contoso"},
		Action: "key.configure", Target: "https://contoso.vault.azure.net/keys/cmk",
		Before: json.RawMessage(`{"state":"none"}`), After: json.RawMessage(`{ "state" : "draft" }`),
		Outcome: audit.Success,
	}
}

func TestRecord(t *testing.T) {
	s := newMemStore()
	clock := newFakeClock(t0.In(time.FixedZone("UTC+1", 3600)))
	log := audit.New(s, clock)
	ctx := context.Background()

	first, err := log.Record(ctx, valid())
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != 1 || first.PrevHash != audit.GenesisHash {
		t.Errorf("first event: seq %d, prev %s; want 1 after the genesis hash", first.Seq, first.PrevHash)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(first.ID) {
		t.Errorf("ID = %q, want 32 hex digits", first.ID)
	}
	if !first.Time.Equal(t0) || first.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want the clock's %v in UTC", first.Time, t0)
	}
	if string(first.After) != `{"state":"draft"}` {
		t.Errorf("After = %s, want it compacted", first.After)
	}
	if first.Hash != audit.ComputeHash(&first) {
		t.Errorf("Hash = %s, want ComputeHash = %s", first.Hash, audit.ComputeHash(&first))
	}

	e := valid()
	e.ID = "given-id"
	e.Time = t0.Add(time.Hour)
	e.Vault = &audit.VaultCall{} // no call
	second, err := log.Record(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq != 2 || second.PrevHash != first.Hash || second.ID != "given-id" || !second.Time.Equal(e.Time) || second.Vault != nil {
		t.Errorf("second event = %+v; want seq 2 after the first, the given id and time, no vault call", second)
	}
	if got := s.events("t1"); len(got) != 2 || got[1].Hash != second.Hash {
		t.Errorf("store holds %v", got)
	}

	other, err := log.Record(ctx, audit.Event{Actor: audit.Actor{Kind: audit.Operator, ID: "op"}, Action: "tenant.create", Target: "t2", Outcome: audit.Success})
	if err != nil {
		t.Fatal(err)
	}
	if other.Tenant != "" || other.Seq != 1 {
		t.Errorf("platform event: chain %q seq %d, want the platform chain's seq 1", other.Tenant, other.Seq)
	}
}

func TestRecordDuplicateID(t *testing.T) {
	log := audit.New(newMemStore(), nil)
	e := valid()
	e.ID = audit.NewID()
	if _, err := log.Record(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if _, err := log.Record(context.Background(), e); !errors.Is(err, byok.ErrExists) || !strings.Contains(err.Error(), "key.configure") {
		t.Errorf("second Record of id %s = %v, want ErrExists naming the action", e.ID, err)
	}
}

func TestRecordStoreError(t *testing.T) {
	s := newMemStore()
	boom := errors.New("disk full")
	s.fail["t1"] = boom
	if _, err := audit.New(s, nil).Record(context.Background(), valid()); !errors.Is(err, boom) {
		t.Errorf("Record = %v, want the store's error", err)
	}
}

var invalidEvents = []struct {
	name string
	edit func(*audit.Event)
	arg  string // substring of InputError.Arg
}{
	{"empty action", func(e *audit.Event) { e.Action = "" }, "action"},
	{"uppercase action", func(e *audit.Event) { e.Action = "Key.rotate" }, "action"},
	{"action starting with a digit", func(e *audit.Event) { e.Action = "1key" }, "action"},
	{"action with a space", func(e *audit.Event) { e.Action = "key rotate" }, "action"},
	{"long action", func(e *audit.Event) { e.Action = strings.Repeat("a", 65) }, "action"},
	{"unknown actor kind", func(e *audit.Event) { e.Actor.Kind = "root" }, "actor kind"},
	{"no actor kind", func(e *audit.Event) { e.Actor.Kind = "" }, "actor kind"},
	{"no actor id", func(e *audit.Event) { e.Actor.ID = "" }, "actor id"},
	{"unknown outcome", func(e *audit.Event) { e.Outcome = "ok" }, "outcome"},
	{"no outcome", func(e *audit.Event) { e.Outcome = "" }, "outcome"},
	{"before not JSON", func(e *audit.Event) { e.Before = json.RawMessage(`{state}`) }, "before"},
	{"before not UTF-8", func(e *audit.Event) { e.Before = json.RawMessage("{\"\xff\":0}") }, "before"},
	{"after two values", func(e *audit.Event) { e.After = json.RawMessage(`1 2`) }, "after"},
	{"before too large", func(e *audit.Event) { e.Before = json.RawMessage(`"` + strings.Repeat("x", audit.MaxJSONLen) + `"`) }, "before"},
	{"secret member", func(e *audit.Event) { e.After = json.RawMessage(`{"client_secret":"s3cr3t"}`) }, "after"},
	{"nested secret member", func(e *audit.Event) { e.Before = json.RawMessage(`{"cred":[{"Password":"x"}]}`) }, "before"},
	{"secret member as a number", func(e *audit.Event) { e.After = json.RawMessage(`{"pin":1,"apiKey":12345}`) }, "after"},
	{"long target", func(e *audit.Event) { e.Target = strings.Repeat("t", audit.MaxFieldLen+1) }, "target"},
	{"target not UTF-8", func(e *audit.Event) { e.Target = "\xff" }, "target"},
	{"long reason", func(e *audit.Event) { e.Reason = strings.Repeat("r", audit.MaxTextLen+1) }, "reason"},
	{"long tenant", func(e *audit.Event) { e.Tenant = strings.Repeat("t", audit.MaxFieldLen+1) }, "tenant"},
	{"time before 1678", func(e *audit.Event) { e.Time = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
	{"time after 2262", func(e *audit.Event) { e.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
	{"vault purpose unknown", func(e *audit.Event) {
		e.Vault = &audit.VaultCall{Operation: "unwrapKey", KeyID: "k", Purpose: "curiosity", RequestID: "r"}
	}, "vault purpose"},
	{"vault key id too long", func(e *audit.Event) {
		e.Vault = &audit.VaultCall{Operation: "unwrapKey", KeyID: strings.Repeat("k", audit.MaxFieldLen+1), Purpose: audit.PurposeTest}
	}, "vault key id"},
	{"empty detail key", func(e *audit.Event) { e.Details = map[string]string{"": "x"} }, "details"},
	{"long detail value", func(e *audit.Event) { e.Details = map[string]string{"k": strings.Repeat("v", audit.MaxTextLen+1)} }, "detail k"},
	{"too many details", func(e *audit.Event) {
		e.Details = map[string]string{}
		for i := range audit.MaxDetails + 1 {
			e.Details[string(rune('a'+i%26))+strings.Repeat("x", i)] = ""
		}
	}, "details"},
	{"detail secret", func(e *audit.Event) { e.Details = map[string]string{"secret": "x"} }, "details"},
	{"detail client_secret", func(e *audit.Event) { e.Details = map[string]string{"client_secret": ""} }, "details"},
	{"detail Token", func(e *audit.Event) { e.Details = map[string]string{"Token": "x"} }, "details"},
	{"detail bearer-token", func(e *audit.Event) { e.Details = map[string]string{"bearer-token": "x"} }, "details"},
	{"detail password", func(e *audit.Event) { e.Details = map[string]string{"password": "x"} }, "details"},
	{"detail key_material", func(e *audit.Event) { e.Details = map[string]string{"key_material": "x"} }, "details"},
	{"detail privateKey", func(e *audit.Event) { e.Details = map[string]string{"privateKey": "x"} }, "details"},
	{"detail API-Key", func(e *audit.Event) { e.Details = map[string]string{"API-Key": "x"} }, "details"},
}

func TestRecordInvalid(t *testing.T) {
	for _, tc := range invalidEvents {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore()
			e := valid()
			tc.edit(&e)
			_, err := audit.New(s, nil).Record(context.Background(), e)
			var ie *byok.InputError
			if !errors.As(err, &ie) || !errors.Is(err, byok.ErrInvalidInput) {
				t.Fatalf("Record = %v, want a *byok.InputError", err)
			}
			if !strings.Contains(ie.Arg, tc.arg) {
				t.Errorf("error names %q, want %q: %v", ie.Arg, tc.arg, err)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "12345") {
				t.Errorf("error %q repeats the secret value", err)
			}
			if n := len(s.events(e.Tenant)); n != 0 {
				t.Errorf("%d events stored after a refused Record", n)
			}
		})
	}
}

func TestRecordAllowsSecretFlags(t *testing.T) {
	for _, raw := range []string{
		`{"client_secret":""}`, `{"has_client_secret":true}`, `{"token":null}`,
		`{"config":{"client_secret":"","tenant":"x"}}`, `{"credential":"client-secret","secret_set":true}`, `{"key_id":"https://v/keys/k","state":"active"}`, `[1,"token"]`, `"password"`,
	} {
		e := valid()
		e.After = json.RawMessage(raw)
		e.Details = map[string]string{"key_id": "k", "scope": "s"}
		if _, err := audit.New(newMemStore(), nil).Record(context.Background(), e); err != nil {
			t.Errorf("Record with after %s: %v", raw, err)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := audit.NewID()
		if len(id) != 32 || seen[id] {
			t.Fatalf("NewID = %q: want 32 hex digits, never repeated", id)
		}
		seen[id] = true
	}
}
