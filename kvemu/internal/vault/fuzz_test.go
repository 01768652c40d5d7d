package vault

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRoute checks that no method and path panics the router and that a
// routed key name is a path segment.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/keys/cmk/wrapkey", "/keys/cmk/v/unwrapkey", "/deletedkeys/x/recover", "/keys/", "//", "/keys/restore", "/rng"} {
		f.Add("POST", s)
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		op, key, version := route(method, path)
		if op == OpUnknown && (key != "" || version != "") {
			t.Fatalf("unknown op with key %q version %q", key, version)
		}
		if strings.Contains(key, "/") || strings.Contains(version, "/") {
			t.Fatalf("key %q or version %q spans segments", key, version)
		}
	})
}

// FuzzDecodeB64 checks the base64url reader never panics and round-trips
// what it accepts.
func FuzzDecodeB64(f *testing.F) {
	for _, s := range []string{"", "AQAB", "AQAB==", "+/", "a", "____"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, aerr := decodeB64("value", s)
		// The decoder skips line breaks, as encoding/base64 does.
		clean := strings.NewReplacer("\r", "", "\n", "").Replace(strings.TrimRight(s, "="))
		const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		alphabet := !strings.ContainsFunc(clean, func(r rune) bool { return !strings.ContainsRune(b64url, r) })
		if aerr != nil {
			if aerr.status != 400 || aerr.code != "BadParameter" {
				t.Fatalf("error %v", aerr)
			}
			return
		}
		if !alphabet {
			t.Fatalf("%q accepted with characters outside base64url", s)
		}
		if len(b) != len(clean)*3/4 {
			t.Fatalf("%q decoded to %d bytes", s, len(b))
		}
	})
}

// FuzzRequest sends arbitrary bodies to every operation that parses one,
// and arbitrary key names and queries, through the whole handler: every
// answer must be a Key Vault status with a JSON body, never a panic.
func FuzzRequest(f *testing.F) {
	seeds := []string{
		`{"alg":"RSA-OAEP","value":"AAAA"}`, `{"alg":"RSA-OAEP-256","value":"c2hhcmU"}`,
		`{"alg":"PS256","value":"` + strings.Repeat("A", 43) + `"}`, `{"alg":"ES256","digest":"AA","value":"AA"}`,
		`{"kty":"RSA","key_size":2048}`, `{"kty":"EC","crv":"P-384","key_ops":["sign"]}`,
		`{"key":{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQ","p":"Aw","q":"BQ","dp":"AQ","dq":"AQ","qi":"AQ"}}`,
		`{"key":{"kty":"EC","crv":"P-256","d":"AQ"}}`, `{"attributes":{"enabled":false,"exp":1}}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"}}`,
		`{"count":16}`, `{"value":"a3ZlbXU"}`, `null`, `[]`, `{"alg":null}`, "\x00",
	}
	targets := []struct{ method, path string }{
		{"POST", "/keys/cmk/wrapkey"}, {"POST", "/keys/cmk/unwrapkey"}, {"POST", "/keys/cmk/encrypt"},
		{"POST", "/keys/cmk/decrypt"}, {"POST", "/keys/cmk/sign"}, {"POST", "/keys/ec/verify"},
		{"POST", "/keys/ec/sign"}, {"PUT", "/keys/imp"}, {"PATCH", "/keys/cmk/"},
		{"PUT", "/keys/cmk/rotationpolicy"}, {"POST", "/rng"}, {"POST", "/keys/restore"},
	}
	for i, s := range seeds {
		f.Add(uint8(i), s, "cmk", "")
	}
	f.Add(uint8(0), `{}`, "CMK", "maxresults=3&$skiptoken=1")
	fx := newFixture(f, VaultConfig{})
	if _, err := fx.s.CreateKey("contoso", "cmk", KeySpec{}); err != nil {
		f.Fatal(err)
	}
	if _, err := fx.s.CreateKey("contoso", "ec", KeySpec{Type: "EC"}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target uint8, body, name, query string) {
		tg := targets[int(target)%len(targets)]
		path := tg.path
		if name != "" && !strings.ContainsAny(name, "/?#% \x00\r\n") && len(name) < 200 {
			path = strings.Replace(path, "cmk", name, 1)
		}
		r := httptest.NewRequest(tg.method, "https://contoso.vault.azure.net/", strings.NewReader(body))
		r.URL.Path = path
		r.URL.RawQuery = "api-version=7.6&" + query
		r.Header.Set("Authorization", "Bearer "+fx.tok)
		w := httptest.NewRecorder()
		fx.s.ServeHTTP(w, r)
		switch w.Code {
		case 200, 204:
		case 400, 403, 404, 409:
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s: error body %q", tg.method, path, w.Body)
			}
		default:
			t.Fatalf("%s %s %q: status %d %s", tg.method, path, body, w.Code, w.Body)
		}
		if w.Code == http.StatusOK && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("invalid JSON %q", w.Body)
		}
	})
}
