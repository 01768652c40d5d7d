package config

import "strings"

// AzureKey is the platform root key in the platform's own Key Vault or
// Managed HSM: an RSA key (2048 bits or more, RSA-HSM in a Managed HSM) or,
// in a Managed HSM, a 256-bit oct-HSM key. A versionless KeyID follows the
// key's current version: new shares go under it, existing shares keep the
// version that wrapped them until a platform re-key moves them.
type AzureKey struct {
	// KeyID is https://<vault>.vault.azure.net/keys/<name>[/<version>] or
	// https://<hsm>.managedhsm.azure.net/keys/<name>[/<version>].
	KeyID string `yaml:"key_id"`
	// TenantID is the platform's own directory (tenant) id.
	TenantID string `yaml:"tenant_id"`
	// Credential is the identity byok signs in as to reach the key.
	Credential AzureCredential `yaml:"credential"`
}

// AzureCredential is how byok signs in to Entra ID: exactly one of the
// fields. ManagedIdentity and WorkloadIdentity need no secret at all.
type AzureCredential struct {
	// ManagedIdentity is the host's managed identity: system-assigned
	// when written as {}, user-assigned with client_id or resource_id.
	ManagedIdentity *ManagedIdentity `yaml:"managed_identity"`
	// WorkloadIdentity is a federated token file (Kubernetes workload
	// identity: AZURE_FEDERATED_TOKEN_FILE).
	WorkloadIdentity *WorkloadIdentity `yaml:"workload_identity"`
	// Certificate is a PEM file with the app's certificate and private
	// key.
	Certificate *Certificate `yaml:"certificate"`
	// ClientSecret names the variable holding a client secret.
	ClientSecret *ClientSecret `yaml:"client_secret"`
}

// ManagedIdentity names a managed identity of the host; both fields empty
// is the system-assigned one.
type ManagedIdentity struct {
	ClientID   string `yaml:"client_id"`
	ResourceID string `yaml:"resource_id"`
}

// WorkloadIdentity is an app that trusts the workload's federated tokens,
// read from TokenFile at every sign-in. ClientID is the app's; under
// azure.credential it is azure.client_id and may be left out.
type WorkloadIdentity struct {
	ClientID  string `yaml:"client_id"`
	TokenFile string `yaml:"token_file"`
}

// Certificate is an app's certificate credential: File holds the
// certificate and its private key in PEM, readable by byok's user only.
// During a rollover NextFile holds the new one, tried first once Entra ID
// accepts it. ClientID is the app's; under azure.credential it is
// azure.client_id and may be left out.
type Certificate struct {
	ClientID string `yaml:"client_id"`
	File     string `yaml:"file"`
	NextFile string `yaml:"next_file"`
}

// ClientSecret names the environment variable that holds an app's client
// secret: the secret itself never goes in the file. ClientID is the
// app's; under azure.credential it is azure.client_id and may be left out.
type ClientSecret struct {
	ClientID string `yaml:"client_id"`
	Env      string `yaml:"env"`
}

// Kind names the credential that is set ("" if none, "several" if more
// than one).
func (c AzureCredential) Kind() string {
	kind := ""
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"managed_identity", c.ManagedIdentity != nil},
		{"workload_identity", c.WorkloadIdentity != nil},
		{"certificate", c.Certificate != nil},
		{"client_secret", c.ClientSecret != nil},
	} {
		if !k.set {
			continue
		}
		if kind != "" {
			return "several"
		}
		kind = k.name
	}
	return kind
}

// IsZero reports whether no credential is set.
func (c AzureCredential) IsZero() bool { return c.Kind() == "" }

