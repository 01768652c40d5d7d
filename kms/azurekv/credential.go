package azurekv

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Credential is how byok signs in to the customer's tenant. It is one of
// [PlatformApp], [ClientSecret], [ClientCertificate], [ManagedIdentity] or
// [WorkloadIdentity]. Their String methods never show secrets or keys.
type Credential interface {
	// Kind names the mode in reports and logs, e.g. "client-secret".
	Kind() string
	// AppID is the client id the vault sees ("" for a system-assigned
	// managed identity).
	AppID() string
	// String describes the credential without its secret.
	String() string
	validate() error
	tokenCredential(tenant string, opts azcore.ClientOptions) (azcore.TokenCredential, error)
}

// PlatformApp is mode (a): the platform's own multi-tenant app, consented
// by the customer's administrator in their tenant ([AdminConsentURL] or
// [CreateServicePrincipalCommand]). byok signs in as that app in the
// customer's tenant with exactly one of the app's credentials: Secret,
// Certificates, ManagedIdentity or FederatedTokenFile. The last two need
// no secret anywhere: the app trusts their tokens through a federated
// identity credential on its registration in the platform's directory.
type PlatformApp struct {
	ClientID string
	// Secret is a client secret of the app.
	Secret string
	// Certificates are the app's certificates (two during a rollover;
	// [LoadCertificateSet] reads them from PEM files).
	Certificates *CertificateSet
	// ManagedIdentity is the platform's managed identity whose token for
	// [FederatedAudience] is the app's client assertion (Microsoft's
	// "managed identity as a federated identity credential"). The app,
	// registered in the identity's directory, has a federated credential
	// with issuer https://login.microsoftonline.com/{that directory}/v2.0,
	// subject the identity's object (principal) id and audience
	// api://AzureADTokenExchange. &ManagedIdentity{} is the host's
	// system-assigned identity.
	ManagedIdentity *ManagedIdentity
	// FederatedTokenFile is a workload identity token file
	// (AZURE_FEDERATED_TOKEN_FILE in AKS) whose content is the app's client
	// assertion, read again for every assertion; the app has a federated
	// credential with the workload's issuer and subject.
	FederatedTokenFile string
}

// ClientSecret is mode (b): the customer's own app registration and a
// client secret they created for it. ExpiresAt, if the customer gives it
// (the portal shows it), lets Test configuration warn before it expires.
type ClientSecret struct {
	ClientID  string
	Secret    string
	ExpiresAt time.Time
}

// ClientCertificate is mode (c), the recommended one: the customer's own
// app registration holding certificates that byok generated
// ([GenerateCertificate]); byok keeps the private keys.
type ClientCertificate struct {
	ClientID     string
	Certificates CertificateSet
}

// ManagedIdentity is mode (d) for platforms running in Azure: the host's
// system-assigned identity (empty ClientID and ResourceID) or a
// user-assigned one. A managed identity lives in the platform's tenant, so
// it reaches only vaults in that tenant.
type ManagedIdentity struct {
	ClientID   string
	ResourceID string
}

// WorkloadIdentity is mode (d) for Kubernetes and other federated
// workloads: an app (ClientID) that trusts the workload's tokens, read
// from TokenFile (AZURE_FEDERATED_TOKEN_FILE in AKS).
type WorkloadIdentity struct {
	ClientID  string
	TokenFile string
}

func (PlatformApp) Kind() string       { return "platform-app" }
func (ClientSecret) Kind() string      { return "client-secret" }
func (ClientCertificate) Kind() string { return "client-certificate" }
func (ManagedIdentity) Kind() string   { return "managed-identity" }
func (WorkloadIdentity) Kind() string  { return "workload-identity" }

func (c PlatformApp) AppID() string       { return c.ClientID }
func (c ClientSecret) AppID() string      { return c.ClientID }
func (c ClientCertificate) AppID() string { return c.ClientID }
func (c ManagedIdentity) AppID() string   { return c.ClientID }
func (c WorkloadIdentity) AppID() string  { return c.ClientID }

