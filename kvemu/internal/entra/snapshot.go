package entra

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
)

// snapshot is the persisted form of a Service. It holds secrets and private
// keys: the state directory is for a test emulator only.
type snapshot struct {
	Version    int               `json:"version"`
	SigningKey []byte            `json:"signingKey"` // PKCS#8 DER
	MIHeader   string            `json:"managedIdentityHeader"`
	Tenants    []tenantSnapshot  `json:"tenants"`
	Apps       []appSnapshot     `json:"apps"`
	Identities []ManagedIdentity `json:"identities"`
	Issuers    map[string][]byte `json:"issuers"` // issuer -> PKCS#8 DER
	Users      []User            `json:"users,omitempty"`
}

type tenantSnapshot struct {
	Tenant
	ServicePrincipals map[string]string `json:"servicePrincipals"`
}

type appSnapshot struct {
	App
	Secrets      []Secret              `json:"secrets"`
	Certificates [][]byte              `json:"certificates"`
	Federated    []FederatedCredential `json:"federated"`
}

const snapshotVersion = 1

// Snapshot returns the directory (tenants, apps and their credentials,
// consents, identities, federated issuers) and the token signing key as
// JSON. Token counters and used assertion ids are not included.
func (s *Service) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := snapshot{Version: snapshotVersion, MIHeader: s.miHeader, Issuers: map[string][]byte{}}
	var err error
	if snap.SigningKey, err = x509.MarshalPKCS8PrivateKey(s.signingKey); err != nil {
		return nil, err
	}
	for _, t := range s.tenants {
		snap.Tenants = append(snap.Tenants, tenantSnapshot{Tenant: t.Tenant, ServicePrincipals: t.sps})
	}
	for _, a := range s.apps {
		as := appSnapshot{App: a.App, Secrets: a.secrets, Federated: a.federated}
		for _, c := range a.certs {
			as.Certificates = append(as.Certificates, c.Raw)
		}
		snap.Apps = append(snap.Apps, as)
	}
	for _, mi := range s.identities {
		snap.Identities = append(snap.Identities, *mi)
	}
	for _, u := range s.users {
		snap.Users = append(snap.Users, *u)
	}
	for iss, k := range s.issuers {
		if snap.Issuers[iss], err = x509.MarshalPKCS8PrivateKey(k); err != nil {
			return nil, err
		}
	}
	return json.MarshalIndent(snap, "", "  ")
}

// Restore replaces the directory and signing key with a [Service.Snapshot].
// On error the Service is unchanged.
func (s *Service) Restore(data []byte) error {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("entra: state is not JSON: %w", err)
	}
	if snap.Version != snapshotVersion {
		return fmt.Errorf("entra: state version %d, this emulator reads %d", snap.Version, snapshotVersion)
	}
	key, err := parseRSAKey(snap.SigningKey)
	if err != nil {
		return fmt.Errorf("entra: signing key: %w", err)
	}
	n := &Service{now: s.now, lifetime: s.lifetime}
	n.reset(key)
	for _, t := range snap.Tenants {
		sps := map[string]string{}
		for k, v := range t.ServicePrincipals {
			sps[strings.ToLower(k)] = v
		}
		n.tenants[strings.ToLower(t.ID)] = &tenant{Tenant: t.Tenant, sps: sps}
	}
	for _, as := range snap.Apps {
		a := &app{App: as.App, secrets: as.Secrets, federated: as.Federated}
		for _, der := range as.Certificates {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("entra: certificate of app %s: %w", as.ClientID, err)
			}
			a.certs = append(a.certs, c)
		}
		n.apps[strings.ToLower(as.ClientID)] = a
	}
	for _, mi := range snap.Identities {
		n.identities[strings.ToLower(mi.ClientID)] = &mi
	}
	for iss, der := range snap.Issuers {
		if n.issuers[iss], err = parseRSAKey(der); err != nil {
			return fmt.Errorf("entra: key of issuer %s: %w", iss, err)
		}
	}
	for _, u := range snap.Users {
		n.users[strings.ToLower(u.ObjectID)] = &u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signingKey, s.keyID = n.signingKey, n.keyID
	s.tenants, s.apps, s.identities, s.issuers = n.tenants, n.apps, n.identities, n.issuers
	s.users, s.codes, s.idKeys = n.users, n.codes, n.idKeys
	if snap.MIHeader != "" {
		s.miHeader = snap.MIHeader
	}
	return nil
}

func parseRSAKey(der []byte) (*rsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want RSA", k)
	}
	return rk, nil
}
