package kvemu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// errSeed marks an invalid seed file.
var errSeed = errors.New("kvemu: invalid seed")

// Seed is the declarative starting state of an emulator, read from YAML by
// [ParseSeed] (byok kv-emulator --seed FILE) and applied by
// [Emulator.ApplySeed] in this order: tenants, users, federated issuers, managed
// identities, apps (with secrets, certificates and federated credentials,
// which may name a managed identity), consents, then vaults with their keys, role assignments and
// access policies. docs/kvemu.md has an example.
type Seed struct {
	Tenants          []Tenant          `yaml:"tenants"`
	FederatedIssuers []string          `yaml:"federatedIssuers"`
	Apps             []SeedApp         `yaml:"apps"`
	Consents         []SeedConsent     `yaml:"consents"`
	Identities       []ManagedIdentity `yaml:"identities"`
	Vaults           []SeedVault       `yaml:"vaults"`
	// Users can sign in to apps through the authorize endpoint's test
	// sign-in form (apps need redirectUris).
	Users []User `yaml:"users"`
}

// SeedApp is an app registration with its credentials.
type SeedApp struct {
	App `yaml:",inline"`
	// Secrets are client secrets; give Value so clients can be configured.
	Secrets []Secret `yaml:"secrets"`
	// Certificates are PEM certificates (RSA keys).
	Certificates         []string                  `yaml:"certificates"`
	FederatedCredentials []SeedFederatedCredential `yaml:"federatedCredentials"`
}

// SeedFederatedCredential is a federated credential: an issuer and a
// subject (and optional audiences), or identity: the name (or client or
// object id) of a managed identity, which stands for issuer
// https://login.microsoftonline.com/{its tenant}/v2.0 and subject its
// object id (see [Emulator.TrustManagedIdentity]).
type SeedFederatedCredential struct {
	FederatedCredential `yaml:",inline"`
	Identity            string `yaml:"identity"`
}

// SeedConsent makes a multi-tenant app's service principal in a tenant.
type SeedConsent struct {
	TenantID string `yaml:"tenantId"`
	ClientID string `yaml:"clientId"`
	// ObjectID fixes the service principal's object id; empty generates one.
	ObjectID string `yaml:"objectId"`
}

// SeedVault is a vault with its keys and access.
type SeedVault struct {
	VaultConfig     `yaml:",inline"`
	Keys            []SeedKey  `yaml:"keys"`
	RoleAssignments []SeedRole `yaml:"roleAssignments"`
	// Policies are access policies, for a vault with accessPolicies: true.
	Policies []SeedPolicy  `yaml:"policies"`
	Throttle *throttleJSON `yaml:"throttle"`
}

// SeedKey is a key to create in a vault.
type SeedKey struct {
	Name    string `yaml:"name"`
	KeySpec `yaml:",inline"`
}

// SeedPrincipal names a principal by exactly one of: its object id, an
// app's client id (its service principal in the vault's tenant), or a
// managed identity's name.
type SeedPrincipal struct {
	PrincipalID string `yaml:"principalId"`
	App         string `yaml:"app"`
	Identity    string `yaml:"identity"`
}

// SeedRole is a role assignment on a vault (or one key).
type SeedRole struct {
	SeedPrincipal `yaml:",inline"`
	Role          string   `yaml:"role"`
	DataActions   []string `yaml:"dataActions"`
	Key           string   `yaml:"key"`
}

// SeedPolicy is a legacy access policy.
type SeedPolicy struct {
	SeedPrincipal `yaml:",inline"`
	Keys          []string `yaml:"keys"`
}

// ParseSeed decodes a YAML seed strictly: unknown fields, and more than
// one document, are errors.
func ParseSeed(data []byte) (Seed, error) {
	var s Seed
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return Seed{}, fmt.Errorf("%w: the seed is empty", errSeed)
		}
		return Seed{}, fmt.Errorf("%w: %v", errSeed, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Seed{}, fmt.Errorf("%w: the seed must be a single YAML document", errSeed)
	}
	return s, nil
}

