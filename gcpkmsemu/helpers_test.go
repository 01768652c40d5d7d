package gcpkmsemu_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/googleapis/gax-go/v2"
	"github.com/openbyok/byok/gcpkmsemu"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Names the tests share: the platform's project with its service
// accounts, and a customer's key ring and key.
const (
	ring    = "projects/customer/locations/global/keyRings/byok"
	keyName = ring + "/cryptoKeys/tenant-a"
)

// fixture is an emulator with an admin account (roles/cloudkms.admin on
// the customer project), an encrypter/decrypter account bound on the key,
// a viewer, and an account with no role; each has a client.
type fixture struct {
	emu                             *gcpkmsemu.Emulator
	admin, user, viewer, nobody     *kms.KeyManagementClient
	adminSA, userSA, viewerSA, noSA string
	clock                           *fakeClock
}

// fakeClock is the wall clock the emulator's token checks use.
type fakeClock struct{ offset time.Duration }

func (c *fakeClock) now() time.Time { return time.Now().Add(c.offset) }

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{clock: &fakeClock{}}
	seed, err := gcpkmsemu.ParseSeed([]byte(`
projects:
  - id: customer
    number: 424242424242
    bindings:
      - role: roles/cloudkms.admin
        members: [serviceAccount:kms-admin@customer.iam.gserviceaccount.com]
serviceAccounts:
  - {project: customer, accountId: kms-admin}
  - {project: platform, accountId: byok-platform}
  - {project: platform, accountId: byok-viewer}
  - {project: platform, accountId: nobody-here}
keyRings:
  - name: ` + ring + `
    bindings:
      - role: roles/cloudkms.viewer
        members: [serviceAccount:byok-viewer@platform.iam.gserviceaccount.com]
    cryptoKeys:
      - id: tenant-a
        bindings:
          - role: roles/cloudkms.cryptoKeyEncrypterDecrypter
            members: [serviceAccount:byok-platform@platform.iam.gserviceaccount.com]
`))
	if err != nil {
		t.Fatal(err)
	}
	f.emu, err = gcpkmsemu.Start(gcpkmsemu.Options{Seed: &seed, Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.emu.Close() })
	f.adminSA = "kms-admin@customer.iam.gserviceaccount.com"
	f.userSA = "byok-platform@platform.iam.gserviceaccount.com"
	f.viewerSA = "byok-viewer@platform.iam.gserviceaccount.com"
	f.noSA = "nobody-here@platform.iam.gserviceaccount.com"
	f.admin = f.client(t, f.adminSA)
	f.user = f.client(t, f.userSA)
	f.viewer = f.client(t, f.viewerSA)
	f.nobody = f.client(t, f.noSA)
	return f
}

// client uploads a test key's public part for the account and returns an
// official client that signs in with a key file of its private part
// (CreateServiceAccountKey makes a fresh RSA key, slow under -race; its
// own tests use it).
func (f *fixture) client(t testing.TB, email string, extra ...option.ClientOption) *kms.KeyManagementClient {
	t.Helper()
	return newClient(t, append(f.emu.ClientOptions(testKeyFile(t, f.emu, email)), extra...)...)
}

var (
	testKeysOnce sync.Once
	testKeys     []*rsa.PrivateKey
	testKeyNext  atomic.Int64
)

// testRSAKey returns the test key no key file uses (an OIDC issuer's).
func testRSAKey() *rsa.PrivateKey { return testKeys[len(testKeys)-1] }

// testKeyFile uploads one of a few RSA keys made once per test binary and
// returns the key file, as the console would give it.
func testKeyFile(t testing.TB, emu *gcpkmsemu.Emulator, email string) []byte {
	t.Helper()
	testKeysOnce.Do(func() {
		for range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testKeys = append(testKeys, k)
		}
	})
	key := testKeys[testKeyNext.Add(1)%int64(len(testKeys)-1)]
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	id, err := emu.UploadServiceAccountKey(email, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(key)
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": strings.SplitN(strings.SplitN(email, "@", 2)[1], ".", 2)[0],
		"private_key_id": id, "client_email": email, "token_uri": emu.TokenURI(),
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})),
	})
	return b
}

func newClient(t testing.TB, opts ...option.ClientOption) *kms.KeyManagementClient {
	t.Helper()
	c, err := kms.NewKeyManagementClient(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// noRetry turns off the client's retries of UNAVAILABLE and
// DEADLINE_EXCEEDED for one call.
var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

// wantStatus fails unless err is a gRPC status with code and message.
func wantStatus(t *testing.T, err error, code codes.Code, msg string) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		var ae interface{ GRPCStatus() *status.Status }
		if errors.As(err, &ae) {
			st = ae.GRPCStatus()
		} else {
			t.Fatalf("err = %v (%T), want a status %v", err, err, code)
		}
	}
	if st.Code() != code || (msg != "" && st.Message() != msg) {
		t.Fatalf("status = %v %q, want %v %q", st.Code(), st.Message(), code, msg)
	}
	return st
}

func encrypt(t *testing.T, c *kms.KeyManagementClient, name string, pt, aad []byte) *kmspb.EncryptResponse {
	t.Helper()
	resp, err := c.Encrypt(context.Background(), &kmspb.EncryptRequest{Name: name, Plaintext: pt, AdditionalAuthenticatedData: aad})
	if err != nil {
		t.Fatalf("Encrypt(%s): %v", name, err)
	}
	return resp
}

func decrypt(t *testing.T, c *kms.KeyManagementClient, name string, ct, aad []byte) []byte {
	t.Helper()
	resp, err := c.Decrypt(context.Background(), &kmspb.DecryptRequest{Name: name, Ciphertext: ct, AdditionalAuthenticatedData: aad})
	if err != nil {
		t.Fatalf("Decrypt(%s): %v", name, err)
	}
	return resp.Plaintext
}
