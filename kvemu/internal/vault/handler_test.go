package vault

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestChallenge(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	if err := f.s.CreateVault(VaultConfig{Name: "hsm1", TenantID: tenantB, ManagedHSM: true}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host, method, path, want string
	}{
		{"contoso.vault.azure.net", "GET", "/keys/cmk/", `Bearer authorization="https://login.microsoftonline.com/` + tenantA + `", resource="https://vault.azure.net"`},
		{"CONTOSO.vault.azure.net:443", "POST", "/keys/cmk/wrapkey", `Bearer authorization="https://login.microsoftonline.com/` + tenantA + `", resource="https://vault.azure.net"`},
		{"contoso.privatelink.vaultcore.azure.net", "GET", "/keys", `Bearer authorization="https://login.microsoftonline.com/` + tenantA + `", resource="https://vaultcore.azure.net"`},
		{"hsm1.managedhsm.azure.net", "POST", "/keys/k/create", `Bearer authorization="https://login.microsoftonline.com/` + tenantB + `", resource="https://managedhsm.azure.net"`},
	}
	for _, tc := range tests {
		// The SDK's first request has no body and no token: it must get the
		// challenge, never a 400.
		w := f.doAs("", tc.host, tc.method, tc.path, "")
		expect(t, w, 401, "Unauthorized", "", nil)
		if got := w.Header().Get("WWW-Authenticate"); got != tc.want {
			t.Errorf("%s: challenge %q, want %q", tc.host, got, tc.want)
		}
		if !strings.Contains(w.Body.String(), "AKV10000: Request is missing a Bearer or PoP token.") {
			t.Errorf("%s: body %s", tc.host, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
	}
	// The HSM is not a vault: its name under vault.azure.net is unknown.
	expect(t, f.doAs("", "hsm1.vault.azure.net", "GET", "/keys", ""), 404, "VaultNotFound", "", nil)
	if !f.s.HasVault("hsm1.managedhsm.azure.net:443") || f.s.HasVault("hsm1.vault.azure.net") || f.s.HasVault("example.com") {
		t.Error("HasVault does not follow the vault kinds")
	}
}

func TestTokenChecks(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	f.createKey("cmk", `{"kty":"RSA"}`)
	tests := []struct {
		name, tok, want string
	}{
		{"verifier refuses", "bad", "AKV10013"},
		{"other tenant", token(tenantB, officer, vaultAz), "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/" + tenantA + "/"},
		{"management audience", token(tenantA, officer, "https://management.azure.com/"), "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com/."},
		{"expired", tenantA + "|" + officer + "|" + vaultAz + "|-1", "[TokenExpired]"},
		{"not a bearer token", "", "AKV10000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.doAs(tc.tok, "contoso.vault.azure.net", "GET", "/keys/cmk", "")
			expect(t, w, 401, "Unauthorized", "", nil)
			if !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("body %s does not contain %q", w.Body, tc.want)
			}
			if w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without challenge")
			}
		})
	}
	// An audience with a trailing slash is the same resource.
	expect(t, f.doAs(token(tenantA, officer, vaultAz+"/"), "contoso.vault.azure.net", "GET", "/keys/cmk", ""), 200, "", "", nil)
	// Unauthenticated requests are counted without a principal.
	if n := f.s.CallCount("contoso", OpGetKey, 401); n != 5 {
		t.Errorf("401 count %d, want 5", n)
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	b := f.createKey("cmk", `{"kty":"RSA","key_size":2048}`)
	ec := f.createKey("ec", `{"kty":"EC","crv":"P-256"}`)
	_ = ec
	big := `{"alg":"RSA-OAEP","value":"` + strings.Repeat("A", maxBody) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"malformed JSON", "POST", "/keys/cmk/wrapkey", `{"alg":`, 400, "BadParameter", "not a valid JSON"},
		{"JSON array", "POST", "/keys/cmk/wrapkey", `[1,2]`, 400, "BadParameter", "JSON"},
		{"wrong JSON type", "POST", "/keys/cmk/wrapkey", `{"alg":7,"value":"AA"}`, 400, "BadParameter", "'alg'"},
		{"empty body", "POST", "/keys/cmk/wrapkey", ``, 400, "BadParameter", "empty"},
		{"missing value", "POST", "/keys/cmk/wrapkey", `{"alg":"RSA-OAEP"}`, 400, "BadParameter", "Property 'value' is required."},
		{"bad base64", "POST", "/keys/cmk/wrapkey", `{"alg":"RSA-OAEP","value":"+/+/"}`, 400, "BadParameter", "Content of 'value' is not base64url."},
		{"oversized body", "POST", "/keys/cmk/wrapkey", big, 400, "BadParameter", "larger than"},
		{"unknown algorithm", "POST", "/keys/cmk/wrapkey", `{"alg":"ROT13","value":"AAAA"}`, 400, "BadParameter", "Invalid algorithm: ROT13"},
		{"payload too long", "POST", "/keys/cmk/encrypt", `{"alg":"RSA-OAEP-256","value":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 191)) + `"}`, 400, "BadParameter", "at most 190 bytes"},
		{"ciphertext of wrong size", "POST", "/keys/cmk/unwrapkey", `{"alg":"RSA-OAEP","value":"AAAA"}`, 400, "BadParameter", "ciphertext"},
		{"unknown signature algorithm", "POST", "/keys/cmk/sign", `{"alg":"HS256","value":"AAAA"}`, 400, "BadParameter", "Invalid signature algorithm"},
		{"ES256 with an RSA key", "POST", "/keys/cmk/sign", `{"alg":"ES256","value":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 32)) + `"}`, 400, "BadParameter", "not supported"},
		{"ES384 with a P-256 key", "POST", "/keys/ec/sign", `{"alg":"ES384","value":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 48)) + `"}`, 400, "BadParameter", "use ES256"},
		{"verify without digest", "POST", "/keys/cmk/verify", `{"alg":"PS256","value":"AAAA"}`, 400, "BadParameter", "'digest'"},
		{"missing kty", "POST", "/keys/new/create", `{}`, 400, "BadParameter", "'kty'"},
		{"oct key", "POST", "/keys/new/create", `{"kty":"oct"}`, 400, "BadParameter", "Invalid kty value: oct"},
		{"RSA 1024", "POST", "/keys/new/create", `{"kty":"RSA","key_size":1024}`, 400, "BadParameter", "1024"},
		{"public exponent 3", "POST", "/keys/new/create", `{"kty":"RSA","public_exponent":3}`, 400, "BadParameter", "exponent"},
		{"P-256K", "POST", "/keys/new/create", `{"kty":"EC","crv":"P-256K"}`, 400, "BadParameter", "P-256K"},
		{"EC with key_size", "POST", "/keys/new/create", `{"kty":"EC","key_size":256}`, 400, "BadParameter", "key_size"},
		{"unknown key_ops", "POST", "/keys/new/create", `{"kty":"RSA","key_ops":["launch"]}`, 400, "BadParameter", "launch"},
		{"bad key name", "POST", "/keys/bad_name/create", `{"kty":"RSA"}`, 400, "BadParameter", "invalid name"},
		{"import without key", "PUT", "/keys/imp", `{}`, 400, "BadParameter", "'key'"},
		{"import with bad d", "PUT", "/keys/imp", `{"key":{"kty":"RSA","n":"AQAB","e":"AQAB","d":"*","p":"AQ","q":"AQ","dp":"AQ","dq":"AQ","qi":"AQ"}}`, 400, "BadParameter", "key.d"},
		{"import inconsistent RSA", "PUT", "/keys/imp", `{"key":{"kty":"RSA","n":"` + b.Key.N + `","e":"AQAB","d":"AQ","p":"Aw","q":"BQ","dp":"AQ","dq":"AQ","qi":"AQ"}}`, 400, "BadParameter", "inconsistent"},
		{"import oct", "PUT", "/keys/imp", `{"key":{"kty":"oct","k":"AAAA"}}`, 400, "BadParameter", "oct"},
		{"update with bad nbf", "PATCH", "/keys/cmk/", `{"attributes":{"nbf":"soon"}}`, 400, "BadParameter", "nbf"},
		{"rotation policy too short", "PUT", "/keys/cmk/rotationpolicy", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P1D"},"action":{"type":"Rotate"}}]}`, 400, "BadParameter", "P7D"},
		{"rotation policy bad duration", "PUT", "/keys/cmk/rotationpolicy", `{"attributes":{"expiryTime":"two years"},"lifetimeActions":[]}`, 400, "BadParameter", "ISO 8601"},
		{"rotation before expiry without expiry", "PUT", "/keys/cmk/rotationpolicy", `{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Rotate"}}]}`, 400, "BadParameter", "expiryTime"},
		{"rotation policy unknown action", "PUT", "/keys/cmk/rotationpolicy", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Explode"}}]}`, 400, "BadParameter", "Explode"},
		{"rng count 0", "POST", "/rng", `{"count":0}`, 400, "BadParameter", "'count'"},
		{"restore garbage", "POST", "/keys/restore", `{"value":"AAAA"}`, 400, "BadParameter", "corrupt"},
		{"maxresults 0", "GET", "/keys?maxresults=0", ``, 400, "BadParameter", "maxresults"},
		{"bad skiptoken", "GET", "/keys?$skiptoken=x", ``, 400, "BadParameter", "skiptoken"},
		{"missing api-version", "GET", "/keys?api-version=", ``, 400, "BadParameter", "api-version"},
		{"unknown api-version", "GET", "/keys?api-version=2016-10-01", ``, 400, "BadParameter", "The specified version (2016-10-01) is not recognized. Consider using the latest supported version (2025-07-01)."},
		{"unknown path", "GET", "/secrets/s", ``, 404, "NotFound", "not a Key Vault keys operation"},
		{"wrong method", "DELETE", "/keys/cmk/wrapkey", ``, 404, "NotFound", "DELETE"},
		{"unknown key", "POST", "/keys/nope/wrapkey", `{"alg":"RSA-OAEP","value":"AAAA"}`, 404, "KeyNotFound", "A key with (name/id) nope was not found"},
	}
	// The service's inner code for a software AES key (Azure/azure-sdk-for-net#13437).
	inners := map[string]string{"oct key": "KeyTypeNotSupported", "import oct": "KeyTypeNotSupported"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(tc.method, tc.path, tc.body)
			expect(t, w, tc.status, tc.code, inners[tc.name], nil)
			if !strings.Contains(w.Body.String(), tc.msg) {
				t.Errorf("body %s does not contain %q", w.Body, tc.msg)
			}
		})
	}
}

func TestRoute(t *testing.T) {
	tests := []struct {
		method, path string
		op           Op
		key, version string
	}{
		{"GET", "/keys", OpListKeys, "", ""},
		{"GET", "/keys/", OpListKeys, "", ""},
		{"GET", "/keys/cmk/", OpGetKey, "cmk", ""},
		{"GET", "/keys/cmk", OpGetKey, "cmk", ""},
		{"GET", "/KEYS/cmk/abc", OpGetKey, "cmk", "abc"},
		{"PATCH", "/keys/cmk/", OpUpdateKey, "cmk", ""},
		{"PATCH", "/keys/cmk/abc", OpUpdateKey, "cmk", "abc"},
		{"PUT", "/keys/cmk", OpImportKey, "cmk", ""},
		{"DELETE", "/keys/cmk", OpDeleteKey, "cmk", ""},
		{"POST", "/keys/cmk/create", OpCreateKey, "cmk", ""},
		{"GET", "/keys/cmk/versions", OpListKeyVersions, "cmk", ""},
		{"POST", "/keys/cmk/rotate", OpRotateKey, "cmk", ""},
		{"GET", "/keys/cmk/rotationpolicy", OpGetKeyRotationPolicy, "cmk", ""},
		{"PUT", "/keys/cmk/RotationPolicy", OpUpdateKeyRotationPolicy, "cmk", ""},
		{"POST", "/keys/cmk/backup", OpBackupKey, "cmk", ""},
		{"POST", "/keys/restore", OpRestoreKey, "", ""},
		{"POST", "/keys/cmk/wrapkey", OpWrapKey, "cmk", ""},
		{"POST", "/keys/cmk/wrapKey", OpWrapKey, "cmk", ""},
		{"POST", "/keys/cmk/v1/unwrapkey", OpUnwrapKey, "cmk", "v1"},
		{"POST", "/keys/cmk/v1/encrypt", OpEncrypt, "cmk", "v1"},
		{"POST", "/keys/cmk/decrypt/", OpDecrypt, "cmk", ""},
		{"POST", "/keys/cmk/v1/sign", OpSign, "cmk", "v1"},
		{"POST", "/keys/cmk/verify", OpVerify, "cmk", ""},
		{"GET", "/deletedkeys", OpListDeletedKeys, "", ""},
		{"GET", "/deletedkeys/cmk", OpGetDeletedKey, "cmk", ""},
		{"DELETE", "/deletedkeys/cmk", OpPurgeDeletedKey, "cmk", ""},
		{"POST", "/DeletedKeys/cmk/recover", OpRecoverDeletedKey, "cmk", ""},
		{"POST", "/rng", OpGetRandomBytes, "", ""},
		{"GET", "/", OpUnknown, "", ""},
		{"GET", "", OpUnknown, "", ""},
		{"POST", "/keys", OpUnknown, "", ""},
		{"POST", "/keys/cmk/v1/rotate", OpUnknown, "", ""},
		{"GET", "/keys/a/b/c/d", OpUnknown, "", ""},
		{"GET", "/secrets", OpUnknown, "", ""},
	}
	for _, tc := range tests {
		op, key, ver := route(tc.method, tc.path)
		if op != tc.op || key != tc.key || ver != tc.version {
			t.Errorf("route(%s %s) = %s %q %q, want %s %q %q", tc.method, tc.path, op, key, ver, tc.op, tc.key, tc.version)
		}
	}
}

func TestKeyLifecycle(t *testing.T) {
	f := newFixture(t, VaultConfig{RetentionDays: 7})
	created := f.createKey("cmk", `{"kty":"RSA","key_size":3072,"tags":{"env":"test"}}`)
	if created.Key.Kty != "RSA" || created.Attributes.RecoveryLevel != "CustomizedRecoverable+Purgeable" || created.Attributes.RecoverableDays != 7 {
		t.Fatalf("created %+v", created)
	}
	if got := strings.Join(created.Key.KeyOps, ","); got != "encrypt,decrypt,sign,verify,wrapKey,unwrapKey" {
		t.Errorf("default key_ops %s", got)
	}
	n, _ := base64.RawURLEncoding.DecodeString(created.Key.N)
	if len(n) != 384 || created.Key.E != "AQAB" {
		t.Errorf("n is %d bytes, e %q", len(n), created.Key.E)
	}
	if created.Attributes.Created != f.clk.Now().Unix() || created.Attributes.NBF != nil || created.Attributes.Exp != nil {
		t.Errorf("attributes %+v", created.Attributes)
	}
	if !strings.HasPrefix(created.Key.Kid, "https://contoso.vault.azure.net/keys/cmk/") {
		t.Errorf("kid %s", created.Key.Kid)
	}
	// Update: disable, then GET still answers.
	var upd bundle
	expect(t, f.do("PATCH", "/keys/cmk/", `{"attributes":{"enabled":false},"key_ops":["wrapKey","unwrapKey"]}`), 200, "", "", &upd)
	if upd.Attributes.Enabled || len(upd.Key.KeyOps) != 2 {
		t.Fatalf("after update %+v", upd)
	}
	expect(t, f.do("GET", "/keys/cmk/"+version(created.Key.Kid), ""), 200, "", "", nil)
	expect(t, f.do("POST", "/keys/cmk/wrapkey", `{"alg":"RSA-OAEP","value":"AAAA"}`), 403, "Forbidden", "KeyDisabled", nil)
	// Delete, read the deleted key, and its name is taken.
	var del bundle
	expect(t, f.do("DELETE", "/keys/cmk", ""), 200, "", "", &del)
	now := f.clk.Now().Unix()
	if del.DeletedDate != now || del.ScheduledPurgeDate != now+7*86400 || del.RecoveryID != "https://contoso.vault.azure.net/deletedkeys/cmk" {
		t.Fatalf("deleted %+v", del)
	}
	expect(t, f.do("GET", "/keys/cmk", ""), 404, "KeyNotFound", "", nil)
	expect(t, f.do("POST", "/keys/cmk/create", `{"kty":"RSA"}`), 409, "Conflict", "ObjectIsDeletedButRecoverable", nil)
	var list struct {
		Value []struct {
			Kid        string `json:"kid"`
			RecoveryID string `json:"recoveryId"`
		} `json:"value"`
		NextLink *string `json:"nextLink"`
	}
	expect(t, f.do("GET", "/deletedkeys", ""), 200, "", "", &list)
	if len(list.Value) != 1 || list.Value[0].RecoveryID == "" || list.NextLink != nil {
		t.Fatalf("deleted list %+v", list)
	}
	// Recover, delete again and purge (no purge protection here).
	expect(t, f.do("POST", "/deletedkeys/cmk/recover", ""), 200, "", "", nil)
	expect(t, f.do("GET", "/keys/cmk", ""), 200, "", "", nil)
	expect(t, f.do("DELETE", "/keys/cmk", ""), 200, "", "", nil)
	w := f.do("DELETE", "/deletedkeys/cmk", "")
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("purge: %d %s", w.Code, w.Body)
	}
	expect(t, f.do("GET", "/deletedkeys/cmk", ""), 404, "KeyNotFound", "", nil)
	f.createKey("cmk", `{"kty":"RSA"}`)
	// The retention period ends: the service purges by itself.
	expect(t, f.do("DELETE", "/keys/cmk", ""), 200, "", "", nil)
	f.clk.Advance(7*24*time.Hour - time.Second)
	expect(t, f.do("GET", "/deletedkeys/cmk", ""), 200, "", "", nil)
	f.clk.Advance(time.Second)
	expect(t, f.do("GET", "/deletedkeys/cmk", ""), 404, "KeyNotFound", "", nil)
}

