package azure

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/lifecycle"
)

// Connector is the [lifecycle.Connector] of Azure Key Vault over kms/azurekv.
// Its exported fields are set before first use and not changed after.
type Connector struct {
	// Platform is the platform's own multi-tenant app, used for tenants
	// whose credential is [CredentialPlatformApp].
	Platform azurekv.PlatformApp
	// ManagedIdentity is the platform's managed identity, offered to
	// tenants whose vault is in the platform's own directory HomeTenant
	// (credential mode [CredentialManagedIdentity]): they give it a role
	// on their vault. The zero value is the host's system-assigned
	// identity; ClientID or ResourceID name a user-assigned one. Nil, or
	// an empty HomeTenant: the mode is not offered.
	ManagedIdentity *azurekv.ManagedIdentity
	// HomeTenant is the platform's own directory (tenant) id, where
	// ManagedIdentity lives; managed-identity settings must name it as
	// their directory.
	HomeTenant string
	// Workload is the platform's workload identity, offered to tenants
	// whose own app trusts it through a federated identity credential
	// (credential mode [CredentialWorkloadIdentity]); nil: the mode is not
	// offered.
	Workload *WorkloadFederation
	// Transport, Timeout and Logger are passed to every azurekv.Config;
	// tests pass kvemu's transport.
	Transport policy.Transporter
	Timeout   time.Duration
	Logger    *slog.Logger

	principals principalCache // who ManagedIdentity is (azureidentity.go)
}

// NewConnector returns a connector that signs in as platform for
// tenants that consented to the platform's app.
func NewConnector(platform azurekv.PlatformApp) *Connector {
	return &Connector{Platform: platform}
}

var (
	_ lifecycle.Connector        = (*Connector)(nil)
	_ lifecycle.ProgressTester   = (*Connector)(nil)
	_ lifecycle.KeyLister        = (*Connector)(nil)
	_ lifecycle.CredentialRoller = (*Connector)(nil)
)

// WorkloadFederation is the platform's workload identity: the federated
// token byok presents as the client assertion of a customer's app, and the
// issuer and subject that app's federated credential must name (shown in
// the setup steps; read from the token when empty).
type WorkloadFederation struct {
	// TokenFile holds the workload's current token (on AKS the file named
	// by AZURE_FEDERATED_TOKEN_FILE, which kubelet refreshes); it is read
	// at every sign-in.
	TokenFile string
	// Issuer is the platform's OIDC issuer URL, e.g. the AKS cluster's
	// OIDC issuer.
	Issuer string
	// Subject is byok's workload, e.g. system:serviceaccount:byok:byok.
	Subject string
}

