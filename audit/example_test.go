package audit_test

import (
	"context"
	"fmt"
	"os"

	"github.com/openbyok/byok/audit"
)

// A vault call is recorded under the id that was sent to the vault as
// x-ms-client-request-id (kms.WithOperationID), so that the tenant can
// join this log with their Key Vault diagnostics. Verify then recomputes
// the chain.
func Example() {
	ctx := context.Background()
	log := audit.New(newMemStore(), nil) // in production: a *sqlite.DB

	id := audit.NewID()
	// ctx = kms.WithOperationID(ctx, id); provider.Unwrap(ctx, share) ...
	e, err := log.Record(ctx, audit.Event{
		ID:      id,
		Tenant:  "contoso",
		Actor:   audit.Actor{Kind: audit.System, ID: "health-monitor"},
		Action:  "vault.unwrap",
		Target:  "https://contoso-kv.vault.azure.net/keys/cmk/4f0e",
		Outcome: audit.Success,
		Vault: &audit.VaultCall{Operation: "unwrapKey", KeyID: "https://contoso-kv.vault.azure.net/keys/cmk/4f0e",
			Purpose: audit.PurposeBackgroundCheck, RequestID: id},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Seq, e.PrevHash == audit.GenesisHash, e.Hash == audit.ComputeHash(&e))

	r, err := log.Verify(ctx, audit.Filter{Tenant: "contoso"})
	fmt.Println(r.Chains[0].Events, err)

	// Output:
	// 1 true true
	// 1 <nil>
}

// Record refuses anything that looks like a secret.
func ExampleLog_Record_secret() {
	log := audit.New(newMemStore(), nil)
	_, err := log.Record(context.Background(), audit.Event{
		Tenant: "contoso", Actor: audit.Actor{Kind: audit.TenantAdmin, ID: "admin"},
		Action: "key.configure", Outcome: audit.Success,
		Details: map[string]string{"client_secret": "…"},
	})
	fmt.Println(err)
	// Output:
	// byok: audit event details has key "client_secret", which names a secret; an audit event never holds one: leave it out (put a token's id in Target)
}

// A tenant exports its own chain; the lines verify with
// audit/testdata/verify_export.py.
func ExampleLog_Export() {
	ctx := context.Background()
	log := audit.New(newMemStore(), newFakeClock(t0))
	for i, tenant := range []string{"contoso", "fabrikam"} {
		if _, err := log.Record(ctx, audit.Event{ID: fmt.Sprint("event-", i), Tenant: tenant,
			Actor: audit.Actor{Kind: audit.TenantAdmin, ID: "admin"}, Action: "key.test",
			Outcome: audit.Failure, Reason: "the app lacks unwrapKey"}); err != nil {
			fmt.Println(err)
		}
	}
	if _, err := log.Export(ctx, os.Stdout, audit.Filter{Tenant: "contoso"}); err != nil {
		fmt.Println(err)
	}
	_, err := log.Export(ctx, os.Stdout, audit.Filter{}) // no chain named
	fmt.Println(err)
	// Output:
	// {"tenant":"contoso","seq":1,"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"e01b7a72a259e00e95a8586c245a0cba03f0e15935ce460933798450e19d03fb","id":"event-0","time":"2026-07-01T12:00:30.000000005Z","actor":{"kind":"tenant-admin","id":"admin"},"action":"key.test","outcome":"failure","reason":"the app lacks unwrapKey"}
	// byok: audit filter must select exactly one of a tenant, the platform chain or all chains
}
