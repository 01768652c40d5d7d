package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kms/local"
	"github.com/openbyok/byok/lifecycle/azure"
)

// platformKey is the platform root key the configuration names: its
// provider and the (usually versionless) id new shares are wrapped under.
type platformKey struct {
	kms kms.Provider
	id  string
}

// openPlatformKey opens the key file (created on first run), parses the
// key from the environment variable the configuration names, or reaches
// the key in the platform's Key Vault or Managed HSM and checks it there
// (wrap and unwrap, enabled, purge protection, type): a key that fails is
// an error that names the fix, before anything is served or stored.
func openPlatformKey(ctx context.Context, c config.PlatformKey, opts appOptions, logger *slog.Logger) (platformKey, error) {
	switch {
	case c.File != "":
		k, err := local.Open(c.File)
		if err != nil {
			return platformKey{}, err
		}
		return platformKey{kms: k, id: k.KeyID()}, nil
	case c.Env != "":
		v := opts.getenv(c.Env)
		if v == "" {
			return platformKey{}, fmt.Errorf("platform_key.env names %s, which is empty: set it to the content of a key file", c.Env)
		}
		k, err := local.Parse(v)
		if err != nil {
			return platformKey{}, err
		}
		return platformKey{kms: k, id: k.KeyID()}, nil
	}
	a := c.Azure
	cred, err := azureCredential("platform_key.azure.credential", a.Credential, "", opts.getenv)
	if err != nil {
		return platformKey{}, err
	}
	p, err := azurekv.New(azurekv.Config{KeyID: a.KeyID, TenantID: a.TenantID, Credential: cred, Transport: opts.azureTransport, Logger: logger})
	if err != nil {
		return platformKey{}, fmt.Errorf("platform_key.azure: %w", err)
	}
	info, err := p.CheckRootKey(ctx, a.KeyID)
	if err != nil {
		return platformKey{}, fmt.Errorf("the platform root key failed its check, so byok does not start: %w", err)
	}
	logger.Info("platform root key checked", "key_id", a.KeyID, "version", info.KeyID, "type", info.Type, "algorithm", info.Algorithm,
		"managed_hsm", info.ManagedHSM, "recovery_level", info.RecoveryLevel)
	return platformKey{kms: p, id: a.KeyID}, nil
}

// azureCredential turns a credential of the configuration into
// azurekv's. app is the app it signs in as when the context names one
// (azure.client_id): then the credential's own client_id may be empty. A
// client secret comes from the variable the configuration names; a
// certificate from its PEM files.
func azureCredential(field string, c config.AzureCredential, app string, getenv func(string) string) (azurekv.Credential, error) {
	orApp := func(id string) string {
		if id == "" {
			return app
		}
		return id
	}
	switch {
	case c.ManagedIdentity != nil:
		return azurekv.ManagedIdentity{ClientID: c.ManagedIdentity.ClientID, ResourceID: c.ManagedIdentity.ResourceID}, nil
	case c.WorkloadIdentity != nil:
		if err := checkTokenFile(field+".workload_identity.token_file", c.WorkloadIdentity.TokenFile); err != nil {
			return nil, err
		}
		return azurekv.WorkloadIdentity{ClientID: orApp(c.WorkloadIdentity.ClientID), TokenFile: c.WorkloadIdentity.TokenFile}, nil
	case c.Certificate != nil:
		set, err := loadCertificates(field, *c.Certificate)
		if err != nil {
			return nil, err
		}
		return azurekv.ClientCertificate{ClientID: orApp(c.Certificate.ClientID), Certificates: set}, nil
	case c.ClientSecret != nil:
		secret, err := secretFromEnv(field+".client_secret.env", c.ClientSecret.Env, getenv)
		if err != nil {
			return nil, err
		}
		return azurekv.ClientSecret{ClientID: orApp(c.ClientSecret.ClientID), Secret: secret}, nil
	}
	return nil, fmt.Errorf("%s: no credential is set", field)
}

