package gcpkmsemu_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
)

// control calls the HTTP control API and decodes its JSON answer into out.
func control(t *testing.T, f *fixture, method, path, body string, wantStatus int, out any) {
	t.Helper()
	base := strings.TrimSuffix(f.emu.TokenURI(), "/token")
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	resp, err := f.emu.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func TestHTTPControlAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	// Faults: inject, see the official client fail, clear.
	control(t, f, "POST", "/control/faults", `{"methods":["Encrypt"],"code":"resource_exhausted","count":1}`, http.StatusNoContent, nil)
	_, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.ResourceExhausted, "")
	control(t, f, "POST", "/control/faults", `{"latency":"1h","methods":["Decrypt"]}`, http.StatusNoContent, nil)
	control(t, f, "DELETE", "/control/faults", "", http.StatusNoContent, nil)
	ct := encrypt(t, f.user, keyName, []byte("x"), nil).Ciphertext
	decrypt(t, f.user, keyName, ct, nil)
	var e struct {
		Error struct{ Code, Message string }
	}
	control(t, f, "POST", "/control/faults", `{"code":"BROKEN"}`, http.StatusBadRequest, &e)
	control(t, f, "POST", "/control/faults", `{"colour":"red"}`, http.StatusBadRequest, &e)
	if !strings.Contains(e.Error.Message, "unknown field") {
		t.Fatalf("strict decoding: %+v", e)
	}

	// Counters.
	var calls []struct {
		Method, Principal, Code string
		Count                   int
	}
	control(t, f, "GET", "/control/calls", "", http.StatusOK, &calls)
	found := false
	for _, c := range calls {
		found = found || (c.Method == "Encrypt" && c.Code == "RESOURCE_EXHAUSTED" && c.Count == 1)
	}
	if !found {
		t.Fatalf("calls %+v", calls)
	}
	control(t, f, "DELETE", "/control/calls", "", http.StatusNoContent, nil)

	// Accounts: disable the platform's account, then enable it.
	control(t, f, "PUT", "/control/service-accounts/"+f.userSA+"/disabled", `{"disabled":true}`, http.StatusNoContent, nil)
	_, err = f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.Unauthenticated, "")
	control(t, f, "PUT", "/control/service-accounts/"+f.userSA+"/disabled", `{"disabled":false}`, http.StatusNoContent, nil)
	control(t, f, "PUT", "/control/service-accounts/ghost@p.iam.gserviceaccount.com/disabled", `{"disabled":false}`, http.StatusNotFound, nil)
	var sa struct{ Email string }
	control(t, f, "POST", "/control/service-accounts", `{"project":"platform","accountId":"from-curl"}`, http.StatusOK, &sa)
	var keyFile json.RawMessage
	control(t, f, "POST", "/control/service-accounts/"+sa.Email+"/keys", "", http.StatusOK, &keyFile)

	// Bindings: grant the new account, use the key with its key file, revoke.
	grant := `{"resource":"` + keyName + `","role":"roles/cloudkms.cryptoKeyEncrypterDecrypter","member":"serviceAccount:` + sa.Email + `"}`
	control(t, f, "POST", "/control/bindings", grant, http.StatusNoContent, nil)
	c := newClient(t, f.emu.ClientOptions(keyFile)...)
	encrypt(t, c, keyName, []byte("x"), nil)
	control(t, f, "DELETE", "/control/bindings", grant, http.StatusNoContent, nil)
	_, err = c.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.PermissionDenied, "")

	// The key clock.
	var clock struct{ Now time.Time }
	before := f.emu.Now()
	control(t, f, "POST", "/control/clock/advance", `{"duration":"48h"}`, http.StatusOK, &clock)
	if d := clock.Now.Sub(before); d < 48*time.Hour || d > 49*time.Hour {
		t.Fatalf("clock moved %v", d)
	}

	// A seed.
	control(t, f, "POST", "/control/seed", "keyRings:\n  - name: projects/customer/locations/global/keyRings/seeded\n", http.StatusNoContent, nil)
	if _, err := f.admin.GetKeyRing(ctx, &kmspb.GetKeyRingRequest{Name: "projects/customer/locations/global/keyRings/seeded"}); err != nil {
		t.Fatal(err)
	}
	var pemText string
	control(t, f, "GET", "/control/ca.pem", "", http.StatusOK, &pemText)
	if pemText != string(f.emu.CACertPEM()) {
		t.Fatal("ca.pem differs")
	}
}
