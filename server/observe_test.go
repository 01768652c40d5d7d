package server

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server/token"
)

// TestLogsHoldNoSecret makes requests that carry tokens, a client secret
// and plaintext, and checks that none reaches the request log, while the
// log still says who called what.
func TestLogsHoldNoSecret(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme", "chat")
	admin := e.token(t, token.TenantAdmin, "acme")
	svc := e.token(t, token.Service, "acme")
	plaintext := []byte("PLAINTEXT-MARKER-do-not-log")
	e.must(t, 200, "PUT", "/v1/tenants/acme/key", admin, map[string]any{
		"key_id": e.cmk, "directory_id": "d", "client_id": "c", "credential": "client-secret", "secret": "CLIENT-SECRET-MARKER",
	})
	ct := e.encrypt(t, svc, "acme", "chat", plaintext)
	e.mustDecrypt(t, svc, "acme", "chat", ct, plaintext)
	e.do(t, "GET", "/v1/tenants", svc[:len(svc)-3]+"abc", nil) // a forged token

	logs := e.logText()
	_, adminID, _, _ := token.Parse(admin)
	for _, secret := range []string{
		e.operator, admin, svc,
		e.operator[len(e.operator)-token.SecretLen:], admin[len(admin)-token.SecretLen:], svc[len(svc)-token.SecretLen:],
		"CLIENT-SECRET-MARKER", string(plaintext), base64.StdEncoding.EncodeToString(plaintext),
		base64.StdEncoding.EncodeToString(ct),
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the request log contains a secret or payload %.12q…", secret)
		}
	}
	for _, want := range []string{`"token_id":"` + adminID + `"`, `"route":"/v1/tenants/{tenant}/encrypt"`, `"tenant":"acme"`, `"status":401`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the request log lacks %s", want)
		}
	}
}

// An eviction to stay within a cache's limit is counted under reason
// "limit", not "idle".
func TestCacheEvictionMetrics(t *testing.T) {
	e := newEnv(t, func(c *lifecycle.Config) { c.Keyring.MaxDEKs = 1 })
	e.tenant(t, "acme", "chat", "mail")
	svc := e.token(t, token.Service, "acme")
	e.encrypt(t, svc, "acme", "chat", []byte("x"))
	e.encrypt(t, svc, "acme", "mail", []byte("y")) // evicts chat's DEK
	m := string(e.must(t, 200, "GET", "/metrics", "", nil).body)
	for _, want := range []string{
		`byok_keyring_cache_evictions_total{cache="deks",reason="limit"} 1`,
		`byok_keyring_cache_evictions_total{cache="deks",reason="idle"} 0`,
		`byok_keyring_cache_entries{cache="deks"} 1`,
		`byok_keyring_cache_limit{cache="deks"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestProbesAndMetrics(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme", "chat")
	svc := e.token(t, token.Service, "acme")
	e.must(t, 200, "GET", "/healthz", "", nil)
	if r := e.must(t, 200, "GET", "/readyz", "", nil); !strings.Contains(string(r.body), `"platform_key":"ok"`) {
		t.Errorf("readyz = %s, want platform_key ok", r.body)
	}
	ct := e.encrypt(t, svc, "acme", "chat", []byte("x"))
	for range 3 {
		e.mustDecrypt(t, svc, "acme", "chat", ct, []byte("x"))
	}
	m := string(e.must(t, 200, "GET", "/metrics", "", nil).body)
	for _, want := range []string{
		`byok_operations_total{op="decrypt",outcome="ok"} 3`,
		`byok_cache_hits_total{op="decrypt"} 3`,
		`byok_kms_calls_total{op="unwrap",outcome="success",provider="platform"}`,
		`byok_http_requests_total{code="200",route="POST /v1/tenants/{tenant}/decrypt"} 3`,
		`byok_tenant_keys{state="none"} 1`,
		`byok_operation_duration_seconds_bucket{op="encrypt"`,
		`byok_keyring_cache_entries{cache="deks"} 1`,
		`byok_keyring_cache_hits_total{cache="deks"} 3`,
		`byok_keyring_cache_misses_total{cache="deks"} 1`,
		`byok_keyring_cache_misses_total{cache="tenant_keys"} 1`,
		`byok_keyring_cache_evictions_total{cache="tenant_keys",reason="idle"} 0`,
		`byok_keyring_cache_limit{cache="tenant_keys"} 50000`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, `byok_cache_hits_total{op="encrypt"}`) {
		t.Error("the first encrypt, which loaded the tenant key from the provider, counts as a cache hit")
	}
	if strings.Contains(m, `"acme"`) {
		t.Error("a tenant id is a metric label value")
	}
	// The platform key stops answering: not ready.
	e.platform.Fail(kms.Authoritative, kms.ReasonDisabled)
	e.clock.Advance(readyTTL)
	if r := e.do(t, "GET", "/readyz", "", nil); r.status != 503 || !strings.Contains(string(r.body), "platform root key") {
		t.Errorf("readyz with the platform key failing = %d %s, want 503 naming it", r.status, r.body)
	}
}

func TestBatch(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme", "chat")
	svc := e.token(t, token.Service, "acme")
	ct := e.encrypt(t, svc, "acme", "chat", []byte("one"))
	var out batchResponse
	e.must(t, 200, "POST", "/v1/tenants/acme/batch", svc, map[string]any{"items": []map[string]any{
		{"op": "encrypt", "scope": "chat", "plaintext": []byte("two")},
		{"op": "decrypt", "scope": "chat", "ciphertext": ct},
		{"op": "decrypt", "scope": "other", "ciphertext": ct},
		{"op": "shred", "scope": "chat"},
		{"op": "reencrypt", "scope": "chat", "ciphertext": ct},
		{"op": "encrypt", "scope": "chat", "plaintext": "%%%"},
	}}).decode(t, &out)
	if len(out.Results) != 6 {
		t.Fatalf("batch of 6 gave %d results", len(out.Results))
	}
	r := out.Results
	if r[0].Error != nil || len(r[0].Ciphertext) == 0 || string(r[1].Plaintext) != "one" || r[4].Error != nil || len(r[4].Ciphertext) == 0 {
		t.Errorf("successful items: %+v %+v %+v", r[0], r[1], r[4])
	}
	for i, want := range map[int]string{2: CodeDecryptFailed, 3: CodeInvalidInput, 5: CodeInvalidInput} {
		if r[i].Error == nil || r[i].Error.Code != want {
			t.Errorf("item %d = %+v, want error %s", i, r[i], want)
		}
	}
	if r[5].Error == nil || r[5].Error.Field != "items[5].plaintext" {
		t.Errorf("item 5's error names field %+v, want items[5].plaintext", r[5].Error)
	}
	e.mustDecrypt(t, svc, "acme", "chat", r[4].Ciphertext, []byte("one"))
}
