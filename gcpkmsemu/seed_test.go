package gcpkmsemu_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/openbyok/byok/gcpkmsemu"
	"google.golang.org/grpc/codes"
)

func TestSeedWritesKeyFilesAndCreatesKeys(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "byok.json")
	pub, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&pub.PublicKey)
	pubPEM := strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "\n", "\n          ")
	seed, err := gcpkmsemu.ParseSeed([]byte(`
projects:
  - id: customer
serviceAccounts:
  - project: platform
    accountId: byok-platform
    keyFile: ` + keyFile + `
  - project: platform
    accountId: uploaded-key
    publicKeys:
      - |
          ` + pubPEM + `
  - project: platform
    accountId: switched-off
    disabled: true
keyRings:
  - name: projects/customer/locations/us-east1/keyRings/r
    cryptoKeys:
      - id: k
        protectionLevel: HSM
        rotationPeriod: 720h
        versions: [DESTROYED, DISABLED, ENABLED, DESTROY_SCHEDULED]
        labels: {tenant: a}
        bindings:
          - role: roles/cloudkms.cryptoKeyEncrypterDecrypter
            members: [serviceAccount:byok-platform@platform.iam.gserviceaccount.com]
          - role: roles/cloudkms.viewer
            members: [serviceAccount:byok-platform@platform.iam.gserviceaccount.com]
      - id: pinned
        versions: [ENABLED, ENABLED]
        primary: 1
`))
	if err != nil {
		t.Fatal(err)
	}
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	c := newClient(t, emu.ClientOptions(b)...)
	ctx := context.Background()
	name := "projects/customer/locations/us-east1/keyRings/r/cryptoKeys/k"
	k, err := c.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if k.Primary.GetName() != name+"/cryptoKeyVersions/3" || k.Primary.ProtectionLevel != kmspb.ProtectionLevel_HSM ||
		k.GetRotationPeriod().AsDuration().Hours() != 720 || k.NextRotationTime == nil || k.Labels["tenant"] != "a" {
		t.Fatalf("seeded key = %v", k)
	}
	for id, st := range map[string]kmspb.CryptoKeyVersion_CryptoKeyVersionState{
		"1": kmspb.CryptoKeyVersion_DESTROYED, "2": kmspb.CryptoKeyVersion_DISABLED, "4": kmspb.CryptoKeyVersion_DESTROY_SCHEDULED,
	} {
		v, err := c.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: name + "/cryptoKeyVersions/" + id})
		if err != nil || v.State != st {
			t.Fatalf("version %s = %v, %v; want %v", id, v.GetState(), err, st)
		}
	}
	encrypt(t, c, name, []byte("x"), nil)
	_, err = c.Encrypt(ctx, &kmspb.EncryptRequest{Name: "projects/customer/locations/us-east1/keyRings/r/cryptoKeys/pinned", Plaintext: []byte("x")})
	wantStatus(t, err, codes.PermissionDenied, "") // no binding on that key
	accounts := emu.ServiceAccounts()
	if len(accounts) != 3 || !accounts[1].Disabled || accounts[1].Email != "switched-off@platform.iam.gserviceaccount.com" || len(accounts[2].KeyIDs) != 1 {
		t.Fatalf("accounts = %+v", accounts)
	}
}

var badSeeds = []struct{ name, yaml, want string }{
	{"unknown field", "projects:\n  - id: p\n    colour: red\n", "field colour not found"},
	{"two documents", "projects: []\n---\nprojects: []\n", "single YAML document"},
	{"empty", "", "empty"},
}

var badApplies = []struct{ name, yaml, want string }{
	{"bad ring name", "keyRings:\n  - name: projects/p/keyRings/r\n", "does not represent a valid key ring"},
	{"unknown state", "keyRings:\n  - name: projects/p/locations/global/keyRings/r\n    cryptoKeys:\n      - id: k\n        versions: [LOST]\n", `unknown state "LOST"`},
	{"unknown role", "projects:\n  - id: p\n    bindings:\n      - role: roles/nope\n        members: [allUsers]\n", "Role roles/nope is not supported"},
	{"unknown member", "projects:\n  - id: p\n    bindings:\n      - role: roles/cloudkms.viewer\n        members: [serviceAccount:ghost@p.iam.gserviceaccount.com]\n", "does not exist"},
	{"short account id", "serviceAccounts:\n  - {project: p, accountId: ab}\n", "6-30"},
}

func TestBadSeeds(t *testing.T) {
	for _, tc := range badSeeds {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gcpkmsemu.ParseSeed([]byte(tc.yaml))
			if !errors.Is(err, gcpkmsemu.ErrSeed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseSeed = %v, want %q", err, tc.want)
			}
		})
	}
	for _, tc := range badApplies {
		t.Run(tc.name, func(t *testing.T) {
			s, err := gcpkmsemu.ParseSeed([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, err = gcpkmsemu.Start(gcpkmsemu.Options{Seed: &s})
			if !errors.Is(err, gcpkmsemu.ErrSeed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want %q", err, tc.want)
			}
		})
	}
}
