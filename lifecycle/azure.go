package lifecycle

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/azurekv"
)

// AzureConnector is the [Connector] of Azure Key Vault over kms/azurekv.
// Its exported fields are set before first use and not changed after.
type AzureConnector struct {
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

// NewAzureConnector returns a connector that signs in as platform for
// tenants that consented to the platform's app.
func NewAzureConnector(platform azurekv.PlatformApp) *AzureConnector {
	return &AzureConnector{Platform: platform}
}

var (
	_ Connector       = (*AzureConnector)(nil)
	_ ProgressTester  = (*AzureConnector)(nil)
	_ KeyLister       = (*AzureConnector)(nil)
	_ IdentityOfferer = (*AzureConnector)(nil)
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

// CertificateSecret encodes a certificate credential as the [Secret] of
// settings with [CredentialCertificate]: the private key as a PKCS #8
// "PRIVATE KEY" PEM block followed by the certificate as a "CERTIFICATE"
// PEM block (about 3.7 KB for an RSA-3072 key; the lifecycle seals it under
// the platform root key in an envelope, as it does any secret). The
// certificate is what the customer uploads to its app registration. It is
// CertificateSetSecret of a set without a Next certificate.
func CertificateSecret(c *azurekv.Certificate) (Secret, error) {
	return CertificateSetSecret(azurekv.CertificateSet{Current: c})
}

// nextHeader marks the PEM blocks of the Next certificate of a rollover
// in a [CertificateSetSecret]; blocks without it are the Current one's.
const nextHeader = "Byok-Rollover"

// CertificateSetSecret encodes a certificate credential during a rollover
// (see [Service.StartCertificateRollover]): the Current certificate and
// key as [CertificateSecret] writes them, then, if set.Next is not nil, the
// Next key and certificate as two more PEM blocks with the header
// "Byok-Rollover: next". Its errors never quote key material.
func CertificateSetSecret(set azurekv.CertificateSet) (Secret, error) {
	var b []byte
	defer func() { clear(b) }()
	for i, c := range []*azurekv.Certificate{set.Current, set.Next} {
		if i == 1 && c == nil {
			break
		}
		if c == nil || c.Cert == nil || c.Key == nil {
			return Secret{}, errors.New("lifecycle: CertificateSecret needs a certificate and its private key")
		}
		der, err := x509.MarshalPKCS8PrivateKey(c.Key)
		if err != nil {
			return Secret{}, fmt.Errorf("lifecycle: encoding the certificate's private key: %w", err)
		}
		var h map[string]string
		if i == 1 {
			h = map[string]string{nextHeader: "next"}
		}
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: h, Bytes: der})...)
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: h, Bytes: c.Cert.Raw})...)
		clear(der)
	}
	return NewSecret(string(b)), nil
}

// parseCertificateSecret decodes the Secret of [CertificateSetSecret]
// (or [CertificateSecret]): for the Current certificate, one PKCS #8 RSA
// "PRIVATE KEY" block and one "CERTIFICATE" block that matches it, in
// either order; during a rollover, the same again with the header
// "Byok-Rollover: next" for the Next one. Its errors never quote the
// secret.
func parseCertificateSecret(sec Secret) (azurekv.CertificateSet, error) {
	var cur, next azurekv.Certificate
	rest := []byte(sec.Reveal())
	defer clear(rest)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, which := &cur, ""
		switch b.Headers[nextHeader] {
		case "":
		case "next":
			c, which = &next, "next "
		default:
			return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential has a PEM block with %s %q; only \"next\" is known", nextHeader, b.Headers[nextHeader])
		}
		switch b.Type {
		case "PRIVATE KEY":
			if c.Key != nil {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential holds two %sprivate keys; it needs one PKCS #8 PRIVATE KEY block and one CERTIFICATE block", which)
			}
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			clear(b.Bytes)
			if err != nil {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential's %sPRIVATE KEY block is not a PKCS #8 key", which)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential's %sprivate key is %T; Entra ID certificate credentials need RSA", which, k)
			}
			c.Key = rk
		case "CERTIFICATE":
			if c.Cert != nil {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential holds two %scertificates; it needs exactly one", which)
			}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential's %sCERTIFICATE block does not parse: %v", which, err)
			}
			c.Cert = cert
		default:
			return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential holds a %q PEM block; it needs one PKCS #8 PRIVATE KEY block and one CERTIFICATE block", b.Type)
		}
	}
	switch {
	case cur.Key == nil || cur.Cert == nil:
		return azurekv.CertificateSet{}, errors.New("the certificate credential needs one PKCS #8 PRIVATE KEY block and one CERTIFICATE block (generate the certificate in the console)")
	case !cur.Key.PublicKey.Equal(cur.Cert.PublicKey):
		return azurekv.CertificateSet{}, errors.New("the certificate credential's private key does not match its certificate")
	}
	set := azurekv.CertificateSet{Current: &cur}
	switch {
	case next.Key == nil && next.Cert == nil:
	case next.Key == nil || next.Cert == nil:
		return azurekv.CertificateSet{}, errors.New("the certificate credential's next certificate needs one PKCS #8 PRIVATE KEY block and one CERTIFICATE block (start the rollover again in the console)")
	case !next.Key.PublicKey.Equal(next.Cert.PublicKey):
		return azurekv.CertificateSet{}, errors.New("the certificate credential's next private key does not match its certificate")
	default:
		set.Next = &next
	}
	return set, nil
}