func TestPurgeProtection(t *testing.T) {
	f := newFixture(t, VaultConfig{PurgeProtection: true})
	if b := f.createKey("cmk", `{"kty":"RSA-HSM"}`); b.Attributes.RecoveryLevel != "Recoverable" || b.Key.Kty != "RSA-HSM" {
		t.Fatalf("created %+v", b)
	}
	expect(t, f.do("DELETE", "/keys/cmk", ""), 200, "", "", nil)
	w := f.do("DELETE", "/deletedkeys/cmk", "")
	expect(t, w, 403, "Forbidden", "", nil)
	if !strings.Contains(w.Body.String(), `Operation \"purge\" is not allowed because purge protection is enabled for this vault.`) {
		t.Errorf("body %s", w.Body)
	}
	// The control API stands in for the end of the retention period.
	if err := f.s.PurgeKey("contoso", "cmk"); err != nil {
		t.Fatal(err)
	}
	expect(t, f.do("GET", "/deletedkeys/cmk", ""), 404, "KeyNotFound", "", nil)
}

func TestRecoveryLevel(t *testing.T) {
	tests := []struct {
		cfg  VaultConfig
		want string
	}{
		{VaultConfig{}, "Recoverable+Purgeable"},
		{VaultConfig{PurgeProtection: true}, "Recoverable"},
		{VaultConfig{RetentionDays: 90, PurgeProtection: true}, "Recoverable"},
		{VaultConfig{RetentionDays: 30}, "CustomizedRecoverable+Purgeable"},
		{VaultConfig{RetentionDays: 7, PurgeProtection: true}, "CustomizedRecoverable"},
	}
	for _, tc := range tests {
		if got := tc.cfg.RecoveryLevel(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.cfg, got, tc.want)
		}
	}
}

