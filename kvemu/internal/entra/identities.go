// Package entra emulates the parts of Microsoft Entra ID that the Azure SDK
// for Go (azidentity, MSAL-Go) uses to get tokens for Key Vault: tenants, app
// registrations with secrets, certificates and federated credentials,
// multi-tenant apps and admin consent, managed identities, the token
// endpoint, the openid-configuration document, instance discovery and the
// managed-identity endpoints of IMDS and App Service.
//
// Access tokens are RS256 v1 JWTs signed by the service's own key and
// checked by [Service.VerifyAccessToken]. Control methods (CreateTenant,
// CreateApp, …) are safe for concurrent use with request handling.
package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"time"
)

// CreateManagedIdentity adds a managed identity to the emulated host.
// Empty ClientID, ObjectID and ResourceID are generated.
func (s *Service) CreateManagedIdentity(mi ManagedIdentity) (ManagedIdentity, error) {
	var err error
	if mi.ClientID, err = guidOrNew("client id", mi.ClientID); err != nil {
		return ManagedIdentity{}, err
	}
	if mi.ObjectID, err = guidOrNew("object id", mi.ObjectID); err != nil {
		return ManagedIdentity{}, err
	}
	if mi.Name == "" && !mi.SystemAssigned {
		return ManagedIdentity{}, fmt.Errorf("%w: a user-assigned managed identity needs a name", ErrInvalid)
	}
	if mi.ResourceID == "" {
		name := mi.Name
		if name == "" {
			name = "host"
		}
		mi.ResourceID = "/subscriptions/" + s.subscription + "/resourcegroups/kvemu/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookupTenant(mi.TenantID)
	if t == nil {
		return ManagedIdentity{}, fmt.Errorf("%w: tenant %q; create it first", ErrNotFound, mi.TenantID)
	}
	mi.TenantID = t.ID
	if s.apps[mi.ClientID] != nil || s.identities[mi.ClientID] != nil {
		return ManagedIdentity{}, fmt.Errorf("%w: client id %s", ErrExists, mi.ClientID)
	}
	for _, o := range s.identities {
		if mi.SystemAssigned && o.SystemAssigned {
			return ManagedIdentity{}, fmt.Errorf("%w: the host already has a system-assigned identity (%s)", ErrExists, o.ClientID)
		}
		if mi.Name != "" && strings.EqualFold(o.Name, mi.Name) {
			return ManagedIdentity{}, fmt.Errorf("%w: managed identity named %q", ErrExists, mi.Name)
		}
	}
	s.identities[mi.ClientID] = &mi
	return mi, nil
}

// ManagedIdentities lists the host's managed identities.
func (s *Service) ManagedIdentities() []ManagedIdentity {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ManagedIdentity, 0, len(s.identities))
	for _, mi := range s.identities {
		out = append(out, *mi)
	}
	return out
}

// DeleteManagedIdentity removes a managed identity by client id.
func (s *Service) DeleteManagedIdentity(clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := strings.ToLower(clientID)
	if s.identities[id] == nil {
		return fmt.Errorf("%w: managed identity %q", ErrNotFound, clientID)
	}
	delete(s.identities, id)
	return nil
}

// ManagedIdentityHeader returns the value App Service clients must send as
// X-IDENTITY-HEADER (the IDENTITY_HEADER environment variable).
func (s *Service) ManagedIdentityHeader() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.miHeader
}