// Azure is the platform's own Entra identities: its multi-tenant app, used
// when a tenant authorises the platform by admin consent instead of giving
// it credentials of its own, and the identities it offers to tenants in
// the managed-identity and workload-identity credential modes.
type Azure struct {
	// TenantID is the platform's own directory (tenant) id: the home of
	// its multi-tenant app and of its managed identity. Required with
	// Credential, ManagedIdentity or WorkloadIdentity.
	TenantID string `yaml:"tenant_id"`
	// ClientID of the platform's multi-tenant app; empty disables that
	// credential mode.
	ClientID string `yaml:"client_id"`
	// Credential is how the multi-tenant app signs in: a managed identity
	// presented as a federated identity credential (audience
	// api://AzureADTokenExchange), a workload identity, a certificate, or
	// a client secret.
	Credential AzureCredential `yaml:"credential"`
	// ClientSecretEnv names the environment variable holding the app's
	// client secret. It is the older spelling of
	// credential.client_secret.env; set one of them.
	ClientSecretEnv string `yaml:"client_secret_env"`
	// ManagedIdentity is the platform's managed identity that tenants of
	// the platform's own directory grant a role on their vault (tenant
	// credential mode managed-identity); nil: the mode is not offered.
	ManagedIdentity *ManagedIdentity `yaml:"managed_identity"`
	// WorkloadIdentity is the platform's workload whose federated token
	// customers' own apps trust (tenant credential mode
	// workload-identity); nil: the mode is not offered.
	WorkloadIdentity *WorkloadFederation `yaml:"workload_identity"`
}

// WorkloadFederation is the platform's workload identity as customers see
// it: the token file byok presents, and the issuer and subject a
// customer's app must trust (shown in the console's setup steps).
type WorkloadFederation struct {
	TokenFile string `yaml:"token_file"`
	Issuer    string `yaml:"issuer"`
	Subject   string `yaml:"subject"`
}

// validatePlatformKey checks platform_key: exactly one source, and for
// azure a key id, the platform's directory and one credential.
func (c *Config) validatePlatformKey(bad func(field, format string, args ...any)) {
	p := c.PlatformKey
	n := 0
	for _, set := range []bool{p.File != "", p.Env != "", p.Azure != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		bad("platform_key", "set file (a key file, created on first run), env (a variable holding the key) or azure (a key in the platform's Key Vault or Managed HSM)")
	case n > 1:
		bad("platform_key", "set one of file, env and azure, not several: the platform root key has one home")
	}
	if p.Azure == nil {
		return
	}
	a := p.Azure
	switch {
	case a.KeyID == "":
		bad("platform_key.azure.key_id", "is empty; give the key identifier, https://<vault>.vault.azure.net/keys/<name> or https://<hsm>.managedhsm.azure.net/keys/<name> (the key's Overview blade)")
	case !strings.HasPrefix(a.KeyID, "https://"):
		bad("platform_key.azure.key_id", "is %q, not an https key identifier such as https://<hsm>.managedhsm.azure.net/keys/<name>", a.KeyID)
	case strings.Contains(a.KeyID, "/secrets/") || strings.Contains(a.KeyID, "/certificates/"):
		bad("platform_key.azure.key_id", "is %q, a secret or certificate id; the platform root key must be a key (Keys blade: https://<vault>/keys/<name>)", a.KeyID)
	}
	if !isGUID(a.TenantID) {
		bad("platform_key.azure.tenant_id", "is %q; give the platform's directory (tenant) id, a GUID (Microsoft Entra ID Overview blade)", a.TenantID)
	}
	validateCredential("platform_key.azure.credential", a.Credential, "", bad)
}

