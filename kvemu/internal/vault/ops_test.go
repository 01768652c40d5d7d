package vault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func b64s(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestCryptoAlgorithms(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	rsaKey := f.createKey("rsa", `{"kty":"RSA"}`)
	plain := []byte("a 32-byte customer key share....")
	for _, alg := range []string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"} {
		for _, pair := range [][2]string{{"wrapkey", "unwrapkey"}, {"encrypt", "decrypt"}} {
			var ct, pt struct{ Kid, Value string }
			expect(t, f.do("POST", "/keys/rsa/"+pair[0], fmt.Sprintf(`{"alg":%q,"value":%q}`, alg, b64s(plain))), 200, "", "", &ct)
			if ct.Kid != rsaKey.Key.Kid || strings.HasSuffix(ct.Value, "=") {
				t.Fatalf("%s %s: kid %s value %s", alg, pair[0], ct.Kid, ct.Value)
			}
			// Padded base64url is accepted too.
			padded := base64.URLEncoding.EncodeToString(mustB64(t, ct.Value))
			expect(t, f.do("POST", "/keys/rsa/"+version(ct.Kid)+"/"+pair[1], fmt.Sprintf(`{"alg":%q,"value":%q}`, alg, padded)), 200, "", "", &pt)
			if string(mustB64(t, pt.Value)) != string(plain) {
				t.Fatalf("%s %s round trip lost the plaintext", alg, pair[0])
			}
		}
	}
	// Signatures, checked by the service and by the standard library.
	pub := rsaPublic(t, rsaKey)
	d256 := sha256.Sum256([]byte("m"))
	d384 := sha512.Sum384([]byte("m"))
	d512 := sha512.Sum512([]byte("m"))
	for _, tc := range []struct {
		alg    string
		digest []byte
	}{{"RS256", d256[:]}, {"PS256", d256[:]}, {"RS384", d384[:]}, {"PS384", d384[:]}, {"RS512", d512[:]}, {"PS512", d512[:]}} {
		var sig struct{ Value string }
		expect(t, f.do("POST", "/keys/rsa/sign", fmt.Sprintf(`{"alg":%q,"value":%q}`, tc.alg, b64s(tc.digest))), 200, "", "", &sig)
		raw := mustB64(t, sig.Value)
		h := map[int]crypto.Hash{32: crypto.SHA256, 48: crypto.SHA384, 64: crypto.SHA512}[len(tc.digest)]
		var err error
		if tc.alg[0] == 'P' {
			err = rsa.VerifyPSS(pub, h, tc.digest, raw, nil)
		} else {
			err = rsa.VerifyPKCS1v15(pub, h, tc.digest, raw)
		}
		if err != nil {
			t.Errorf("%s signature does not verify: %v", tc.alg, err)
		}
		checkVerify(t, f, "rsa", tc.alg, tc.digest, raw)
	}
	for _, tc := range []struct {
		crv, alg string
		digest   []byte
	}{{"P-256", "ES256", d256[:]}, {"P-384", "ES384", d384[:]}, {"P-521", "ES512", d512[:]}} {
		name := "ec" + tc.crv[2:]
		b := f.createKey(name, fmt.Sprintf(`{"kty":"EC","crv":%q}`, tc.crv))
		if b.Key.Crv != tc.crv || strings.Join(b.Key.KeyOps, ",") != "sign,verify" {
			t.Fatalf("EC key %+v", b.Key)
		}
		var sig struct{ Value string }
		expect(t, f.do("POST", "/keys/"+name+"/sign", fmt.Sprintf(`{"alg":%q,"value":%q}`, tc.alg, b64s(tc.digest))), 200, "", "", &sig)
		checkVerify(t, f, name, tc.alg, tc.digest, mustB64(t, sig.Value))
	}
}