func (c PlatformApp) String() string {
	switch {
	case c.ManagedIdentity != nil:
		return fmt.Sprintf("platform app %s with the token of the %s as its federated credential", c.ClientID, *c.ManagedIdentity)
	case c.FederatedTokenFile != "":
		return fmt.Sprintf("platform app %s with the workload identity token file %s as its federated credential", c.ClientID, c.FederatedTokenFile)
	case c.Certificates != nil:
		return fmt.Sprintf("platform app %s with a certificate", c.ClientID)
	}
	return fmt.Sprintf("platform app %s with a secret", c.ClientID)
}
func (c ClientSecret) String() string { return fmt.Sprintf("app %s with a client secret", c.ClientID) }
func (c ClientCertificate) String() string {
	return fmt.Sprintf("app %s with %s", c.ClientID, c.Certificates.Current)
}
func (c ManagedIdentity) String() string {
	if c.ClientID == "" && c.ResourceID == "" {
		return "system-assigned managed identity"
	}
	return "user-assigned managed identity " + c.ClientID + c.ResourceID
}
func (c WorkloadIdentity) String() string {
	return fmt.Sprintf("workload identity of app %s (token file %s)", c.ClientID, c.TokenFile)
}

// LogValue keeps secrets out of structured logs.
func (c PlatformApp) LogValue() slog.Value  { return slog.StringValue(c.String()) }
func (c ClientSecret) LogValue() slog.Value { return slog.StringValue(c.String()) }

// GoString keeps secrets out of %#v.
func (c PlatformApp) GoString() string  { return c.String() }
func (c ClientSecret) GoString() string { return c.String() }

func (c PlatformApp) validate() error {
	if err := checkGUID("the platform app's client id", c.ClientID); err != nil {
		return err
	}
	var set []string
	if c.Secret != "" {
		set = append(set, "a client secret")
	}
	if c.Certificates != nil {
		set = append(set, "certificates")
	}
	if c.ManagedIdentity != nil {
		set = append(set, "a managed identity")
	}
	if c.FederatedTokenFile != "" {
		set = append(set, "a workload identity token file")
	}
	const choices = "Secret, Certificates, ManagedIdentity (its token as a federated credential) or FederatedTokenFile (workload identity)"
	switch {
	case len(set) == 0:
		return errors.New("the platform app has no credential; give one of " + choices)
	case len(set) > 1:
		return fmt.Errorf("the platform app has %s; give one of %s", strings.Join(set, " and "), choices)
	case c.Certificates != nil:
		return c.Certificates.validate()
	case c.ManagedIdentity != nil:
		return c.ManagedIdentity.validate()
	}
	return nil
}

func (c ClientSecret) validate() error {
	if err := checkGUID("the app's client id", c.ClientID); err != nil {
		return err
	}
	if c.Secret == "" {
		return errors.New("the client secret is empty; paste the secret's Value (not its Secret ID) from the app's Certificates & secrets blade")
	}
	if isGUID(c.Secret) {
		return errors.New("the client secret looks like a GUID: that is the Secret ID; paste the secret's Value from the app's Certificates & secrets blade")
	}
	return nil
}

func (c ClientCertificate) validate() error {
	if err := checkGUID("the app's client id", c.ClientID); err != nil {
		return err
	}
	return c.Certificates.validate()
}

func (c ManagedIdentity) validate() error {
	if c.ClientID != "" && c.ResourceID != "" {
		return errors.New("a managed identity is named by its client id or its resource id, not both")
	}
	if c.ClientID != "" {
		return checkGUID("the managed identity's client id", c.ClientID)
	}
	return nil
}

func (c WorkloadIdentity) validate() error {
	if err := checkGUID("the app's client id", c.ClientID); err != nil {
		return err
	}
	if c.TokenFile == "" {
		return errors.New("the workload identity needs the path of its federated token file (AZURE_FEDERATED_TOKEN_FILE)")
	}
	return nil
}

func (c PlatformApp) tokenCredential(tenant string, o azcore.ClientOptions) (azcore.TokenCredential, error) {
	switch {
	case c.Certificates != nil:
		return newCertCredential(tenant, c.ClientID, *c.Certificates, o), nil
	case c.ManagedIdentity != nil:
		return newMIAssertionCredential(tenant, c.ClientID, *c.ManagedIdentity, o)
	case c.FederatedTokenFile != "":
		return newFileAssertionCredential(tenant, c.ClientID, c.FederatedTokenFile, o)
	}
	return azidentity.NewClientSecretCredential(tenant, c.ClientID, c.Secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: o})
}

