package gcpkms

import (
	"context"
	"net"
	"testing"

	kmsapi "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/openbyok/byok/gcpkmsemu"
)

const (
	tenant  = "tenant-a"
	ring    = "projects/customer/locations/global/keyRings/byok"
	keyA    = ring + "/cryptoKeys/tenant-a"
	keyB    = ring + "/cryptoKeys/tenant-b"
	roleED  = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
	roleVwr = "roles/cloudkms.viewer"
)

// env is an emulator with the customer's key ring, keys A and B, an admin
// client as the customer, and the platform's service account granted the
// encrypter/decrypter and viewer roles on both keys.
type env struct {
	emu      *gcpkmsemu.Emulator
	platform string // the platform's service account email
	keyFile  []byte // its key file
	admin    *kmsapi.KeyManagementClient
}

func newEnv(t testing.TB) *env {
	t.Helper()
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	e := &env{emu: emu}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	e.platform, err = emu.CreateServiceAccount("byok-platform", "byok-platform")
	must(err)
	e.keyFile, err = emu.CreateServiceAccountKey(e.platform)
	must(err)
	adminEmail, err := emu.CreateServiceAccount("customer", "kms-admin")
	must(err)
	adminKey, err := emu.CreateServiceAccountKey(adminEmail)
	must(err)
	must(emu.AddBinding("customer", "roles/cloudkms.admin", "serviceAccount:"+adminEmail))
	e.admin, err = kmsapi.NewKeyManagementClient(context.Background(), emu.ClientOptions(adminKey)...)
	must(err)
	t.Cleanup(func() { e.admin.Close() })
	ctx := context.Background()
	_, err = e.admin.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{Parent: "projects/customer/locations/global", KeyRingId: "byok"})
	must(err)
	for _, id := range []string{"tenant-a", "tenant-b"} {
		e.createKey(t, id, kmspb.CryptoKey_ENCRYPT_DECRYPT, kmspb.ProtectionLevel_SOFTWARE)
	}
	return e
}

// createKey creates a key in the ring and grants the platform both roles.
func (e *env) createKey(t testing.TB, id string, purpose kmspb.CryptoKey_CryptoKeyPurpose, level kmspb.ProtectionLevel) string {
	t.Helper()
	ck := &kmspb.CryptoKey{Purpose: purpose,
		VersionTemplate: &kmspb.CryptoKeyVersionTemplate{ProtectionLevel: level, Algorithm: kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION}}
	if purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		ck.VersionTemplate.Algorithm = kmspb.CryptoKeyVersion_HMAC_SHA256
	}
	k, err := e.admin.CreateCryptoKey(context.Background(), &kmspb.CreateCryptoKeyRequest{Parent: ring, CryptoKeyId: id, CryptoKey: ck})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{roleED, roleVwr} {
		if err := e.emu.AddBinding(k.Name, role, "serviceAccount:"+e.platform); err != nil {
			t.Fatal(err)
		}
	}
	return k.Name
}

// config is the platform's configuration for tenant on key A, reaching the
// emulator with the options it documents, without retries.
func (e *env) config(extra ...option.ClientOption) Config {
	return Config{KeyName: keyA, Tenant: tenant, CredentialsJSON: e.keyFile, MaxRetries: -1,
		Endpoint: e.emu.Addr(), RootCAs: e.emu.CAPool(), ClientOptions: extra}
}

func (e *env) provider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// rotate makes a new version of key the primary, as `gcloud kms keys
// versions create --primary` does, and returns its name.
func (e *env) rotate(t testing.TB, key string) string {
	t.Helper()
	ctx := context.Background()
	v, err := e.admin.CreateCryptoKeyVersion(ctx, &kmspb.CreateCryptoKeyVersionRequest{Parent: key, CryptoKeyVersion: &kmspb.CryptoKeyVersion{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdateCryptoKeyPrimaryVersion(ctx, &kmspb.UpdateCryptoKeyPrimaryVersionRequest{Name: key, CryptoKeyVersionId: v.Name[len(key)+len("/cryptoKeyVersions/"):]}); err != nil {
		t.Fatal(err)
	}
	return v.Name
}

// setState enables or disables a version.
func (e *env) setState(t testing.TB, version string, st kmspb.CryptoKeyVersion_CryptoKeyVersionState) {
	t.Helper()
	_, err := e.admin.UpdateCryptoKeyVersion(context.Background(), &kmspb.UpdateCryptoKeyVersionRequest{
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: version, State: st}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"state"}}})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) destroy(t testing.TB, version string) {
	t.Helper()
	if _, err := e.admin.DestroyCryptoKeyVersion(context.Background(), &kmspb.DestroyCryptoKeyVersionRequest{Name: version}); err != nil {
		t.Fatal(err)
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
