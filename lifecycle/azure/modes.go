package azure

// CredentialMode is how the platform signs in to the customer's Entra
// tenant to reach its vault (DESIGN §1, step 1).
type CredentialMode string

const (
	// CredentialPlatformApp: the customer consented to the platform's
	// multi-tenant app; the platform uses its own credential. ClientID is
	// the platform's app and Secret is empty.
	CredentialPlatformApp CredentialMode = "platform-app"
	// CredentialClientSecret: the customer registered its own app and gave
	// the platform a client secret (Secret).
	CredentialClientSecret CredentialMode = "client-secret"
	// CredentialCertificate: the customer's own app trusts a certificate;
	// Secret holds its PEM private key and certificate chain.
	CredentialCertificate CredentialMode = "certificate"
	// CredentialManagedIdentity: the platform's own managed identity holds
	// a role on the customer's vault, which must be in the platform's own
	// directory (the Azure AI services model, for customers that live in
	// it, e.g. business units). DirectoryID is the platform's directory;
	// ClientID and Secret are empty: the identity is the platform's, from
	// its configuration. Offered only when the connector has one
	// ([Connector.PlatformIdentities]).
	CredentialManagedIdentity CredentialMode = "managed-identity"
	// CredentialWorkloadIdentity: the customer's own app (ClientID, in
	// DirectoryID) has a federated identity credential that trusts the
	// platform's workload; byok presents the platform's workload token as
	// the assertion. Secret is empty: there is none anywhere. Offered only
	// when the connector has a workload identity ([Connector.PlatformIdentities]).
	CredentialWorkloadIdentity CredentialMode = "workload-identity"
)

// CredentialModes lists every credential mode, in the order the console
// offers them.
var CredentialModes = []CredentialMode{CredentialPlatformApp, CredentialClientSecret, CredentialCertificate,
	CredentialManagedIdentity, CredentialWorkloadIdentity}

// SharedIdentity reports whether m signs in with an identity of the
// platform that other tenants use too (platform-app, managed-identity,
// workload-identity): such an identity proves nothing about who owns a
// key, so the key must carry the tag byok-tenant=<tenant>.
func (m CredentialMode) SharedIdentity() bool {
	return m == CredentialPlatformApp || m == CredentialManagedIdentity || m == CredentialWorkloadIdentity
}

// HasSecret reports whether m needs a Secret (client-secret, certificate).
func (m CredentialMode) HasSecret() bool {
	return m == CredentialClientSecret || m == CredentialCertificate
}