func (c ClientSecret) tokenCredential(tenant string, o azcore.ClientOptions) (azcore.TokenCredential, error) {
	return azidentity.NewClientSecretCredential(tenant, c.ClientID, c.Secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: o})
}

func (c ClientCertificate) tokenCredential(tenant string, o azcore.ClientOptions) (azcore.TokenCredential, error) {
	return newCertCredential(tenant, c.ClientID, c.Certificates, o), nil
}

func (c ManagedIdentity) tokenCredential(_ string, o azcore.ClientOptions) (azcore.TokenCredential, error) {
	opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: o}
	switch {
	case c.ClientID != "":
		opts.ID = azidentity.ClientID(c.ClientID)
	case c.ResourceID != "":
		opts.ID = azidentity.ResourceID(c.ResourceID)
	}
	return azidentity.NewManagedIdentityCredential(opts)
}

func (c WorkloadIdentity) tokenCredential(tenant string, o azcore.ClientOptions) (azcore.TokenCredential, error) {
	return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: o, ClientID: c.ClientID, TenantID: tenant, TokenFilePath: c.TokenFile})
}

// certCredential authenticates with the newest valid certificate of a set
// that Entra ID accepts: during a rollover it tries Next first and falls
// back to Current while Entra ID refuses Next (not uploaded yet).
type certCredential struct {
	set   CertificateSet
	creds map[*Certificate]azcore.TokenCredential
	now   func() time.Time

	mu   sync.Mutex
	last *Certificate // the certificate of the last token issued
}

func newCertCredential(tenant, clientID string, set CertificateSet, o azcore.ClientOptions) *certCredential {
	cc := &certCredential{set: set, creds: map[*Certificate]azcore.TokenCredential{}, now: time.Now}
	for _, c := range []*Certificate{set.Current, set.Next} {
		if c == nil {
			continue
		}
		// NewClientCertificateCredential only fails on empty arguments,
		// which validate has excluded.
		cred, err := azidentity.NewClientCertificateCredential(tenant, clientID, []*x509.Certificate{c.Cert}, c.Key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: o})
		if err == nil {
			cc.creds[c] = cred
		}
	}
	return cc
}

// GetToken implements azcore.TokenCredential.
func (cc *certCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	cands := cc.set.candidates(cc.now())
	if len(cands) == 0 {
		return azcore.AccessToken{}, errNoValidCertificate
	}
	var err error
	for _, c := range cands {
		var tok azcore.AccessToken
		tok, err = cc.creds[c].GetToken(ctx, opts)
		if err == nil {
			cc.mu.Lock()
			cc.last = c
			cc.mu.Unlock()
			return tok, nil
		}
		if !refusedByEntra(err) {
			return tok, err
		}
	}
	return azcore.AccessToken{}, err
}

// inUse returns the certificate of the last token issued, or nil.
func (cc *certCredential) inUse() *Certificate {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.last
}

// errNoValidCertificate: no certificate of a set is valid now.
var errNoValidCertificate = errors.New("azurekv: every certificate of the app's certificate set has expired or is not yet valid; generate a new one (GenerateCertificate) and have the customer upload it")

// refusedByEntra reports whether err is Entra ID's answer (4xx), as opposed
// to a failure to reach it.
func refusedByEntra(err error) bool {
	var afe *azidentity.AuthenticationFailedError
	return errors.As(err, &afe) && afe.RawResponse != nil &&
		afe.RawResponse.StatusCode >= 400 && afe.RawResponse.StatusCode < 500 &&
		afe.RawResponse.StatusCode != http.StatusTooManyRequests && afe.RawResponse.StatusCode != http.StatusRequestTimeout
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func checkGUID(what, s string) error {
	if !isGUID(s) {
		return fmt.Errorf("%s %q is not a GUID such as 11111111-2222-3333-4444-555555555555 (Application (client) ID on the app's Overview blade)", what, s)
	}
	return nil
}
