package gcpkmsemu_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/openbyok/byok/gcpkmsemu"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
)

func TestUnavailableIsRetriedByTheClient(t *testing.T) {
	f := newFixture(t)
	f.emu.ResetCalls()
	f.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Encrypt"}, Code: codes.Unavailable, Count: 1})
	encrypt(t, f.user, keyName, []byte("x"), nil) // the client's retry policy covers UNAVAILABLE
	calls := f.emu.Calls()
	if calls[gcpkmsemu.Call{Method: "Encrypt", Code: codes.Unavailable}] != 1 ||
		calls[gcpkmsemu.Call{Method: "Encrypt", Principal: f.userSA, Code: codes.OK}] != 1 {
		t.Fatalf("calls = %v", calls)
	}
	f.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Encrypt"}, Code: codes.Unavailable})
	_, err := f.user.Encrypt(context.Background(), &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")}, noRetry)
	wantStatus(t, err, codes.Unavailable, "The service is currently unavailable.")
	// Other methods are not hit.
	if _, err := f.viewer.GetCryptoKey(context.Background(), &kmspb.GetCryptoKeyRequest{Name: keyName}); err != nil {
		t.Fatal(err)
	}
	f.emu.ClearFaults()
	encrypt(t, f.user, keyName, []byte("x"), nil)
}

func TestResourceExhausted(t *testing.T) {
	f := newFixture(t)
	f.emu.InjectFault(gcpkmsemu.Fault{Code: codes.ResourceExhausted, Count: 1})
	_, err := f.user.Encrypt(context.Background(), &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	st := wantStatus(t, err, codes.ResourceExhausted, "")
	ei, ok := st.Details()[0].(*errdetails.ErrorInfo)
	if !ok || ei.Reason != "RATE_LIMIT_EXCEEDED" {
		t.Fatalf("details %v", st.Details())
	}
	encrypt(t, f.user, keyName, []byte("x"), nil) // count 1: spent
}

func TestLatency(t *testing.T) {
	f := newFixture(t)
	f.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Decrypt"}, Latency: time.Hour})
	ct := encrypt(t, f.user, keyName, []byte("x"), nil).Ciphertext // Encrypt is not delayed
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: ct}, noRetry)
	wantStatus(t, err, codes.DeadlineExceeded, "")
	f.emu.ClearFaults()
	f.emu.InjectFault(gcpkmsemu.Fault{Latency: 50 * time.Millisecond, Count: 1})
	start := time.Now()
	decrypt(t, f.user, keyName, ct, nil)
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("call took %v with 50 ms latency", took)
	}
}

func TestConnectionReset(t *testing.T) {
	f := newFixture(t)
	encrypt(t, f.user, keyName, []byte("x"), nil) // connected
	f.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Encrypt"}, Reset: true, Count: 1})
	_, err := f.user.Encrypt(context.Background(), &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")}, noRetry)
	wantStatus(t, err, codes.Unavailable, "")
	encrypt(t, f.user, keyName, []byte("x"), nil) // the client reconnects
	// With the client's retry policy a reset is invisible.
	f.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Encrypt"}, Reset: true, Count: 1})
	encrypt(t, f.user, keyName, []byte("x"), nil)
}

func TestCallCounters(t *testing.T) {
	f := newFixture(t)
	f.emu.ResetCalls()
	encrypt(t, f.user, keyName, []byte("x"), nil)
	f.nobody.Encrypt(context.Background(), &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	f.viewer.GetCryptoKey(context.Background(), &kmspb.GetCryptoKeyRequest{Name: keyName})
	calls := f.emu.Calls()
	want := map[gcpkmsemu.Call]int{
		{Method: "Encrypt", Principal: f.userSA, Code: codes.OK}:             1,
		{Method: "Encrypt", Principal: f.noSA, Code: codes.PermissionDenied}: 1,
		{Method: "GetCryptoKey", Principal: f.viewerSA, Code: codes.OK}:      1,
	}
	if len(calls) != len(want) {
		t.Fatalf("calls = %v", calls)
	}
	for k, n := range want {
		if calls[k] != n {
			t.Fatalf("calls[%v] = %d, want %d (all: %v)", k, calls[k], n, calls)
		}
	}
	if n := f.emu.CallCount("Encrypt"); n != 2 {
		t.Fatalf("CallCount(Encrypt) = %d", n)
	}
	f.emu.ResetCalls()
	if n := len(f.emu.Calls()); n != 0 {
		t.Fatalf("after ResetCalls: %d", n)
	}
}

// A fault can hit one tenant's key and leave the others alone.
func TestFaultOnOneResource(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := ring + "/cryptoKeys/tenant-b"
	if _, err := f.admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring, CryptoKeyId: "tenant-b",
		CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}}); err != nil {
		t.Fatal(err)
	}
	if err := f.emu.AddBinding(other, "roles/cloudkms.cryptoKeyEncrypterDecrypter", "serviceAccount:"+f.userSA); err != nil {
		t.Fatal(err)
	}
	f.emu.InjectFault(gcpkmsemu.Fault{Resource: keyName, Code: codes.ResourceExhausted})
	_, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.ResourceExhausted, "")
	_, err = f.viewer.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: keyName + "/cryptoKeyVersions/1"})
	wantStatus(t, err, codes.ResourceExhausted, "") // under the key
	encrypt(t, f.user, other, []byte("x"), nil)
}