// AddFederatedIssuer registers an external token issuer (e.g. a Kubernetes
// cluster's OIDC issuer URL) whose signing key the emulator holds, so
// [Service.FederatedToken] can mint its tokens.
func (s *Service) AddFederatedIssuer(issuer string) error {
	if !strings.HasPrefix(issuer, "https://") {
		return fmt.Errorf("%w: issuer %q must be an https URL", ErrInvalid, issuer)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("entra: generate issuer key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.issuers[issuer]; ok {
		return fmt.Errorf("%w: issuer %q", ErrExists, issuer)
	}
	s.issuers[issuer] = key
	return nil
}

// FederatedToken mints a token of a registered federated issuer for
// subject and audience (empty: [DefaultFederatedAudience]), valid for one
// hour from now; write it to the file WorkloadIdentityCredential reads.
func (s *Service) FederatedToken(issuer, subject, audience string) (string, error) {
	if audience == "" {
		audience = DefaultFederatedAudience
	}
	s.mu.Lock()
	key := s.issuers[issuer]
	s.mu.Unlock()
	if key == nil {
		return "", fmt.Errorf("%w: federated issuer %q; add it first", ErrNotFound, issuer)
	}
	now := s.now()
	return signJWT(key, jwtHeader{Typ: "JWT", Kid: keyThumbprint(&key.PublicKey)}, map[string]any{
		"iss": issuer, "sub": subject, "aud": audience, "jti": NewGUID(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
}

// AddFederatedCredential trusts fc on an app: an assertion from fc.Issuer
// for fc.Subject then authenticates the app.
func (s *Service) AddFederatedCredential(clientID string, fc FederatedCredential) error {
	if fc.Issuer == "" || fc.Subject == "" {
		return fmt.Errorf("%w: a federated credential needs an issuer and a subject", ErrInvalid)
	}
	fc.Audiences = slices.Clone(fc.Audiences)
	if len(fc.Audiences) == 0 {
		fc.Audiences = []string{DefaultFederatedAudience}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appLocked(clientID)
	if err != nil {
		return err
	}
	for _, o := range a.federated {
		if o.Issuer == fc.Issuer && o.Subject == fc.Subject {
			return fmt.Errorf("%w: federated credential %s %s on app %s", ErrExists, fc.Issuer, fc.Subject, a.ClientID)
		}
	}
	a.federated = append(a.federated, fc)
	return nil
}

// TokenCounts returns the token request counters, one per tenant and
// client that asked.
func (s *Service) TokenCounts() []TokenCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenCount, 0, len(s.counts))
	for _, c := range s.counts {
		out = append(out, *c)
	}
	return out
}

// TokenCount returns the counter of one tenant and client (zero if none).
func (s *Service) TokenCount(tenantID, clientID string) TokenCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.counts[countKey{strings.ToLower(tenantID), strings.ToLower(clientID)}]; c != nil {
		return *c
	}
	return TokenCount{TenantID: tenantID, ClientID: clientID}
}

// ResetTokenCounts sets every token counter to zero.
func (s *Service) ResetTokenCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[countKey]*TokenCount{}
}

// count records a token request; the caller holds mu.
func (s *Service) count(tenantID, clientID string, issued bool) {
	k := countKey{strings.ToLower(tenantID), strings.ToLower(clientID)}
	c := s.counts[k]
	if c == nil {
		c = &TokenCount{TenantID: k.tenant, ClientID: k.client}
		s.counts[k] = c
	}
	c.Requests++
	if issued {
		c.Issued++
	}
}

// ConsentAs is [Service.Consent] with a fixed service principal object id
// (empty: generated), for seeds that name principals in advance.
func (s *Service) ConsentAs(tenantID, clientID, objectID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consentLocked(tenantID, clientID, objectID)
}

// ManagedIdentity returns the managed identity named id: its name, client
// id, object (principal) id or resource id, case-insensitively.
func (s *Service) ManagedIdentity(id string) (ManagedIdentity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mi := s.findIdentityLocked(id); mi != nil {
		return *mi, nil
	}
	return ManagedIdentity{}, fmt.Errorf("%w: managed identity %q (by name, client id, object id or resource id)", ErrNotFound, id)
}

func (s *Service) findIdentityLocked(id string) *ManagedIdentity {
	if id == "" {
		return nil
	}
	for _, mi := range s.identities {
		for _, v := range []string{mi.Name, mi.ClientID, mi.ObjectID, mi.ResourceID} {
			if v != "" && strings.EqualFold(v, id) {
				return mi
			}
		}
	}
	return nil
}

// ManagedIdentityCredential returns the federated credential that lets an
// app trust the managed identity named identity (see
// [Service.ManagedIdentity]): issuer [Issuer] of the identity's tenant,
// subject its object (principal) id, audience [DefaultFederatedAudience].
// Entra accepts it only on an app registered in the identity's tenant.
func (s *Service) ManagedIdentityCredential(identity string) (FederatedCredential, error) {
	mi, err := s.ManagedIdentity(identity)
	if err != nil {
		return FederatedCredential{}, err
	}
	return FederatedCredential{Issuer: Issuer(mi.TenantID), Subject: mi.ObjectID, Audiences: []string{DefaultFederatedAudience}}, nil
}
