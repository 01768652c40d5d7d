package server

import (
	"context"
	"testing"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/server/token"
)

// Data calls are counted per tenant and scope, and recorded as per-minute
// usage events in the tenant's audit chain, not one row per operation.
func TestUsageCounted(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme", "chat")
	svc := e.token(t, token.Service, "acme")
	var ct struct{ Ciphertext string }
	for range 3 {
		e.must(t, 200, "POST", "/v1/tenants/acme/encrypt", svc, map[string]any{"scope": "chat", "plaintext": "aGk="}).decode(t, &ct)
	}
	e.must(t, 200, "POST", "/v1/tenants/acme/decrypt", svc, map[string]any{"scope": "chat", "ciphertext": ct.Ciphertext})
	e.must(t, 200, "POST", "/v1/tenants/acme/reencrypt", svc, map[string]any{"scope": "chat", "ciphertext": ct.Ciphertext})
	e.do(t, "POST", "/v1/tenants/acme/decrypt", svc, map[string]any{"scope": "chat", "ciphertext": "AAAA"}) // fails: not counted
	if err := e.usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	events, _, err := e.log.List(context.Background(), audit.Filter{Tenant: "acme", ActionPrefix: "usage"}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d usage events, want 1 for the minute: %+v", len(events), events)
	}
	if d := events[0].Details; events[0].Target != "chat" || d["encrypt"] != "4" || d["decrypt"] != "2" {
		t.Fatalf("usage event: target %q, details %v; want chat with 4 encrypts and 2 decrypts", events[0].Target, d)
	}
}