func TestKeyValidityWindow(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	now := f.clk.Now()
	b := f.createKey("cmk", `{"kty":"RSA","attributes":{"nbf":`+itoa(now.Add(time.Hour).Unix())+`,"exp":`+itoa(now.Add(2*time.Hour).Unix())+`}}`)
	if b.Attributes.NBF == nil || *b.Attributes.NBF != now.Add(time.Hour).Unix() {
		t.Fatalf("nbf %v", b.Attributes.NBF)
	}
	wrap := `{"alg":"RSA-OAEP-256","value":"AAAA"}`
	expect(t, f.do("POST", "/keys/cmk/wrapkey", wrap), 403, "Forbidden", "KeyNotYetValid", nil)
	f.clk.Advance(time.Hour)
	var res struct{ Kid, Value string }
	expect(t, f.do("POST", "/keys/cmk/wrapkey", wrap), 200, "", "", &res)
	expect(t, f.do("POST", "/keys/cmk/sign", `{"alg":"RS256","value":"`+base64.RawURLEncoding.EncodeToString(make([]byte, 32))+`"}`), 200, "", "", nil)
	f.clk.Advance(time.Hour)
	expect(t, f.do("POST", "/keys/cmk/wrapkey", wrap), 403, "Forbidden", "KeyExpired", nil)
	expect(t, f.do("POST", "/keys/cmk/encrypt", wrap), 403, "Forbidden", "KeyExpired", nil)
	// Unwrap still works after expiry, as in Azure.
	var out struct{ Value string }
	expect(t, f.do("POST", "/keys/cmk/unwrapkey", `{"alg":"RSA-OAEP-256","value":"`+res.Value+`"}`), 200, "", "", &out)
	if out.Value != "AAAA" {
		t.Errorf("unwrapped %q", out.Value)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