func checkVerify(t *testing.T, f *fixture, key, alg string, digest, sig []byte) {
	t.Helper()
	var res struct{ Value bool }
	expect(t, f.do("POST", "/keys/"+key+"/verify", fmt.Sprintf(`{"alg":%q,"digest":%q,"value":%q}`, alg, b64s(digest), b64s(sig))), 200, "", "", &res)
	if !res.Value {
		t.Errorf("%s: the service does not verify its own signature", alg)
	}
	bad := append([]byte(nil), sig...)
	bad[len(bad)/2] ^= 1
	expect(t, f.do("POST", "/keys/"+key+"/verify", fmt.Sprintf(`{"alg":%q,"digest":%q,"value":%q}`, alg, b64s(digest), b64s(bad))), 200, "", "", &res)
	if res.Value {
		t.Errorf("%s: a tampered signature verifies", alg)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

func rsaPublic(t *testing.T, b bundle) *rsa.PublicKey {
	t.Helper()
	e := new(big.Int).SetBytes(mustB64(t, b.Key.E))
	return &rsa.PublicKey{N: new(big.Int).SetBytes(mustB64(t, b.Key.N)), E: int(e.Int64())}
}

func TestImport(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk := fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AQAB","d":%q,"p":%q,"q":%q,"dp":%q,"dq":%q,"qi":%q}`,
		b64s(priv.N.Bytes()), b64s(priv.D.Bytes()), b64s(priv.Primes[0].Bytes()), b64s(priv.Primes[1].Bytes()),
		b64s(priv.Precomputed.Dp.Bytes()), b64s(priv.Precomputed.Dq.Bytes()), b64s(priv.Precomputed.Qinv.Bytes()))
	var b bundle
	expect(t, f.do("PUT", "/keys/imported", `{"key":`+jwk+`,"Hsm":true}`), 200, "", "", &b)
	if b.Key.Kty != "RSA-HSM" || b.Key.N != b64s(priv.N.Bytes()) || strings.Contains(fmt.Sprint(b), priv.D.String()) {
		t.Fatalf("imported %+v", b.Key)
	}
	// What the service wraps, the imported private key unwraps.
	var ct struct{ Value string }
	expect(t, f.do("POST", "/keys/imported/wrapkey", `{"alg":"RSA-OAEP-256","value":"c2hhcmU"}`), 200, "", "", &ct)
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, priv, mustB64(t, ct.Value), nil)
	if err != nil || string(pt) != "share" {
		t.Fatalf("local unwrap: %q %v", pt, err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ec.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	expect(t, f.do("PUT", "/keys/ecimp", fmt.Sprintf(`{"key":{"kty":"EC","crv":"P-384","d":%q,"key_ops":["sign"]}}`, b64s(d))), 200, "", "", &b)
	if b.Key.Crv != "P-384" || strings.Join(b.Key.KeyOps, ",") != "sign" {
		t.Fatalf("imported EC %+v", b.Key)
	}
	digest := sha512.Sum384([]byte("m"))
	var sig struct{ Value string }
	expect(t, f.do("POST", "/keys/ecimp/sign", fmt.Sprintf(`{"alg":"ES384","value":%q}`, b64s(digest[:]))), 200, "", "", &sig)
	raw := mustB64(t, sig.Value)
	r, s := new(big.Int).SetBytes(raw[:48]), new(big.Int).SetBytes(raw[48:])
	if !ecdsa.Verify(&ec.PublicKey, digest[:], r, s) {
		t.Error("the imported EC key's signature does not verify locally")
	}
	// Control-API import, and its refusals.
	if _, err := f.s.ImportKey("contoso", "ctl", priv, false, KeySpec{}); err != nil {
		t.Fatal(err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := f.s.ImportKey("contoso", "small", small, false, KeySpec{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("import RSA-1024: %v", err)
	}
	if _, err := f.s.ImportKey("contoso", "str", "not a key", false, KeySpec{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("import a string: %v", err)
	}
}

func TestRotation(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	first := f.createKey("cmk", `{"kty":"RSA","key_ops":["wrapKey","unwrapKey"],"tags":{"a":"b"}}`)
	var ct struct{ Value string }
	expect(t, f.do("POST", "/keys/cmk/wrapkey", `{"alg":"RSA-OAEP-256","value":"c2hhcmU"}`), 200, "", "", &ct)
	// An unset policy reads as Notify 30 days before expiry.
	var pol struct {
		ID              string `json:"id"`
		LifetimeActions []struct {
			Trigger map[string]string `json:"trigger"`
			Action  map[string]string `json:"action"`
		} `json:"lifetimeActions"`
		Attributes map[string]any `json:"attributes"`
	}
	expect(t, f.do("GET", "/keys/cmk/rotationpolicy", ""), 200, "", "", &pol)
	if pol.ID != "https://contoso.vault.azure.net/keys/cmk/rotationpolicy" || len(pol.LifetimeActions) != 1 || pol.LifetimeActions[0].Action["type"] != "Notify" {
		t.Fatalf("default policy %+v", pol)
	}
	var rotated bundle
	expect(t, f.do("POST", "/keys/cmk/rotate", ""), 200, "", "", &rotated)
	if rotated.Key.Kid == first.Key.Kid || strings.Join(rotated.Key.KeyOps, ",") != "wrapKey,unwrapKey" {
		t.Fatalf("rotated %+v", rotated.Key)
	}
	// The old version still unwraps; versionless crypto uses the new one.
	expect(t, f.do("POST", "/keys/cmk/"+version(first.Key.Kid)+"/unwrapkey", `{"alg":"RSA-OAEP-256","value":"`+ct.Value+`"}`), 200, "", "", nil)
	var w2 struct{ Kid string }
	expect(t, f.do("POST", "/keys/cmk/wrapkey", `{"alg":"RSA-OAEP-256","value":"c2hhcmU"}`), 200, "", "", &w2)
	if w2.Kid != rotated.Key.Kid {
		t.Errorf("versionless wrap used %s, want %s", w2.Kid, rotated.Key.Kid)
	}
	// A policy rotates by itself when due, and new versions expire.
	expect(t, f.do("PUT", "/keys/cmk/rotationpolicy", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"rotate"}}],"attributes":{"expiryTime":"P90D"}}`), 200, "", "", &pol)
	if pol.LifetimeActions[0].Action["type"] != "Rotate" || pol.Attributes["expiryTime"] != "P90D" {
		t.Fatalf("stored policy %+v", pol)
	}
	f.clk.Advance(29 * 24 * time.Hour)
	if vs, _ := f.s.KeyVersions("contoso", "cmk"); len(vs) != 2 {
		t.Fatalf("%d versions before the trigger, want 2", len(vs))
	}
	f.clk.Advance(24 * time.Hour)
	var versions struct {
		Value []struct {
			Kid        string `json:"kid"`
			Attributes struct {
				Exp *int64 `json:"exp"`
			} `json:"attributes"`
		} `json:"value"`
	}
	expect(t, f.do("GET", "/keys/cmk/versions", ""), 200, "", "", &versions)
	if len(versions.Value) != 3 {
		t.Fatalf("%d versions after the trigger, want 3", len(versions.Value))
	}
	last := versions.Value[2]
	if last.Attributes.Exp == nil || *last.Attributes.Exp != f.clk.Now().Add(90*24*time.Hour).Unix() {
		t.Errorf("auto-rotated version exp %v", last.Attributes.Exp)
	}
	info, err := f.s.RotateKey("contoso", "cmk")
	if err != nil || info.Version == version(last.Kid) || info.Expires.IsZero() {
		t.Fatalf("control RotateKey %+v %v", info, err)
	}
}

func TestISODuration(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{"P90D": 90 * day, "P2Y": 730 * day, "P1Y6M": 545 * day, "P2W": 14 * day, "p28d": 28 * day} {
		if got, err := parseISODuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P", "90D", "PT1H", "P-1D", "P99999999999999999999D", "P1000Y"} {
		if _, err := parseISODuration(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestMatchAction(t *testing.T) {
	tests := []struct {
		pattern, action string
		want            bool
	}{
		{"Microsoft.KeyVault/vaults/keys/wrap/action", "microsoft.keyvault/vaults/keys/wrap/action", true},
		{"Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keys/unwrap/action", true},
		{"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/keys/read", true},
		{"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/keys/wrap/action", false},
		{"Microsoft.KeyVault/vaults/keys/wrap/action", "Microsoft.KeyVault/vaults/keys/unwrap/action", false},
		{"*", "anything", true},
	}
	for _, tc := range tests {
		if got := matchAction(tc.pattern, tc.action); got != tc.want {
			t.Errorf("matchAction(%q, %q) = %v", tc.pattern, tc.action, got)
		}
	}
}

func TestThrottleDocumented(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	v := newVaultState(VaultConfig{Name: "v", TenantID: tenantA})
	v.throttle = Throttle{Mode: ThrottleDocumented}
	big4096 := &keyVersion{kty: "RSA-HSM", rsa: &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 4095)}}}
	// RSA-4096 HSM: 250 operations per 10 s.
	for i := range 250 {
		if !v.admit(OpUnwrapKey, big4096, clk.Now()) {
			t.Fatalf("operation %d throttled, limit is 250", i+1)
		}
	}
	if v.admit(OpUnwrapKey, big4096, clk.Now()) {
		t.Fatal("operation 251 admitted")
	}
	// The budget is shared by every key of the vault: it is empty for an
	// RSA-2048 operation too.
	if v.admit(OpGetKey, nil, clk.Now()) {
		t.Fatal("the shared budget is empty, yet an RSA-2048 operation passed")
	}
	clk.Advance(40 * time.Millisecond) // refills 16 units: one RSA-4096 HSM operation
	if !v.admit(OpUnwrapKey, big4096, clk.Now()) {
		t.Fatal("not refilled")
	}
	// Creations have their own budget: 20 per 10 s for software keys.
	for i := range 20 {
		if !v.admit(OpCreateKey, nil, clk.Now()) {
			t.Fatalf("creation %d throttled", i+1)
		}
	}
	if v.admit(OpCreateKey, nil, clk.Now()) {
		t.Fatal("creation 21 admitted")
	}
}

func TestThrottleCustomHTTP(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	if err := f.s.SetThrottle("contoso", Throttle{Mode: ThrottleCustom, Rate: 1, Burst: 2, RetryAfter: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	expect(t, f.do("GET", "/keys", ""), 200, "", "", nil)
	expect(t, f.do("GET", "/keys", ""), 200, "", "", nil)
	w := f.do("GET", "/keys", "")
	expect(t, w, 429, "Throttled", "", nil)
	if w.Header().Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want 2", w.Header().Get("Retry-After"))
	}
	// Unauthenticated challenges do not spend the budget.
	expect(t, f.doAs("", "contoso.vault.azure.net", "GET", "/keys", ""), 401, "Unauthorized", "", nil)
	f.clk.Advance(time.Second)
	expect(t, f.do("GET", "/keys", ""), 200, "", "", nil)
	if err := f.s.SetThrottle("contoso", Throttle{Mode: ThrottleCustom}); !errors.Is(err, ErrInvalid) {
		t.Errorf("custom throttle without rate: %v", err)
	}
	if err := f.s.SetThrottle("contoso", Throttle{}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		expect(t, f.do("GET", "/keys", ""), 200, "", "", nil)
	}
}

func TestFaultsAndCounters(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	f.createKey("cmk", `{"kty":"RSA"}`)
	f.s.ResetCalls()
	if err := f.s.InjectFault("contoso", Fault{Status: 503, Count: 2, Ops: []Op{OpWrapKey}}); err != nil {
		t.Fatal(err)
	}
	wrap := `{"alg":"RSA-OAEP","value":"AAAA"}`
	expect(t, f.do("GET", "/keys/cmk", ""), 200, "", "", nil) // another operation: untouched
	expect(t, f.do("POST", "/keys/cmk/wrapkey", wrap), 503, "ServiceUnavailable", "", nil)
	expect(t, f.do("POST", "/keys/cmk/wrapkey", wrap), 503, "ServiceUnavailable", "", nil)
	expect(t, f.do("POST", "/keys/cmk/wrapkey", wrap), 200, "", "", nil)
	want := []Call{
		{Vault: "contoso", Op: OpGetKey, Principal: officer, Status: 200, N: 1},
		{Vault: "contoso", Op: OpWrapKey, Principal: officer, Status: 200, N: 1},
		{Vault: "contoso", Op: OpWrapKey, Principal: officer, Status: 503, N: 2},
	}
	if got := f.s.Calls(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("calls %+v\nwant  %+v", got, want)
	}
	if n := f.s.CallCount("CONTOSO", OpWrapKey, 0); n != 3 {
		t.Errorf("CallCount any status = %d", n)
	}
	// Count 0 lasts until cleared.
	if err := f.s.InjectFault("contoso", Fault{Status: 500}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		expect(t, f.do("GET", "/keys", ""), 500, "InternalServerError", "", nil)
	}
	if err := f.s.ClearFaults("contoso"); err != nil {
		t.Fatal(err)
	}
	expect(t, f.do("GET", "/keys", ""), 200, "", "", nil)
	for _, bad := range []Fault{{Status: 200}, {Status: 503, Count: -1}} {
		if err := f.s.InjectFault("contoso", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("InjectFault(%+v): %v", bad, err)
		}
	}
}

// TestDroppedConnections runs the handler behind a real listener, where
// resets and network cuts can happen.
func TestDroppedConnections(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	srv := httptest.NewServer(f.s)
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).DisableKeepAlives = true
	get := func() (*http.Response, error) {
		r, _ := http.NewRequest("GET", srv.URL+"/keys?api-version=7.6", nil)
		r.Host = "contoso.vault.azure.net"
		r.Header.Set("Authorization", "Bearer "+f.tok)
		res, err := client.Do(r)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		return res, err
	}
	if err := f.s.InjectFault("contoso", Fault{Reset: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := get(); err == nil {
		t.Fatal("a reset fault answered")
	}
	if res, err := get(); err != nil || res.StatusCode != 200 {
		t.Fatalf("after the reset: %v %v", res, err)
	}
	if err := f.s.SetOffline("contoso", true); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, err := get(); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("offline vault: %v", err)
	}
	if err := f.s.SetOffline("contoso", false); err != nil {
		t.Fatal(err)
	}
	if res, err := get(); err != nil || res.StatusCode != 200 {
		t.Fatalf("back online: %v %v", res, err)
	}
	if n := f.s.CallCount("contoso", OpListKeys, 0) - f.s.CallCount("contoso", OpListKeys, 200); n != 2 {
		t.Errorf("dropped connections counted %d times, want 2", n)
	}
}

func TestLatency(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	ns := &noSleep{}
	f.s.sleep = ns.sleep
	if err := f.s.SetLatency("contoso", 20*time.Millisecond, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		expect(t, f.do("GET", "/keys", ""), 200, "", "", nil)
	}
	if len(ns.d) != 20 {
		t.Fatalf("%d waits, want 20", len(ns.d))
	}
	for _, d := range ns.d {
		if d < 20*time.Millisecond || d >= 30*time.Millisecond {
			t.Errorf("wait %v outside [20ms, 30ms)", d)
		}
	}
	if err := f.s.SetLatency("contoso", -1, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative latency: %v", err)
	}
}

func TestFirewall(t *testing.T) {
	f := newFixture(t, VaultConfig{Network: NetworkRules{DefaultAction: "deny", AllowedIPs: []string{"192.0.2.0/28"}}})
	expect(t, f.do("GET", "/keys", ""), 200, "", "", nil) // 192.0.2.10 is inside
	if err := f.s.SetNetwork("contoso", NetworkRules{DefaultAction: "Deny", AllowedIPs: []string{"198.51.100.7"}}); err != nil {
		t.Fatal(err)
	}
	w := f.do("GET", "/keys", "")
	expect(t, w, 403, "Forbidden", "ForbiddenByFirewall", nil)
	if !strings.Contains(w.Body.String(), "Client address: 192.0.2.10") {
		t.Errorf("body %s", w.Body)
	}
	// Through the private-link name: refused without a private endpoint,
	// let through with one (a vault.azure.net token is accepted there).
	pl := "contoso.privatelink.vaultcore.azure.net"
	expect(t, f.doAs(f.tok, pl, "GET", "/keys", ""), 403, "Forbidden", "ForbiddenByFirewall", nil)
	if err := f.s.SetNetwork("contoso", NetworkRules{DefaultAction: "Deny", PrivateEndpoint: true}); err != nil {
		t.Fatal(err)
	}
	expect(t, f.doAs(f.tok, pl, "GET", "/keys", ""), 200, "", "", nil)
	expect(t, f.doAs(token(tenantA, officer, "https://vaultcore.azure.net"), pl, "GET", "/keys", ""), 200, "", "", nil)
	expect(t, f.do("GET", "/keys", ""), 403, "Forbidden", "ForbiddenByFirewall", nil)
	for _, bad := range []NetworkRules{{DefaultAction: "Maybe"}, {AllowedIPs: []string{"not-an-ip"}}} {
		if err := f.s.SetNetwork("contoso", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetNetwork(%+v): %v", bad, err)
		}
	}
}

func TestListPaging(t *testing.T) {
	f := newFixture(t, VaultConfig{})
	for i := range 30 {
		if _, err := f.s.CreateKey("contoso", fmt.Sprintf("k%02d", i), KeySpec{Type: "EC"}); err != nil {
			t.Fatal(err)
		}
	}
	type page struct {
		Value []struct {
			Kid string `json:"kid"`
		} `json:"value"`
		NextLink *string `json:"nextLink"`
	}
	var p page
	expect(t, f.do("GET", "/keys?api-version=7.5", ""), 200, "", "", &p)
	if len(p.Value) != 25 || p.NextLink == nil || p.Value[0].Kid != "https://contoso.vault.azure.net/keys/k00" {
		t.Fatalf("first page: %d items, next %v", len(p.Value), p.NextLink)
	}
	if !strings.HasPrefix(*p.NextLink, "https://contoso.vault.azure.net/keys?") || !strings.Contains(*p.NextLink, "api-version=7.5") {
		t.Fatalf("nextLink %s", *p.NextLink)
	}
	next := strings.TrimPrefix(*p.NextLink, "https://contoso.vault.azure.net")
	w := f.do("GET", next, "")
	expect(t, w, 200, "", "", &p)
	if len(p.Value) != 5 || p.NextLink != nil || !strings.Contains(w.Body.String(), `"nextLink":null`) {
		t.Fatalf("last page: %d items, body %s", len(p.Value), w.Body)
	}
}

func TestAccessPolicies(t *testing.T) {
	f := newFixture(t, VaultConfig{AccessPolicies: true})
	if err := f.s.SetAccessPolicy("contoso", officer, []string{"all"}); err != nil {
		t.Fatal(err)
	}
	f.createKey("cmk", `{"kty":"RSA"}`)
	user := token(tenantA, "user", vaultAz)
	expect(t, f.doAs(user, "contoso.vault.azure.net", "GET", "/keys/cmk", ""), 403, "Forbidden", "AccessDenied", nil)
	if err := f.s.SetAccessPolicy("contoso", "USER", []string{"Get", "wrapKey"}); err != nil {
		t.Fatal(err)
	}
	expect(t, f.doAs(user, "contoso.vault.azure.net", "GET", "/keys/cmk", ""), 200, "", "", nil)
	w := f.doAs(user, "contoso.vault.azure.net", "POST", "/keys/cmk/unwrapkey", `{"alg":"RSA-OAEP","value":"AAAA"}`)
	expect(t, w, 403, "Forbidden", "AccessDenied", nil)
	if !strings.Contains(w.Body.String(), "'appid=app-user;oid=user;iss=https://sts.windows.net/"+tenantA+"/' does not have keys unwrapKey permission on key vault 'contoso;location=westeurope'") {
		t.Errorf("body %s", w.Body)
	}
	if err := f.s.SetAccessPolicy("contoso", "user", nil); err != nil {
		t.Fatal(err)
	}
	expect(t, f.doAs(user, "contoso.vault.azure.net", "GET", "/keys/cmk", ""), 403, "Forbidden", "AccessDenied", nil)
	if err := f.s.SetAccessPolicy("contoso", "user", []string{"fly"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown permission: %v", err)
	}
}