// config turns settings into an azurekv.Config, or an error wrapping
// byok.ErrInvalidInput that says what is wrong (a [*FieldError] on
// "credential" for a mode the connector does not offer). The byok tenant
// s.Tenant is the key's required owner tag with the platform's shared
// identities ([CredentialMode.SharedIdentity]): they prove nothing about
// who owns a directory or a vault, so the key must carry the tag
// byok-tenant=<tenant> (azurekv.OwnerTagName).
func (c *AzureConnector) config(s KeySettings) (azurekv.Config, error) {
	if _, err := azurekv.ParseKeyID(s.KeyID); err != nil {
		return azurekv.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	cfg := azurekv.Config{KeyID: s.KeyID, TenantID: s.DirectoryID, OwnerTag: s.Tenant, Transport: c.Transport, Timeout: c.Timeout, Logger: c.Logger}
	switch s.Credential {
	case CredentialPlatformApp:
		cfg.Credential = c.Platform
	case CredentialClientSecret:
		cfg.Credential = azurekv.ClientSecret{ClientID: s.ClientID, Secret: s.Secret.Reveal()}
	case CredentialCertificate:
		set, err := parseCertificateSecret(s.Secret)
		if err != nil {
			return azurekv.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
		}
		cfg.Credential = azurekv.ClientCertificate{ClientID: s.ClientID, Certificates: set}
	case CredentialManagedIdentity:
		if why := c.notOffered(s.Credential); why != "" {
			return azurekv.Config{}, &FieldError{Field: "credential", Reason: why}
		}
		cfg.Credential, cfg.IdentityTenant = *c.ManagedIdentity, c.HomeTenant
	case CredentialWorkloadIdentity:
		if why := c.notOffered(s.Credential); why != "" {
			return azurekv.Config{}, &FieldError{Field: "credential", Reason: why}
		}
		cfg.Credential = azurekv.WorkloadIdentity{ClientID: s.ClientID, TokenFile: c.Workload.TokenFile}
	default:
		return azurekv.Config{}, fmt.Errorf("%w: unknown credential mode %q", byok.ErrInvalidInput, s.Credential)
	}
	cfg.SharedIdentity = s.Credential.SharedIdentity()
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
	return c.TestProgress(ctx, s, nil)
}

// TestProgress implements [ProgressTester] with
// azurekv.TestConfigurationProgress; a nil progress is Test.
func (c *AzureConnector) TestProgress(ctx context.Context, s KeySettings, progress func(Check)) (Report, error) {
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	cfg, err := c.config(s)
	if err != nil {
		ch := Check{Name: azurekv.CheckKeyURI, Outcome: Fail, Detail: err.Error(), Remedy: "fix the settings and test again"}
		if fe := (*FieldError)(nil); errors.As(err, &fe) {
			ch.Name = azurekv.CheckSettings
		}
		if progress != nil {
			progress(ch)
		}
		return Report{KeyID: s.KeyID, Checks: []Check{ch}}, nil
	}
	var report func(azurekv.Check)
	if progress != nil {
		report = func(ch azurekv.Check) { progress(check(ch)) }
	}
	ar := azurekv.TestConfigurationProgress(ctx, cfg, report)
	r := Report{KeyID: s.KeyID}
	for _, ch := range ar.Checks {
		r.Checks = append(r.Checks, check(ch))
	}
	return r, nil
}

// check turns a line of azurekv's report into one of the lifecycle's.
func check(ch azurekv.Check) Check {
	detail := ch.Reason
	if ch.Value != "" {
		detail = ch.Value + ": " + ch.Reason
	}
	return Check{Name: ch.Name, Outcome: Outcome(ch.Status), Detail: detail, Remedy: ch.Remedy}
}

// ListKeys implements [KeyLister] with azurekv.ListKeys, signing in as s
// does (s.KeyID need not be valid: the vault is vaultURL's).
func (c *AzureConnector) ListKeys(ctx context.Context, s KeySettings, vaultURL string) ([]VaultKey, error) {
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
	out := make([]VaultKey, len(keys))
	for i, k := range keys {
		out[i] = VaultKey{Name: k.Name, KeyID: k.KeyID, MoreVersions: k.MoreVersions}
		for _, v := range k.Versions {
			out[i].Versions = append(out[i].Versions, KeyVersion{KeyID: v.KeyID, Version: v.Version, Enabled: v.Enabled,
				Type: v.Type, Size: v.Size, Created: v.Created, NotBefore: v.NotBefore, Expires: v.Expires, Usable: v.Usable(now)})
		}
	}
	return out, nil
}
