package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle/record"
)

// LegacyOptions are the Azure fields that records saved before migration
// 0007 held at the top of their settings, and that the migration moves
// into Options.
var LegacyOptions = map[string]string{"directory_id": "d", "client_id": "c", "credential": "client-secret"}

// RunOptionsMigration checks migration 0007 (provider options). It saves
// a record for tenant t1 in st, then legacy(t) must rewrite that record's
// document into the layout before 0007 (the [LegacyOptions] at its top, no
// "options") and mark 0007 as not applied, and reopen(t) must close the
// store and open it again, which applies 0007. The record must then read
// back with LegacyOptions as its Options and every other field as saved:
// a tenant's settings, hash, last test and sealed secret survive.
func RunOptionsMigration(t *testing.T, st record.Store, legacy func(t *testing.T), reopen func(t *testing.T) record.Store) {
	ctx := context.Background()
	at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	share := kms.Wrapped{KeyID: "fake:k/v1", Algorithm: "A256GCM", Ciphertext: []byte{1, 2, 3}}
	if err := st.CreateTenant(ctx, byok.TenantRecord{ID: "t1", Policy: byok.Grace, Created: at},
		[]byok.TenantKeyRecord{{Tenant: "t1", Kind: byok.PlatformManaged, Epoch: 1, CustomerShare: share, PlatformShare: share, Created: at}}); err != nil {
		t.Fatal(err)
	}
	saved := record.Record{Tenant: "t1", Version: 1, State: record.StateDraft,
		Settings:     record.Settings{Provider: "azure-key-vault", KeyID: "https://v.vault.azure.net/keys/k"},
		SettingsHash: "hash-of-v1", SealedSecret: kms.Wrapped{KeyID: "fake:prk/v1", Algorithm: "A256GCM", Ciphertext: []byte{9}},
		Coverage: record.AllScopes, LastTest: &record.Report{SettingsHash: "hash-of-v1", KeyID: "https://v.vault.azure.net/keys/k/v1",
			Checks: []record.Check{{Name: "round-trip", Outcome: record.Pass}}, At: at}, Updated: at}
	if err := st.PutKeyRecord(ctx, saved); err != nil {
		t.Fatal(err)
	}
	legacy(t)
	st = reopen(t)
	got, err := st.KeyRecord(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	var options map[string]string
	if err := json.Unmarshal(got.Settings.Options, &options); err != nil || !reflect.DeepEqual(options, LegacyOptions) {
		t.Fatalf("options after the migration: %s (%v), want %v", got.Settings.Options, err, LegacyOptions)
	}
	got.Settings.Options = nil
	if !reflect.DeepEqual(got, saved) {
		t.Fatalf("record after the migration:\n got %+v\nwant %+v", got, saved)
	}
}
