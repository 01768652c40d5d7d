package gcpkms_test

import (
	"context"
	"fmt"
	"log"

	"github.com/openbyok/byok/gcpkmsemu"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/gcpkms"
)

// A tenant's share wrapped under the customer's key in Cloud KMS (here
// gcpkmsemu), with the tenant, version and binding in the AAD.
func Example() {
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	seed, err := gcpkmsemu.ParseSeed([]byte(`
serviceAccounts:
  - {project: byok-platform, accountId: byok-platform}
keyRings:
  - name: projects/customer/locations/global/keyRings/byok
    cryptoKeys:
      - id: tenant-a
        bindings:
          - role: roles/cloudkms.cryptoKeyEncrypterDecrypter
            members: [serviceAccount:byok-platform@byok-platform.iam.gserviceaccount.com]
`))
	if err != nil {
		log.Fatal(err)
	}
	if err := emu.ApplySeed(seed); err != nil {
		log.Fatal(err)
	}
	keyFile, _ := emu.CreateServiceAccountKey("byok-platform@byok-platform.iam.gserviceaccount.com")

	ctx := context.Background()
	p, err := gcpkms.New(ctx, gcpkms.Config{Tenant: "tenant-a", CredentialsJSON: keyFile,
		Endpoint: emu.Addr(), RootCAs: emu.CAPool()})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	ctx = kms.WithBinding(ctx, kms.Binding{Kind: "customer-managed", Epoch: 1})
	w, err := p.Wrap(ctx, "projects/customer/locations/global/keyRings/byok/cryptoKeys/tenant-a", make([]byte, 32))
	if err != nil {
		log.Fatal(err)
	}
	share, err := p.Unwrap(ctx, w)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.KeyID)
	fmt.Println(w.Algorithm)
	fmt.Println(len(share))
	// Output:
	// projects/customer/locations/global/keyRings/byok/cryptoKeys/tenant-a/cryptoKeyVersions/1
	// GOOGLE_SYMMETRIC_ENCRYPTION;kind=customer-managed;epoch=1
	// 32
}