// validateAzure checks azure: the multi-tenant app's credential and the
// identities offered to tenants.
func (c *Config) validateAzure(bad func(field, format string, args ...any)) {
	a := c.Azure
	if a.ClientSecretEnv != "" {
		switch {
		case a.ClientID == "":
			bad("azure.client_secret_env", "is set but azure.client_id is empty")
		case !a.Credential.IsZero():
			bad("azure.client_secret_env", "is set together with azure.credential; keep one (credential.client_secret.env is the same)")
		}
	}
	if !a.Credential.IsZero() {
		if a.ClientID == "" {
			bad("azure.credential", "is set but azure.client_id is empty; give the platform's multi-tenant app")
		}
		validateCredential("azure.credential", a.Credential, a.ClientID, bad)
	}
	if a.ClientID != "" && !isGUID(a.ClientID) {
		bad("azure.client_id", "is %q; give the multi-tenant app's Application (client) ID, a GUID (the app's Overview blade)", a.ClientID)
	}
	needsTenant := !a.Credential.IsZero() || a.ManagedIdentity != nil || a.WorkloadIdentity != nil
	if needsTenant && !isGUID(a.TenantID) {
		bad("azure.tenant_id", "is %q; give the platform's own directory (tenant) id, a GUID: the home of its app and managed identity", a.TenantID)
	}
	if mi := a.ManagedIdentity; mi != nil {
		validateManagedIdentity("azure.managed_identity", *mi, bad)
	}
	if w := a.WorkloadIdentity; w != nil {
		if w.TokenFile == "" {
			bad("azure.workload_identity.token_file", "is empty; give the federated token file (AZURE_FEDERATED_TOKEN_FILE)")
		}
		if !strings.HasPrefix(w.Issuer, "https://") {
			bad("azure.workload_identity.issuer", "is %q; give the https issuer URL of the workload's tokens (the cluster's OIDC issuer), which customers' apps must trust", w.Issuer)
		}
		if w.Subject == "" {
			bad("azure.workload_identity.subject", "is empty; give the subject of the workload's tokens, e.g. system:serviceaccount:byok:byok")
		}
	}
}

// validateCredential checks that exactly one credential is set and that
// it is complete. app is the app the credential signs in as when the
// context names it (azure.client_id); a credential's own client_id must
// then be empty or equal to it.
func validateCredential(field string, c AzureCredential, app string, bad func(field, format string, args ...any)) {
	switch c.Kind() {
	case "":
		bad(field, "is empty; set one of managed_identity ({} for the system-assigned one), workload_identity, certificate or client_secret")
		return
	case "several":
		bad(field, "sets more than one of managed_identity, workload_identity, certificate and client_secret; keep one")
		return
	}
	clientID := func(sub, id string) {
		switch {
		case app != "" && id != "" && id != app:
			bad(field+"."+sub+".client_id", "is %q but azure.client_id is %q; leave it out", id, app)
		case app == "" && !isGUID(id):
			bad(field+"."+sub+".client_id", "is %q; give the app's Application (client) ID, a GUID", id)
		}
	}
	switch {
	case c.ManagedIdentity != nil:
		validateManagedIdentity(field+".managed_identity", *c.ManagedIdentity, bad)
	case c.WorkloadIdentity != nil:
		clientID("workload_identity", c.WorkloadIdentity.ClientID)
		if c.WorkloadIdentity.TokenFile == "" {
			bad(field+".workload_identity.token_file", "is empty; give the federated token file (AZURE_FEDERATED_TOKEN_FILE)")
		}
	case c.Certificate != nil:
		clientID("certificate", c.Certificate.ClientID)
		if c.Certificate.File == "" {
			bad(field+".certificate.file", "is empty; give the PEM file holding the certificate and its private key")
		}
		if c.Certificate.NextFile != "" && c.Certificate.NextFile == c.Certificate.File {
			bad(field+".certificate.next_file", "is the same file as file; during a rollover it names the new certificate")
		}
	case c.ClientSecret != nil:
		clientID("client_secret", c.ClientSecret.ClientID)
		if c.ClientSecret.Env == "" {
			bad(field+".client_secret.env", "is empty; name the environment variable that holds the client secret (the secret never goes in the file)")
		}
	}
}

func validateManagedIdentity(field string, mi ManagedIdentity, bad func(field, format string, args ...any)) {
	switch {
	case mi.ClientID != "" && mi.ResourceID != "":
		bad(field, "names both client_id and resource_id; a user-assigned identity is named by one of them")
	case mi.ClientID != "" && !isGUID(mi.ClientID):
		bad(field+".client_id", "is %q; give the identity's Client ID, a GUID (the managed identity's Overview blade)", mi.ClientID)
	case mi.ResourceID != "" && !strings.HasPrefix(strings.ToLower(mi.ResourceID), "/subscriptions/"):
		bad(field+".resource_id", "is %q; give the identity's resource id, /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>", mi.ResourceID)
	}
}

// isGUID reports whether s has the 8-4-4-4-12 hex form of a GUID.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}
