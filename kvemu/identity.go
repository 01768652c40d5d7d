package kvemu

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"

	"github.com/openbyok/byok/internal/emuca"
	"github.com/openbyok/byok/kvemu/internal/entra"
)

// Entra directory objects, as the control methods take and return them.
type (
	// Tenant is an Entra directory: a GUID id, an optional display name
	// and optional domain names (contoso.onmicrosoft.com).
	Tenant = entra.Tenant
	// App is an app registration; ObjectID is its service principal's
	// object id in its home tenant.
	App = entra.App
	// Secret is a client secret of an app, with an optional expiry.
	Secret = entra.Secret
	// Certificate describes a certificate credential of an app.
	Certificate = entra.Certificate
	// ManagedIdentity is a system- or user-assigned managed identity of
	// the emulated host (IMDS and App Service endpoints).
	ManagedIdentity = entra.ManagedIdentity
	// FederatedCredential trusts an external issuer's tokens for an app.
	FederatedCredential = entra.FederatedCredential
	// TokenCount counts token requests of one tenant and client.
	TokenCount = entra.TokenCount
)

// CreateTenant adds a tenant; an empty ID gets a new GUID.
func (e *Emulator) CreateTenant(t Tenant) (Tenant, error) { return e.entra.CreateTenant(t) }

// Tenants lists the tenants.
func (e *Emulator) Tenants() []Tenant { return e.entra.Tenants() }

// CreateApp registers an app in a.TenantID with its service principal
// there; empty ClientID and ObjectID are generated. The result carries
// both.
func (e *Emulator) CreateApp(a App) (App, error) { return e.entra.CreateApp(a) }

// AddSecret adds a client secret to the app; an empty Value is generated.
// The returned Secret is the only place the value appears.
func (e *Emulator) AddSecret(clientID string, s Secret) (Secret, error) {
	return e.entra.AddSecret(clientID, s)
}

// RemoveSecret deletes a client secret by id.
func (e *Emulator) RemoveSecret(clientID, secretID string) error {
	return e.entra.RemoveSecret(clientID, secretID)
}

// AddCertificate adds a DER certificate (RSA key) as a credential of the
// app.
func (e *Emulator) AddCertificate(clientID string, der []byte) (Certificate, error) {
	return e.entra.AddCertificate(clientID, der)
}

// RemoveCertificate deletes a certificate credential by its hex SHA-256
// thumbprint.
func (e *Emulator) RemoveCertificate(clientID, thumbprintSHA256 string) error {
	return e.entra.RemoveCertificate(clientID, thumbprintSHA256)
}

// CreateCertificate makes a self-signed RSA-2048 certificate valid from
// now until notAfter, adds it to the app and returns it with its key, ready
// for azidentity.NewClientCertificateCredential.
func (e *Emulator) CreateCertificate(clientID string, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	now := e.now()
	tmpl := &x509.Certificate{
		SerialNumber: emuca.Serial(),
		Subject:      pkix.Name{CommonName: "kvemu client " + clientID},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("kvemu: create client certificate: %w", err)
	}
	if _, err := e.entra.AddCertificate(clientID, der); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// Consent creates the multi-tenant app's service principal in tenantID (as
// admin consent or `az ad sp create --id` does) and returns its object id,
// the principal to name in role assignments on that tenant's vaults.
func (e *Emulator) Consent(tenantID, clientID string) (string, error) {
	return e.entra.Consent(tenantID, clientID)
}

// RevokeConsent deletes the app's service principal from tenantID; token
// requests there then fail with AADSTS700016.
func (e *Emulator) RevokeConsent(tenantID, clientID string) error {
	return e.entra.RevokeConsent(tenantID, clientID)
}

// ServicePrincipal returns the object id of the app's service principal in
// tenantID.
func (e *Emulator) ServicePrincipal(tenantID, clientID string) (string, error) {
	return e.entra.ServicePrincipal(tenantID, clientID)
}

// CreateManagedIdentity adds a managed identity to the emulated host;
// empty ClientID, ObjectID and ResourceID are generated.
func (e *Emulator) CreateManagedIdentity(mi ManagedIdentity) (ManagedIdentity, error) {
	return e.entra.CreateManagedIdentity(mi)
}

// DeleteManagedIdentity removes a managed identity by client id.
func (e *Emulator) DeleteManagedIdentity(clientID string) error {
	return e.entra.DeleteManagedIdentity(clientID)
}

// AddFederatedIssuer registers an external OIDC issuer (an https URL)
// whose signing key the emulator holds.
func (e *Emulator) AddFederatedIssuer(issuer string) error { return e.entra.AddFederatedIssuer(issuer) }

// FederatedToken mints a one-hour token of a registered issuer for subject
// and audience (empty: api://AzureADTokenExchange): the content of the
// file WorkloadIdentityCredential reads.
func (e *Emulator) FederatedToken(issuer, subject, audience string) (string, error) {
	return e.entra.FederatedToken(issuer, subject, audience)
}

// AddFederatedCredential trusts fc on the app.
func (e *Emulator) AddFederatedCredential(clientID string, fc FederatedCredential) error {
	return e.entra.AddFederatedCredential(clientID, fc)
}

// TokenExchangeAudience is the audience (resource) of a managed identity's
// token presented as an app's client assertion, and the default audience
// of a federated credential.
const TokenExchangeAudience = entra.DefaultFederatedAudience

// EntraIssuer returns Entra's v2.0 issuer of a tenant,
// https://login.microsoftonline.com/{tenant}/v2.0: the iss of a managed
// identity's token for [TokenExchangeAudience], and the issuer of a
// federated credential that trusts that identity.
func EntraIssuer(tenantID string) string { return entra.Issuer(tenantID) }

// ManagedIdentity returns the managed identity named id: its name, client
// id, object (principal) id or resource id. Its ObjectID is the subject of
// a federated credential that trusts it.
func (e *Emulator) ManagedIdentity(id string) (ManagedIdentity, error) {
	return e.entra.ManagedIdentity(id)
}

// ManagedIdentities lists the host's managed identities.
func (e *Emulator) ManagedIdentities() []ManagedIdentity { return e.entra.ManagedIdentities() }

// TrustManagedIdentity adds to the app the federated credential that
// trusts the managed identity named identity (as [Emulator.ManagedIdentity]
// finds it): issuer [EntraIssuer] of the identity's tenant, subject its
// object id, audience [TokenExchangeAudience]; it returns the credential.
// The identity's token for TokenExchangeAudience then authenticates the
// app in every tenant that consented to it (Microsoft's "managed identity
// as a federated identity credential"); Entra refuses it (AADSTS700236)
// when the app's home tenant is not the identity's.
func (e *Emulator) TrustManagedIdentity(clientID, identity string) (FederatedCredential, error) {
	fc, err := e.entra.ManagedIdentityCredential(identity)
	if err != nil {
		return FederatedCredential{}, err
	}
	return fc, e.entra.AddFederatedCredential(clientID, fc)
}

// TokenCounts returns the token request counters, one per tenant and
// client (app or managed identity) that asked.
func (e *Emulator) TokenCounts() []TokenCount { return e.entra.TokenCounts() }

// TokenCount returns the token request counter of one tenant and client.
func (e *Emulator) TokenCount(tenantID, clientID string) TokenCount {
	return e.entra.TokenCount(tenantID, clientID)
}

// ResetTokenCounts sets every token request counter to zero.
func (e *Emulator) ResetTokenCounts() { e.entra.ResetTokenCounts() }
