package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/server/token"
)

// snapshot is the state a bad request must not change: the tenants, the
// tokens, and the key status of tenant acme as the API shows them.
func (e *env) snapshot(t *testing.T, admin string) string {
	t.Helper()
	var b bytes.Buffer
	b.Write(e.must(t, 200, "GET", "/v1/tenants", e.operator, nil).body)
	b.Write(e.must(t, 200, "GET", "/v1/tokens?limit=1000", e.operator, nil).body)
	b.Write(e.must(t, 200, "GET", "/v1/tenants/acme/key", admin, nil).body)
	return b.String()
}

// TestBadInput sends requests that are wrong in one way each and checks
// the status, the error code, the field when there is one, and that
// nothing changed.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme", "chat")
	e.tenant(t, "globex", "chat")
	admin := e.token(t, token.TenantAdmin, "acme")
	globexAdmin := e.token(t, token.TenantAdmin, "globex")
	svc := e.token(t, token.Service, "acme")
	e.must(t, 200, "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": e.cmk, "directory_id": "d", "client_id": "c", "credential": "client-secret", "secret": "x"})

	// Tokens that no longer work.
	var expiring tokenView
	e.must(t, 201, "POST", "/v1/tokens", e.operator, map[string]any{"kind": "service", "tenants": []string{"acme"}, "ttl": "1h"}).decode(t, &expiring)
	var revoked tokenView
	e.must(t, 201, "POST", "/v1/tokens", e.operator, map[string]any{"kind": "service", "tenants": []string{"acme"}}).decode(t, &revoked)
	e.must(t, 200, "POST", "/v1/tokens/"+revoked.ID+"/revoke", e.operator, nil)
	e.clock.Advance(2 * time.Hour) // the 1h token has expired
	forged := svc[:len(svc)-4] + "AAAA"
	ct := e.encrypt(t, svc, "acme", "chat", []byte("data"))
	// A ciphertext whose URL-safe base64 is not also standard base64: it
	// holds a '-' or '_' (random bytes do in most, not all, draws).
	urlSafe := base64.RawURLEncoding.EncodeToString(ct)
	for i := 0; !strings.ContainsAny(urlSafe, "-_"); i++ {
		if i == 100 {
			t.Fatal("no ciphertext with '-' or '_' in its URL-safe base64 in 100 tries")
		}
		urlSafe = base64.RawURLEncoding.EncodeToString(e.encrypt(t, svc, "acme", "chat", []byte("data")))
	}
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-1] ^= 1
	past := epoch.Add(-time.Hour).Format(time.RFC3339)
	future := e.clock.Now().Add(24 * time.Hour).Format(time.RFC3339)
	huge := strings.Repeat("A", dataBody+10)

	before := e.snapshot(t, admin)
	for _, tc := range []struct {
		name         string
		method, path string
		tok          string
		body         any
		status       int
		code, field  string
	}{
		// Authentication.
		{"no token", "GET", "/v1/tenants", "", nil, 401, CodeUnauthenticated, ""},
		{"not bearer", "GET", "/v1/tenants", "", nil, 401, CodeUnauthenticated, ""},
		{"malformed token", "GET", "/v1/tenants", "byok_operator_xyz", nil, 401, CodeUnauthenticated, ""},
		{"forged secret", "POST", "/v1/tenants/acme/encrypt", forged, map[string]any{"scope": "chat", "plaintext": "AA=="}, 401, CodeUnauthenticated, ""},
		{"expired token", "POST", "/v1/tenants/acme/encrypt", expiring.Token, map[string]any{"scope": "chat", "plaintext": "AA=="}, 401, CodeTokenExpired, ""},
		{"revoked token", "POST", "/v1/tenants/acme/encrypt", revoked.Token, map[string]any{"scope": "chat", "plaintext": "AA=="}, 401, CodeTokenRevoked, ""},
		// Authorisation.
		{"service token on admin route", "GET", "/v1/tenants/acme/key", svc, nil, 403, CodeForbidden, ""},
		{"service token on operator route", "POST", "/v1/tenants", svc, map[string]any{"id": "x"}, 403, CodeForbidden, ""},
		{"admin token on data route", "POST", "/v1/tenants/acme/encrypt", admin, map[string]any{"scope": "chat", "plaintext": "AA=="}, 403, CodeForbidden, ""},
		{"operator token on tenant key", "PUT", "/v1/tenants/acme/key/scopes", e.operator, map[string]any{"all": true}, 403, CodeForbidden, ""},
		{"another tenant's admin token", "GET", "/v1/tenants/acme/key", globexAdmin, nil, 404, CodeNotFound, ""},
		{"another tenant's admin disables", "POST", "/v1/tenants/acme/key/disable", globexAdmin, nil, 404, CodeNotFound, ""},
		{"service token of another tenant", "POST", "/v1/tenants/globex/encrypt", svc, map[string]any{"scope": "chat", "plaintext": "AA=="}, 404, CodeNotFound, ""},
		{"admin token for a tenant that does not exist", "GET", "/v1/tenants/initech/key", admin, nil, 404, CodeNotFound, ""},
		// Malformed ids.
		{"tenant id too long", "GET", "/v1/tenants/" + strings.Repeat("t", 300), e.operator, nil, 400, CodeInvalidInput, "tenant"},
		{"tenant id with a space", "GET", "/v1/tenants/a%20b", e.operator, nil, 400, CodeInvalidInput, "tenant"},
		{"tenant id with an escaped slash", "GET", "/v1/tenants/a%2Fb", e.operator, nil, 400, CodeInvalidInput, "tenant"},
		{"new tenant .", "POST", "/v1/tenants", e.operator, map[string]any{"id": "."}, 400, CodeInvalidInput, "id"},
		{"new tenant ..", "POST", "/v1/tenants", e.operator, map[string]any{"id": ".."}, 400, CodeInvalidInput, "id"},
		{"new tenant with a slash", "POST", "/v1/tenants", e.operator, map[string]any{"id": "a/b"}, 400, CodeInvalidInput, "id"},
		{"new tenant with a percent", "POST", "/v1/tenants", e.operator, map[string]any{"id": "50%"}, 400, CodeInvalidInput, "id"},
		{"new tenant with a question mark", "POST", "/v1/tenants", e.operator, map[string]any{"id": "a?b"}, 400, CodeInvalidInput, "id"},
		{"new tenant with scope ..", "POST", "/v1/tenants", e.operator, map[string]any{"id": "x", "scopes": []string{"chat", ".."}}, 400, CodeInvalidInput, "scopes[1]"},
		{"scope . on a data route", "POST", "/v1/tenants/acme/encrypt", svc, map[string]any{"scope": ".", "plaintext": "AA=="}, 400, CodeInvalidInput, "scope"},
		{"scope with a hash on a data route", "POST", "/v1/tenants/acme/encrypt", svc, map[string]any{"scope": "a#b", "plaintext": "AA=="}, 400, CodeInvalidInput, "scope"},
		{"token for tenant ..", "POST", "/v1/tokens", e.operator, map[string]any{"kind": "service", "tenants": []string{".."}}, 400, CodeInvalidInput, "tenants[0]"},
		{"malformed token id", "POST", "/v1/tokens/nothex/revoke", e.operator, nil, 400, CodeInvalidInput, "id"},
		{"unknown token id", "POST", "/v1/tokens/" + strings.Repeat("0", 32) + "/revoke", e.operator, nil, 404, CodeNotFound, ""},
		{"empty scope", "POST", "/v1/tenants/acme/encrypt", svc, map[string]any{"scope": "", "plaintext": "AA=="}, 400, CodeInvalidInput, "scope"},
		{"unknown job", "GET", "/v1/tenants/acme/key/jobs/nojob", admin, nil, 404, CodeNotFound, ""},
		// Bodies.
		{"bad JSON", "POST", "/v1/tenants", e.operator, `{"id": "x",`, 400, CodeBadJSON, ""},
		{"not an object", "POST", "/v1/tenants", e.operator, `["x"]`, 400, CodeBadJSON, ""},
		{"two objects", "POST", "/v1/tenants", e.operator, `{"id":"x"}{"id":"y"}`, 400, CodeBadJSON, ""},
		{"empty body", "POST", "/v1/tenants", e.operator, "", 400, CodeBadJSON, ""},
		{"unknown field", "POST", "/v1/tenants", e.operator, map[string]any{"id": "x", "colour": "red"}, 400, CodeUnknownField, "colour"},
		{"wrong type", "POST", "/v1/tenants", e.operator, map[string]any{"id": 42}, 400, CodeInvalidInput, "id"},
		{"missing field", "POST", "/v1/tokens", e.operator, map[string]any{"tenants": []string{"acme"}}, 400, CodeInvalidInput, "kind"},
		{"oversized body", "POST", "/v1/tenants/acme/encrypt", svc, `{"scope":"chat","plaintext":"` + huge + `"}`, 413, CodeBodyTooLarge, ""},
		{"body on test route", "POST", "/v1/tenants/acme/key/test", admin, map[string]any{"force": true}, 400, CodeUnknownField, "force"},
		{"body without Content-Type", "POST", "/v1/tenants", e.operator, `{"id":"x"}`, 415, CodeUnsupportedMedia, ""},
		{"data body without Content-Type", "POST", "/v1/tenants/acme/encrypt", svc, `{"scope":"chat","plaintext":"AA=="}`, 415, CodeUnsupportedMedia, ""},
		{"body as text/plain", "POST", "/v1/tenants", e.operator, `{"id":"x"}`, 415, CodeUnsupportedMedia, ""},
		{"data body as a form", "POST", "/v1/tenants/acme/batch", svc, `{"items":[]}`, 415, CodeUnsupportedMedia, ""},
		// Values.
		{"bad base64", "POST", "/v1/tenants/acme/encrypt", svc, map[string]any{"scope": "chat", "plaintext": "not base64!"}, 400, CodeInvalidInput, "plaintext"},
		{"url-safe base64", "POST", "/v1/tenants/acme/decrypt", svc, map[string]any{"scope": "chat", "ciphertext": urlSafe}, 400, CodeInvalidInput, "ciphertext"},
		{"plaintext on decrypt", "POST", "/v1/tenants/acme/decrypt", svc, map[string]any{"scope": "chat", "plaintext": "AA=="}, 400, CodeInvalidInput, "plaintext"},
		{"tampered ciphertext", "POST", "/v1/tenants/acme/decrypt", svc, map[string]any{"scope": "chat", "ciphertext": tampered}, 400, CodeDecryptFailed, ""},
		{"ciphertext of another scope", "POST", "/v1/tenants/acme/decrypt", svc, map[string]any{"scope": "other", "ciphertext": ct}, 400, CodeDecryptFailed, ""},
		{"not a ciphertext", "POST", "/v1/tenants/acme/decrypt", svc, map[string]any{"scope": "chat", "ciphertext": []byte("hello")}, 400, CodeInvalidCiphertext, "ciphertext"},
		{"op on single route", "POST", "/v1/tenants/acme/encrypt", svc, map[string]any{"op": "decrypt", "scope": "chat", "plaintext": "AA=="}, 400, CodeUnknownField, "op"},
		{"empty batch", "POST", "/v1/tenants/acme/batch", svc, map[string]any{"items": []any{}}, 400, CodeInvalidInput, "items"},
		{"batch over the limit", "POST", "/v1/tenants/acme/batch", svc, map[string]any{"items": make([]map[string]any, 9)}, 400, CodeInvalidInput, "items"},
		{"unknown policy", "PUT", "/v1/tenants/acme/policy", e.operator, map[string]any{"policy": "lenient"}, 400, CodeInvalidInput, "policy"},
		{"unknown token kind", "POST", "/v1/tokens", e.operator, map[string]any{"kind": "root"}, 400, CodeInvalidInput, "kind"},
		{"admin token of two tenants", "POST", "/v1/tokens", e.operator, map[string]any{"kind": "tenant-admin", "tenants": []string{"acme", "globex"}}, 400, CodeInvalidInput, "token"},
		{"token for an unknown tenant", "POST", "/v1/tokens", e.operator, map[string]any{"kind": "service", "tenants": []string{"initech"}}, 404, CodeNotFound, "tenants[0]"},
		{"negative ttl", "POST", "/v1/tokens", e.operator, map[string]any{"kind": "operator", "ttl": "-1h"}, 400, CodeInvalidInput, "ttl"},
		{"bad limit", "GET", "/v1/tenants?limit=0", e.operator, nil, 400, CodeInvalidInput, "limit"},
		{"bad audit time", "GET", "/v1/tenants/acme/audit?since=yesterday", admin, nil, 400, CodeInvalidInput, "since"},
		{"bad audit cursor", "GET", "/v1/tenants/acme/audit?cursor=zzz", admin, nil, 400, CodeInvalidInput, "audit cursor"},
		{"duplicate tenant", "POST", "/v1/tenants", e.operator, map[string]any{"id": "acme"}, 409, CodeExists, ""},
		{"key id of an unknown provider", "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": "https://v.vault.azure.net/keys/k", "directory_id": "d", "client_id": "c", "credential": "client-secret", "secret": "x"}, 400, CodeInvalidInput, "key_id"},
		{"missing key id", "PUT", "/v1/tenants/acme/key", admin, map[string]any{"directory_id": "d"}, 400, CodeInvalidInput, "key_id"},
		{"unknown credential mode", "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": e.cmk, "directory_id": "d", "client_id": "c", "credential": "managed_identity"}, 400, CodeInvalidInput, "credential"},
		{"managed identity not offered", "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": e.cmk, "directory_id": "d", "credential": "managed-identity"}, 400, CodeInvalidInput, "credential"},
		{"managed identity with a secret", "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": e.cmk, "directory_id": "d", "credential": "managed-identity", "secret": "x"}, 400, CodeInvalidInput, "secret"},
		{"managed identity with a client id", "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": e.cmk, "directory_id": "d", "client_id": "c", "credential": "managed-identity"}, 400, CodeInvalidInput, "client_id"},
		{"workload identity not offered", "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": e.cmk, "directory_id": "d", "client_id": "c", "credential": "workload-identity"}, 400, CodeInvalidInput, "credential"},
		{"workload identity without a client id", "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": e.cmk, "directory_id": "d", "credential": "workload-identity"}, 400, CodeInvalidInput, "client_id"},
		{"workload identity with a secret", "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": e.cmk, "directory_id": "d", "client_id": "c", "credential": "workload-identity", "secret": "x"}, 400, CodeInvalidInput, "secret"},
		// The lifecycle's rules.
		{"enforcement date in the past", "POST", "/v1/tenants/acme/key/proceed", admin, map[string]any{"enforce_at": past}, 400, CodeInvalidInput, "enforce_at"},
		{"enforcement date not a date", "POST", "/v1/tenants/acme/key/proceed", admin, map[string]any{"enforce_at": "next week"}, 400, CodeInvalidInput, "enforce_at"},
		{"proceed without a passing test", "POST", "/v1/tenants/acme/key/proceed", admin, map[string]any{"enforce_at": future}, 409, CodeInvalidState, ""},
		{"unknown scope", "PUT", "/v1/tenants/acme/key/scopes", admin, map[string]any{"include": []string{"nope"}}, 400, CodeInvalidInput, ""},
		{"platform-only scope", "PUT", "/v1/tenants/acme/key/scopes", admin, map[string]any{"include": []string{"cache"}}, 400, CodeInvalidInput, ""},
		{"rotate in draft", "POST", "/v1/tenants/acme/key/rotate", admin, nil, 409, CodeInvalidState, ""},
		{"rekey in draft", "POST", "/v1/tenants/acme/key/rekey", admin, nil, 409, CodeInvalidState, ""},
		{"disable in draft", "POST", "/v1/tenants/acme/key/disable", admin, nil, 409, CodeInvalidState, ""},
		// Routing.
		{"wrong method", "DELETE", "/v1/tenants", e.operator, nil, 405, CodeMethodNotAllowed, ""},
		{"unknown route", "GET", "/v2/tenants", e.operator, nil, 404, CodeNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r resp
			if ct, ok := contentTypes[tc.name]; ok {
				r = e.doType(t, tc.method, tc.path, tc.tok, ct, tc.body.(string))
			} else {
				r = e.do(t, tc.method, tc.path, tc.tok, tc.body)
			}
			if tc.name == "not bearer" {
				r = e.doHeader(t, "GET", tc.path, "Basic b3A6cGFzcw==")
			}
			if r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("= %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if tc.field != "" && !strings.HasPrefix(r.errField(), tc.field) {
				t.Errorf("field = %q, want %q (body %s)", r.errField(), tc.field, r.body)
			}
			var b errorBody
			r.decode(t, &b)
			if len(b.Error.Message) < 15 {
				t.Errorf("message %q does not say what was wrong", b.Error.Message)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if after := e.snapshot(t, admin); after != before {
		t.Errorf("bad requests changed the state:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := e.db.Tenant(context.Background(), "x"); err == nil {
		t.Error("a refused create-tenant request created tenant x")
	}
}

// contentTypes are the Content-Type headers of TestBadInput's cases that
// send their body with another type than application/json, or none.
var contentTypes = map[string]string{
	"body without Content-Type":      "",
	"data body without Content-Type": "",
	"body as text/plain":             "text/plain",
	"data body as a form":            "application/x-www-form-urlencoded",
}

// doType sends body with the Content-Type ct (none when empty).
func (e *env) doType(t *testing.T, method, path, tok, ct, body string) resp {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// doHeader sends a request with a raw Authorization header.
func (e *env) doHeader(t *testing.T, method, path, authz string) resp {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authz)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}
