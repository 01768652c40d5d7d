package gcpkmsemu_test

import (
	"context"
	"fmt"
	"log"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/openbyok/byok/gcpkmsemu"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
)

// The official client against the emulator: a service account with a key
// file, a binding, then the calls byok makes.
func Example() {
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()

	email, _ := emu.CreateServiceAccount("platform", "byok-platform")
	keyFile, _ := emu.CreateServiceAccountKey(email) // token_uri is emu.TokenURI()
	emu.AddBinding("customer", "roles/cloudkms.admin", "serviceAccount:"+email)

	ctx := context.Background()
	client, err := kms.NewKeyManagementClient(ctx,
		option.WithEndpoint(emu.Addr()),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(emu.TransportCredentials())),
		option.WithAuthCredentialsJSON(option.ServiceAccount, keyFile))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ring, err := client.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{
		Parent: "projects/customer/locations/global", KeyRingId: "byok"})
	if err != nil {
		log.Fatal(err)
	}
	key, err := client.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{
		Parent: ring.Name, CryptoKeyId: "tenant-a",
		CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
	if err != nil {
		log.Fatal(err)
	}
	emu.AddBinding(key.Name, "roles/cloudkms.cryptoKeyEncrypterDecrypter", "serviceAccount:"+email)

	enc, err := client.Encrypt(ctx, &kmspb.EncryptRequest{Name: key.Name, Plaintext: []byte("a DEK"),
		AdditionalAuthenticatedData: []byte("tenant=a")})
	if err != nil {
		log.Fatal(err)
	}
	dec, err := client.Decrypt(ctx, &kmspb.DecryptRequest{Name: key.Name, Ciphertext: enc.Ciphertext,
		AdditionalAuthenticatedData: []byte("tenant=a")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(enc.Name)
	fmt.Println(string(dec.Plaintext))
	// Output:
	// projects/customer/locations/global/keyRings/byok/cryptoKeys/tenant-a/cryptoKeyVersions/1
	// a DEK
}
