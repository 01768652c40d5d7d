package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/azurekv"
)

// AzureConnector is the [Connector] of Azure Key Vault over kms/azurekv.
type AzureConnector struct {
	// Platform is the platform's own multi-tenant app, used for tenants
	// whose credential is [CredentialPlatformApp].
	Platform azurekv.PlatformApp
	// Transport, Timeout and Logger are passed to every azurekv.Config;
	// tests pass kvemu's transport.
	Transport policy.Transporter
	Timeout   time.Duration
	Logger    *slog.Logger
}

// NewAzureConnector returns a connector that signs in as platform for
// tenants that consented to the platform's app.
func NewAzureConnector(platform azurekv.PlatformApp) *AzureConnector {
	return &AzureConnector{Platform: platform}
}

var _ Connector = (*AzureConnector)(nil)

// config turns settings into an azurekv.Config, or an error wrapping
// byok.ErrInvalidInput that says what is wrong.
func (c *AzureConnector) config(s KeySettings) (azurekv.Config, error) {
	if _, err := azurekv.ParseKeyID(s.KeyID); err != nil {
		return azurekv.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	cfg := azurekv.Config{KeyID: s.KeyID, TenantID: s.DirectoryID, Transport: c.Transport, Timeout: c.Timeout, Logger: c.Logger}
	switch s.Credential {
	case CredentialPlatformApp:
		cfg.Credential = c.Platform
	case CredentialClientSecret:
		cfg.Credential = azurekv.ClientSecret{ClientID: s.ClientID, Secret: s.Secret.Reveal()}
	case CredentialCertificate:
		return azurekv.Config{}, fmt.Errorf("%w: the certificate credential is not supported by this connector yet; use %s or %s",
			byok.ErrInvalidInput, CredentialPlatformApp, CredentialClientSecret)
	default:
		return azurekv.Config{}, fmt.Errorf("%w: unknown credential mode %q", byok.ErrInvalidInput, s.Credential)
	}
	if err := cfg.Validate(); err != nil {
		return azurekv.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	return cfg, nil
}

// Provider implements [Connector]. It makes no network call.
func (c *AzureConnector) Provider(ctx context.Context, s KeySettings) (kms.Provider, error) {
	cfg, err := c.config(s)
	if err != nil {
		return nil, err
	}
	p, err := azurekv.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	return p, nil
}

// Test implements [Connector] with azurekv.TestConfiguration. Settings
// that cannot even be turned into a configuration give a report with one
// failing line, not an error.
func (c *AzureConnector) Test(ctx context.Context, s KeySettings) (Report, error) {
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	cfg, err := c.config(s)
	if err != nil {
		return Report{KeyID: s.KeyID, Checks: []Check{{Name: azurekv.CheckKeyURI, Outcome: Fail,
			Detail: err.Error(), Remedy: "fix the settings and test again"}}}, nil
	}
	ar := azurekv.TestConfiguration(ctx, cfg)
	r := Report{KeyID: s.KeyID}
	for _, ch := range ar.Checks {
		detail := ch.Reason
		if ch.Value != "" {
			detail = ch.Value + ": " + ch.Reason
		}
		r.Checks = append(r.Checks, Check{Name: ch.Name, Outcome: Outcome(ch.Status), Detail: detail, Remedy: ch.Remedy})
	}
	return r, nil
}
