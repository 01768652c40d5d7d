package lifecycle_test

import (
	"context"
	"errors"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/lifecycle"
)

// TestAzureConnectorRejects: settings that can never work fail without a
// network call, as invalid input or as a failing report line.
func TestAzureConnectorRejects(t *testing.T) {
	c := lifecycle.NewAzureConnector(azurekv.PlatformApp{ClientID: "00000000-0000-0000-0000-000000000001", Secret: "platform-secret"})
	good := lifecycle.KeySettings{Provider: lifecycle.ProviderAzure, KeyID: "https://myvault.vault.azure.net/keys/k1",
		DirectoryID: "00000000-0000-0000-0000-0000000000aa", ClientID: "00000000-0000-0000-0000-000000000001", Credential: lifecycle.CredentialPlatformApp}
	if _, err := c.Provider(context.Background(), good); err != nil {
		t.Fatalf("Provider of valid settings: %v", err)
	}
	for name, s := range map[string]lifecycle.KeySettings{
		"malformed key id": func() lifecycle.KeySettings {
			s := good
			s.KeyID = "https://myvault.vault.azure.net/secrets/k1"
			return s
		}(),
		"certificate": func() lifecycle.KeySettings { s := good; s.Credential = lifecycle.CredentialCertificate; return s }(),
	} {
		if _, err := c.Provider(context.Background(), s); !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("%s: Provider: %v", name, err)
		}
		r, err := c.Test(context.Background(), s)
		if err != nil || r.Passed() {
			t.Errorf("%s: Test: %+v, %v", name, r, err)
		}
	}
}
