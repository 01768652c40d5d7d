package gcpkmsemu_test

import (
	"context"
	"errors"
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

// client makes a key file for the account and an official client that
// signs in with it.
func (f *fixture) client(t testing.TB, email string, extra ...option.ClientOption) *kms.KeyManagementClient {
	t.Helper()
	keyFile, err := f.emu.CreateServiceAccountKey(email)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, append(f.emu.ClientOptions(keyFile), extra...)...)
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