// loadCertificates reads a certificate credential's PEM files.
func loadCertificates(field string, c config.Certificate) (azurekv.CertificateSet, error) {
	files := []string{c.File}
	if c.NextFile != "" {
		files = append(files, c.NextFile)
	}
	set, err := azurekv.LoadCertificateSet(files...)
	if err != nil {
		return azurekv.CertificateSet{}, fmt.Errorf("%s.certificate: %w", field, err)
	}
	return set, nil
}

// secretFromEnv reads a secret from the variable env names.
func secretFromEnv(field, env string, getenv func(string) string) (string, error) {
	v := getenv(env)
	if v == "" {
		return "", fmt.Errorf("%s names %s, which is empty or unset: set it to the client secret (or use a managed identity, workload identity or certificate, which need no secret)", field, env)
	}
	return v, nil
}

// azureConnector returns the connector of Azure Key Vault with the
// platform's identities the configuration names: its multi-tenant app
// (for tenants that consented to it), its managed identity and its
// workload identity (for tenants that grant those a role or trust them).
func azureConnector(ctx context.Context, c config.Azure, opts appOptions, logger *slog.Logger) (*azure.Connector, error) {
	app := azurekv.PlatformApp{ClientID: c.ClientID}
	switch cr := c.Credential; {
	case c.ClientSecretEnv != "":
		secret, err := secretFromEnv("azure.client_secret_env", c.ClientSecretEnv, opts.getenv)
		if err != nil {
			return nil, err
		}
		app.Secret = secret
	case cr.ClientSecret != nil:
		secret, err := secretFromEnv("azure.credential.client_secret.env", cr.ClientSecret.Env, opts.getenv)
		if err != nil {
			return nil, err
		}
		app.Secret = secret
	case cr.Certificate != nil:
		set, err := loadCertificates("azure.credential", *cr.Certificate)
		if err != nil {
			return nil, err
		}
		app.Certificates = &set
	case cr.ManagedIdentity != nil:
		app.ManagedIdentity = &azurekv.ManagedIdentity{ClientID: cr.ManagedIdentity.ClientID, ResourceID: cr.ManagedIdentity.ResourceID}
	case cr.WorkloadIdentity != nil:
		if err := checkTokenFile("azure.credential.workload_identity.token_file", cr.WorkloadIdentity.TokenFile); err != nil {
			return nil, err
		}
		app.FederatedTokenFile = cr.WorkloadIdentity.TokenFile
	}
	conn := azure.NewConnector(app)
	conn.HomeTenant = c.TenantID
	if mi := c.ManagedIdentity; mi != nil {
		conn.ManagedIdentity = &azurekv.ManagedIdentity{ClientID: mi.ClientID, ResourceID: mi.ResourceID}
	}
	if w := c.WorkloadIdentity; w != nil {
		if err := checkTokenFile("azure.workload_identity.token_file", w.TokenFile); err != nil {
			return nil, err
		}
		conn.Workload = &azure.WorkloadFederation{TokenFile: w.TokenFile, Issuer: w.Issuer, Subject: w.Subject}
	}
	conn.Transport = opts.azureTransport
	conn.Logger = logger
	if c.ClientID != "" && c.TenantID != "" {
		if err := azurekv.CheckSignIn(ctx, azurekv.Config{TenantID: c.TenantID, Credential: app, Transport: opts.azureTransport, Logger: logger}); err != nil {
			return nil, fmt.Errorf("the platform's multi-tenant app %s cannot sign in to its own directory %s, so byok does not start: %w", c.ClientID, c.TenantID, err)
		}
	}
	return conn, nil
}

// checkTokenFile checks that a workload identity's federated token file
// can be read and holds something: the token itself is Entra ID's to judge.
func checkTokenFile(field, path string) error {
	b, err := os.ReadFile(path)
	switch {
	case err != nil:
		return fmt.Errorf("%s: cannot read the federated token file: %w; run byok in a pod labelled azure.workload.identity/use: \"true\" whose service account is annotated azure.workload.identity/client-id (AKS projects the token and sets AZURE_FEDERATED_TOKEN_FILE), and give that path", field, err)
	case len(strings.TrimSpace(string(b))) == 0:
		return fmt.Errorf("%s: the federated token file %s is empty; it must hold the workload's current token (AKS refreshes it)", field, path)
	}
	clear(b)
	return nil
}
