package gcp

import (
	"context"
	"strings"
	"testing"

	kmsapi "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/openbyok/byok/gcpkmsemu"
	"github.com/openbyok/byok/kms/gcpkms"
	"github.com/openbyok/byok/lifecycle"
)

// TestConnectorAgainstEmulator runs Test configuration, then wraps and
// unwraps, through the official client against gcpkmsemu, as the
// platform's service account of a key file.
func TestConnectorAgainstEmulator(t *testing.T) {
	ctx := context.Background()
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	platform, err := emu.CreateServiceAccount("byok-platform", "byok-platform")
	if err != nil {
		t.Fatal(err)
	}
	keyFile, err := emu.CreateServiceAccountKey(platform)
	if err != nil {
		t.Fatal(err)
	}
	adminEmail, err := emu.CreateServiceAccount("customer", "kms-admin")
	if err != nil {
		t.Fatal(err)
	}
	adminKey, err := emu.CreateServiceAccountKey(adminEmail)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.AddBinding("customer", "roles/cloudkms.admin", "serviceAccount:"+adminEmail); err != nil {
		t.Fatal(err)
	}
	admin, err := kmsapi.NewKeyManagementClient(ctx, emu.ClientOptions(adminKey)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{Parent: "projects/customer/locations/global", KeyRingId: "byok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: "projects/customer/locations/global/keyRings/byok", CryptoKeyId: "tenant-a",
		CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}}); err != nil {
		t.Fatal(err)
	}

	c, err := New(Config{CredentialsJSON: keyFile, Endpoint: emu.Addr(), RootCAs: emu.CAPool()})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Platform(ctx); p.ServiceAccount != platform {
		t.Fatalf("Platform = %+v, want the key file's account %s", p, platform)
	}
	s := Settings(keyName)
	s.Tenant = "acme"

	// Not granted yet: the permission check fails with the gcloud line.
	r, err := c.Test(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := gcpkms.ParseKeyName(keyName)
	grant := gcpkms.GrantCommand(n, platform, gcpkms.RoleEncrypterDecrypter)
	if ch := firstFailure(r); r.Passed() || ch.Name != gcpkms.CheckPermissions || !strings.Contains(ch.Remedy, grant) {
		t.Fatalf("Test without the role: first failure %+v; want %s with %q", ch, gcpkms.CheckPermissions, grant)
	}
	for _, role := range []string{gcpkms.RoleEncrypterDecrypter, "roles/cloudkms.viewer"} {
		if err := emu.AddBinding(keyName, role, "serviceAccount:"+platform); err != nil {
			t.Fatal(err)
		}
	}
	if r, err = c.Test(ctx, s); err != nil || !r.Passed() {
		t.Fatalf("Test with the roles granted: %+v, %v", r.Checks, err)
	}
	if r.KeyID != keyName+"/cryptoKeyVersions/1" {
		t.Errorf("report KeyID = %q, want the primary version it tested", r.KeyID)
	}

	p, err := c.Provider(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.Wrap(ctx, s.KeyID, []byte("customer share"))
	if err != nil {
		t.Fatal(err)
	}
	if k, v := c.SplitKeyID(w.KeyID); k != keyName || v != "1" {
		t.Fatalf("the share records %q (split %q, %q); want version 1 of %s", w.KeyID, k, v, keyName)
	}
	if pt, err := p.Unwrap(ctx, w); err != nil || string(pt) != "customer share" {
		t.Fatalf("Unwrap: %q, %v", pt, err)
	}

	// Settings that cannot become a configuration give one failing line.
	bad := Settings(keyName)
	bad.Tenant = "acme"
	bad.Options = []byte(`{"service_account":"x"}`)
	r, err = c.Test(ctx, bad)
	if err != nil || len(r.Checks) != 1 || r.Checks[0].Outcome != lifecycle.Fail || r.Checks[0].Name != gcpkms.CheckSettings {
		t.Fatalf("Test of invalid settings: %+v, %v", r, err)
	}
	bad = Settings("projects/customer")
	bad.Tenant = "acme"
	r, err = c.Test(ctx, bad)
	if err != nil || len(r.Checks) != 1 || r.Checks[0].Outcome != lifecycle.Fail || r.Checks[0].Name != gcpkms.CheckKeyName {
		t.Fatalf("Test of a malformed name: %+v, %v", r, err)
	}
	if _, err := c.Provider(ctx, bad); err == nil {
		t.Fatal("Provider of a malformed name: no error")
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Test(ctx2, s); err == nil {
		t.Fatal("Test with a done context: no error")
	}
}

func firstFailure(r lifecycle.Report) lifecycle.Check {
	for _, ch := range r.Checks {
		if ch.Outcome == lifecycle.Fail {
			return ch
		}
	}
	return lifecycle.Check{}
}
