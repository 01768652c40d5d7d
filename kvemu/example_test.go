package kvemu_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/openbyok/byok/kvemu"
)

// A platform's multi-tenant app, consented in a customer's tenant and
// granted Key Vault Crypto User on the customer's vault, wraps and unwraps
// a key share through the official SDK.
func ExampleStart() {
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()

	platform, _ := emu.CreateTenant(kvemu.Tenant{Name: "platform"})
	customer, _ := emu.CreateTenant(kvemu.Tenant{Name: "contoso"})
	app, _ := emu.CreateApp(kvemu.App{TenantID: platform.ID, MultiTenant: true})
	secret, _ := emu.AddSecret(app.ClientID, kvemu.Secret{})
	sp, _ := emu.Consent(customer.ID, app.ClientID)
	if err := emu.CreateVault(kvemu.VaultConfig{Name: "contoso", TenantID: customer.ID, PurgeProtection: true}); err != nil {
		log.Fatal(err)
	}
	if _, err := emu.CreateKey("contoso", "cmk", kvemu.KeySpec{Size: 2048}); err != nil {
		log.Fatal(err)
	}
	if _, err := emu.AssignRole("contoso", kvemu.RoleAssignment{PrincipalID: sp, Role: "Key Vault Crypto User"}); err != nil {
		log.Fatal(err)
	}

	opts := azcore.ClientOptions{Transport: emu.HTTPClient()}
	cred, err := azidentity.NewClientSecretCredential(customer.ID, app.ClientID, secret.Value,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
	if err != nil {
		log.Fatal(err)
	}
	keys, err := azkeys.NewClient("https://contoso.vault.azure.net", cred, &azkeys.ClientOptions{ClientOptions: opts})
	if err != nil {
		log.Fatal(err)
	}
	alg := azkeys.EncryptionAlgorithmRSAOAEP256
	share := bytes.Repeat([]byte{1}, 32)
	w, err := keys.WrapKey(context.Background(), "cmk", "", azkeys.KeyOperationParameters{Algorithm: &alg, Value: share}, nil)
	if err != nil {
		log.Fatal(err)
	}
	u, err := keys.UnwrapKey(context.Background(), "cmk", w.KID.Version(), azkeys.KeyOperationParameters{Algorithm: &alg, Value: w.Result}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrapped under", w.KID.Name(), "in", len(w.Result), "bytes; round trip ok:", bytes.Equal(u.Result, share))
	fmt.Println("token requests:", emu.TokenCount(customer.ID, app.ClientID).Requests)
	// Output:
	// wrapped under cmk in 256 bytes; round trip ok: true
	// token requests: 1
}