// LoadSeed reads and parses a seed file.
func LoadSeed(file string) (Seed, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Seed{}, fmt.Errorf("kvemu: read seed: %w", err)
	}
	s, err := ParseSeed(data)
	if err != nil {
		return Seed{}, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// ApplySeed creates everything in s. It stops at the first error, which
// names the failing entry; what was created before stays.
func (e *Emulator) ApplySeed(s Seed) error {
	for i, t := range s.Tenants {
		if _, err := e.CreateTenant(t); err != nil {
			return fmt.Errorf("seed tenants[%d]: %w", i, err)
		}
	}
	for i, u := range s.Users {
		if _, err := e.CreateUser(u); err != nil {
			return fmt.Errorf("seed users[%d] (%s): %w", i, u.UserPrincipalName, err)
		}
	}
	for i, iss := range s.FederatedIssuers {
		if err := e.AddFederatedIssuer(iss); err != nil {
			return fmt.Errorf("seed federatedIssuers[%d]: %w", i, err)
		}
	}
	for i, mi := range s.Identities {
		if _, err := e.CreateManagedIdentity(mi); err != nil {
			return fmt.Errorf("seed identities[%d]: %w", i, err)
		}
	}
	for i, a := range s.Apps {
		if err := e.seedApp(a); err != nil {
			return fmt.Errorf("seed apps[%d]: %w", i, err)
		}
	}
	for i, c := range s.Consents {
		if _, err := e.entra.ConsentAs(c.TenantID, c.ClientID, c.ObjectID); err != nil {
			return fmt.Errorf("seed consents[%d]: %w", i, err)
		}
	}
	for i, v := range s.Vaults {
		if err := e.seedVault(v); err != nil {
			return fmt.Errorf("seed vaults[%d] (%s): %w", i, v.Name, err)
		}
	}
	return nil
}

func (e *Emulator) seedApp(a SeedApp) error {
	app, err := e.CreateApp(a.App)
	if err != nil {
		return err
	}
	for j, s := range a.Secrets {
		if _, err := e.AddSecret(app.ClientID, s); err != nil {
			return fmt.Errorf("secrets[%d]: %w", j, err)
		}
	}
	for j, c := range a.Certificates {
		der, err := certificateDER(c)
		if err != nil {
			return fmt.Errorf("certificates[%d]: %w", j, err)
		}
		if _, err := e.AddCertificate(app.ClientID, der); err != nil {
			return fmt.Errorf("certificates[%d]: %w", j, err)
		}
	}
	for j, fc := range a.FederatedCredentials {
		if err := e.seedFederated(app.ClientID, fc); err != nil {
			return fmt.Errorf("federatedCredentials[%d]: %w", j, err)
		}
	}
	return nil
}

// seedFederated adds a federated credential given by issuer and subject,
// or by a managed identity.
func (e *Emulator) seedFederated(clientID string, fc SeedFederatedCredential) error {
	if fc.Identity == "" {
		return e.AddFederatedCredential(clientID, fc.FederatedCredential)
	}
	if fc.Issuer != "" || fc.Subject != "" {
		return fmt.Errorf("%w: give identity, or issuer and subject, not both", errSeed)
	}
	cred, err := e.entra.ManagedIdentityCredential(fc.Identity)
	if err != nil {
		return fmt.Errorf("%w; list it under identities", err)
	}
	if len(fc.Audiences) > 0 {
		cred.Audiences = fc.Audiences
	}
	return e.AddFederatedCredential(clientID, cred)
}

func (e *Emulator) seedVault(v SeedVault) error {
	if err := e.CreateVault(v.VaultConfig); err != nil {
		return err
	}
	for j, k := range v.Keys {
		if _, err := e.CreateKey(v.Name, k.Name, k.KeySpec); err != nil {
			return fmt.Errorf("keys[%d] (%s): %w", j, k.Name, err)
		}
	}
	for j, r := range v.RoleAssignments {
		oid, err := e.seedPrincipal(v.TenantID, r.SeedPrincipal)
		if err != nil {
			return fmt.Errorf("roleAssignments[%d]: %w", j, err)
		}
		if _, err := e.AssignRole(v.Name, RoleAssignment{PrincipalID: oid, Role: r.Role, DataActions: r.DataActions, Key: r.Key}); err != nil {
			return fmt.Errorf("roleAssignments[%d]: %w", j, err)
		}
	}
	for j, p := range v.Policies {
		oid, err := e.seedPrincipal(v.TenantID, p.SeedPrincipal)
		if err != nil {
			return fmt.Errorf("policies[%d]: %w", j, err)
		}
		if err := e.SetAccessPolicy(v.Name, oid, p.Keys...); err != nil {
			return fmt.Errorf("policies[%d]: %w", j, err)
		}
	}
	if v.Throttle != nil {
		t, err := v.Throttle.throttle()
		if err != nil {
			return fmt.Errorf("throttle: %w", err)
		}
		if err := e.SetThrottle(v.Name, t); err != nil {
			return fmt.Errorf("throttle: %w", err)
		}
	}
	return nil
}

// seedPrincipal resolves a seed principal to an object id in tenantID.
func (e *Emulator) seedPrincipal(tenantID string, p SeedPrincipal) (string, error) {
	n := 0
	for _, s := range []string{p.PrincipalID, p.App, p.Identity} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return "", fmt.Errorf("%w: name the principal by exactly one of principalId, app (client id) or identity (name)", errSeed)
	}
	switch {
	case p.PrincipalID != "":
		return p.PrincipalID, nil
	case p.App != "":
		return e.ServicePrincipal(tenantID, p.App)
	}
	for _, mi := range e.entra.ManagedIdentities() {
		if mi.Name == p.Identity {
			return mi.ObjectID, nil
		}
	}
	return "", fmt.Errorf("%w: no managed identity named %q; list it under identities", errSeed, p.Identity)
}
