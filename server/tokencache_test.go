package server

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// Token records are cached, and a revocation still holds: through this
// server at once; made elsewhere (another replica writing the store),
// within Config.TokenCacheTTL.
func TestTokenCacheRevocation(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme", "chat")
	body := map[string]any{"scope": "chat", "plaintext": "aGk="}

	var v tokenView
	e.must(t, 201, "POST", "/v1/tokens", e.operator, map[string]any{"kind": "service", "tenants": []string{"acme"}}).decode(t, &v)
	e.must(t, 200, "POST", "/v1/tenants/acme/encrypt", v.Token, body) // cached now
	e.must(t, 200, "POST", "/v1/tokens/"+v.ID+"/revoke", e.operator, nil)
	if r := e.do(t, "POST", "/v1/tenants/acme/encrypt", v.Token, body); r.status != 401 || r.errCode() != CodeTokenRevoked {
		t.Fatalf("the request after a revocation = %d %s, want 401 token_revoked", r.status, r.body)
	}

	// Another replica: a second handler over the same store, with a short
	// cache, sees a revocation made through the first within its TTL.
	const ttl = 300 * time.Millisecond
	other, err := New(Config{Lifecycle: e.lc, Store: e.db, Audit: e.log, PlatformKMS: e.platform, PlatformKeyID: "fake:prk",
		Now: e.clock.Now, TokenCacheTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(other)
	defer srv.Close()
	replica := &env{srv: srv}
	e.must(t, 201, "POST", "/v1/tokens", e.operator, map[string]any{"kind": "service", "tenants": []string{"acme"}}).decode(t, &v)
	replica.must(t, 200, "POST", "/v1/tenants/acme/encrypt", v.Token, body)
	if err := e.db.RevokeToken(context.Background(), v.ID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	// Within the TTL the other replica still serves from its cache; once
	// its clock passes the TTL, it reads the store and refuses.
	if r := replica.do(t, "POST", "/v1/tenants/acme/encrypt", v.Token, body); r.status != 200 {
		t.Fatalf("the other replica within its TTL = %d %s, want 200 from its cache", r.status, r.body)
	}
	e.clock.Advance(ttl)
	if r := replica.do(t, "POST", "/v1/tenants/acme/encrypt", v.Token, body); r.status != 401 || r.errCode() != CodeTokenRevoked {
		t.Fatalf("the other replica once its TTL passed = %d %s, want 401 token_revoked", r.status, r.body)
	}

	// A negative TTL reads the store on every request: at once.
	uncached, err := New(Config{Lifecycle: e.lc, Store: e.db, Audit: e.log, PlatformKMS: e.platform, PlatformKeyID: "fake:prk",
		Now: e.clock.Now, TokenCacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(uncached)
	defer srv2.Close()
	replica2 := &env{srv: srv2}
	e.must(t, 201, "POST", "/v1/tokens", e.operator, map[string]any{"kind": "service", "tenants": []string{"acme"}}).decode(t, &v)
	replica2.must(t, 200, "POST", "/v1/tenants/acme/encrypt", v.Token, body)
	e.db.RevokeToken(context.Background(), v.ID, e.clock.Now())
	if r := replica2.do(t, "POST", "/v1/tenants/acme/encrypt", v.Token, body); r.status != 401 || r.errCode() != CodeTokenRevoked {
		t.Fatalf("with no token cache, the request after a revocation = %d %s, want 401 token_revoked", r.status, r.body)
	}
}