// config turns settings into an azurekv.Config, or an error wrapping
// byok.ErrInvalidInput that says what is wrong (a *lifecycle.FieldError on
// "credential" for a mode the connector does not offer). The byok tenant
// s.Tenant is the key's required owner tag with the platform's shared
// identities ([CredentialMode.SharedIdentity]): they prove nothing about
// who owns a directory or a vault, so the key must carry the tag
// byok-tenant=<tenant> (azurekv.OwnerTagName).
func (c *Connector) config(s lifecycle.KeySettings) (azurekv.Config, error) {
	if _, err := azurekv.ParseKeyID(s.KeyID); err != nil {
		return azurekv.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	o, err := OptionsOf(s)
	if err != nil {
		return azurekv.Config{}, err
	}
	cfg := azurekv.Config{KeyID: s.KeyID, TenantID: o.DirectoryID, OwnerTag: s.Tenant, Transport: c.Transport, Timeout: c.Timeout, Logger: c.Logger}
	switch o.Credential {
	case CredentialPlatformApp:
		cfg.Credential = c.Platform
	case CredentialClientSecret:
		cfg.Credential = azurekv.ClientSecret{ClientID: o.ClientID, Secret: s.Secret.Reveal()}
	case CredentialCertificate:
		set, err := parseCertificateSecret(s.Secret)
		if err != nil {
			return azurekv.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
		}
		cfg.Credential = azurekv.ClientCertificate{ClientID: o.ClientID, Certificates: set}
	case CredentialManagedIdentity:
		if why := c.notOffered(o.Credential); why != "" {
			return azurekv.Config{}, &lifecycle.FieldError{Field: "credential", Reason: why}
		}
		cfg.Credential, cfg.IdentityTenant = *c.ManagedIdentity, c.HomeTenant
	case CredentialWorkloadIdentity:
		if why := c.notOffered(o.Credential); why != "" {
			return azurekv.Config{}, &lifecycle.FieldError{Field: "credential", Reason: why}
		}
		cfg.Credential = azurekv.WorkloadIdentity{ClientID: o.ClientID, TokenFile: c.Workload.TokenFile}
	default:
		return azurekv.Config{}, fmt.Errorf("%w: unknown credential mode %q", byok.ErrInvalidInput, o.Credential)
	}
	cfg.SharedIdentity = o.Credential.SharedIdentity()
	if err := cfg.Validate(); err != nil {
		return azurekv.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	return cfg, nil
}

// Provider implements [lifecycle.Connector]. It makes no network call.
func (c *Connector) Provider(ctx context.Context, s lifecycle.KeySettings) (kms.Provider, error) {
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

// Test implements [lifecycle.Connector] with azurekv.TestConfiguration. Settings
// that cannot even be turned into a configuration give a report with one
// failing line, not an error.
func (c *Connector) Test(ctx context.Context, s lifecycle.KeySettings) (lifecycle.Report, error) {
	return c.TestProgress(ctx, s, nil)
}

// TestProgress implements [lifecycle.ProgressTester] with
// azurekv.TestConfigurationProgress; a nil progress is Test.
func (c *Connector) TestProgress(ctx context.Context, s lifecycle.KeySettings, progress func(lifecycle.Check)) (lifecycle.Report, error) {
	if err := ctx.Err(); err != nil {
		return lifecycle.Report{}, err
	}
	cfg, err := c.config(s)
	if err != nil {
		return lifecycle.UnusableSettings(s, err, azurekv.CheckKeyURI, azurekv.CheckSettings, progress), nil
	}
	var report func(azurekv.Check)
	if progress != nil {
		report = func(ch azurekv.Check) { progress(check(ch)) }
	}
	ar := azurekv.TestConfigurationProgress(ctx, cfg, report)
	r := lifecycle.Report{KeyID: s.KeyID}
	for _, ch := range ar.Checks {
		r.Checks = append(r.Checks, check(ch))
	}
	return r, nil
}

// check turns a line of azurekv's report into one of the lifecycle's.
func check(ch azurekv.Check) lifecycle.Check {
	detail := ch.Reason
	if ch.Value != "" {
		detail = ch.Value + ": " + ch.Reason
	}
	return lifecycle.Check{Name: ch.Name, Outcome: lifecycle.Outcome(ch.Status), Detail: detail, Remedy: ch.Remedy}
}

// ListKeys implements [lifecycle.KeyLister] with azurekv.ListKeys, signing in as s
// does (s.KeyID need not be valid: the vault is vaultURL's).
func (c *Connector) ListKeys(ctx context.Context, s lifecycle.KeySettings, vaultURL string) ([]lifecycle.VaultKey, error) {
	v, err := azurekv.ParseVaultURL(vaultURL)
	if err != nil {
		return nil, azurekv.Classify("list", vaultURL, err)
	}
	s.KeyID = v.VaultURL() + "/keys/list" // config checks a key id; ListKeys ignores it
	cfg, err := c.config(s)
	if err != nil {
		return nil, &kms.Error{Op: "list", KeyID: vaultURL, Class: kms.Invalid, Reason: kms.ReasonBadRequest, Err: err}
	}
	keys, err := azurekv.ListKeys(ctx, cfg, vaultURL)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]lifecycle.VaultKey, len(keys))
	for i, k := range keys {
		out[i] = lifecycle.VaultKey{Name: k.Name, KeyID: k.KeyID, MoreVersions: k.MoreVersions}
		for _, v := range k.Versions {
			out[i].Versions = append(out[i].Versions, lifecycle.KeyVersion{KeyID: v.KeyID, Version: v.Version, Enabled: v.Enabled,
				Type: v.Type, Size: v.Size, Created: v.Created, NotBefore: v.NotBefore, Expires: v.Expires, Usable: v.Usable(now)})
		}
	}
	return out, nil
}
