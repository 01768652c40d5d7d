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
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors of the control methods. Each returned error wraps exactly one.
var (
	// ErrNotFound: a named tenant, app, identity, issuer or secret does not exist.
	ErrNotFound = errors.New("entra: not found")
	// ErrExists: an object with that id or name already exists.
	ErrExists = errors.New("entra: already exists")
	// ErrInvalid: an argument is malformed (bad GUID, bad certificate, …).
	ErrInvalid = errors.New("entra: invalid argument")
)

// DefaultTokenLifetime is the lifetime of issued access tokens when
// [Options.TokenLifetime] is zero.
const DefaultTokenLifetime = time.Hour

// DefaultFederatedAudience is the audience a federated credential accepts
// when none is given, as in Entra.
const DefaultFederatedAudience = "api://AzureADTokenExchange"

// Options configures a [Service].
type Options struct {
	// Now is the clock for token lifetimes, secret and certificate expiry
	// and assertion checks; nil means time.Now.
	Now func() time.Time
	// TokenLifetime is the lifetime of issued access tokens; zero means
	// [DefaultTokenLifetime].
	TokenLifetime time.Duration
}

// Tenant is an Entra directory.
type Tenant struct {
	// ID is the directory (tenant) id, a GUID.
	ID string `json:"id" yaml:"id"`
	// Name is a display name, used in messages.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Domains are other names the tenant answers to in URLs
	// (e.g. contoso.onmicrosoft.com).
	Domains []string `json:"domains,omitempty" yaml:"domains,omitempty"`
}

// App is an app registration and its service principal in its home tenant.
type App struct {
	// ClientID is the application (client) id; generated when empty.
	ClientID string `json:"clientId" yaml:"clientId,omitempty"`
	// TenantID is the home tenant.
	TenantID string `json:"tenantId" yaml:"tenantId"`
	// DisplayName is informative.
	DisplayName string `json:"displayName,omitempty" yaml:"name,omitempty"`
	// MultiTenant apps can be consented to in other tenants.
	MultiTenant bool `json:"multiTenant,omitempty" yaml:"multiTenant,omitempty"`
	// ObjectID is the object id of the app's service principal in its home
	// tenant (the oid of its tokens there); generated when empty.
	ObjectID string `json:"objectId" yaml:"objectId,omitempty"`
	// RedirectURIs are the app's web redirect URIs: the authorize endpoint
	// sends a signed-in user's code to one of them only (oidc.go).
	RedirectURIs []string `json:"redirectUris,omitempty" yaml:"redirectUris,omitempty"`
}

// Secret is a client secret of an app.
type Secret struct {
	// ID is the secret's key id, a GUID; generated when empty.
	ID string `json:"id" yaml:"id,omitempty"`
	// Value is the secret itself; generated when empty. Control methods
	// return it only when it is created.
	Value string `json:"value,omitempty" yaml:"value,omitempty"`
	// ExpiresAt is when the secret stops working; zero means never.
	ExpiresAt time.Time `json:"expiresAt,omitzero" yaml:"expiresAt,omitempty"`
}

// Certificate is a certificate credential of an app.
type Certificate struct {
	// ThumbprintSHA256 is the hex SHA-256 of the DER certificate, the
	// x5t#S256 that assertions carry (base64 there).
	ThumbprintSHA256 string `json:"thumbprintSha256"`
	// NotBefore and NotAfter bound the credential (from the certificate).
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
}

// ManagedIdentity is a managed identity of the emulated host: the one
// system-assigned identity and any number of user-assigned ones, served by
// the IMDS and App Service endpoints.
type ManagedIdentity struct {
	// Name is the identity's resource name; required for user-assigned.
	Name string `json:"name" yaml:"name"`
	// TenantID is the tenant the identity lives in.
	TenantID string `json:"tenantId" yaml:"tenantId"`
	// SystemAssigned marks the host's system-assigned identity (at most one).
	SystemAssigned bool `json:"systemAssigned,omitempty" yaml:"systemAssigned,omitempty"`
	// ClientID, ObjectID and ResourceID are generated when empty.
	ClientID   string `json:"clientId" yaml:"clientId,omitempty"`
	ObjectID   string `json:"objectId" yaml:"objectId,omitempty"`
	ResourceID string `json:"resourceId" yaml:"resourceId,omitempty"`
}

// FederatedCredential trusts tokens of an external issuer as an app's
// client assertion (workload identity federation).
type FederatedCredential struct {
	// Issuer and Subject must equal the assertion's iss and sub.
	Issuer  string `json:"issuer" yaml:"issuer"`
	Subject string `json:"subject" yaml:"subject"`
	// Audiences accepted in aud; empty means [DefaultFederatedAudience].
	Audiences []string `json:"audiences,omitempty" yaml:"audiences,omitempty"`
}

// TokenCount counts token requests for one tenant and client (app or
// managed identity).
type TokenCount struct {
	TenantID string `json:"tenantId"`
	ClientID string `json:"clientId"`
	// Requests is every request that named this tenant and client.
	Requests int `json:"requests"`
	// Issued is how many of them got a token.
	Issued int `json:"issued"`
}

// Service is the emulated Entra ID. Create it with [New].
type Service struct {
	now      func() time.Time
	lifetime time.Duration

	mu         sync.Mutex
	signingKey *rsa.PrivateKey
	keyID      string
	tenants    map[string]*tenant          // lower-case tenant id
	apps       map[string]*app             // lower-case client id
	identities map[string]*ManagedIdentity // lower-case client id
	issuers    map[string]*rsa.PrivateKey  // federated issuer URL
	miHeader   string                      // App Service X-IDENTITY-HEADER value
	// subscription is the subscription id in generated resource ids; random
	// so that emulators in one process never share one.
	subscription string
	jtis         map[string]time.Time // used assertion ids until their expiry
	counts       map[countKey]*TokenCount

	// Interactive sign-in (oidc.go): users, authorization codes by the
	// SHA-256 of the code, and the ID token signing keys (current first,
	// then the one it replaced, both in the JWKS).
	users  map[string]*User // lower-case object id
	codes  map[[32]byte]*authCode
	idKeys []*rsa.PrivateKey
}

type countKey struct{ tenant, client string }

type tenant struct {
	Tenant
	sps map[string]string // lower-case client id -> service principal object id
}

type app struct {
	App
	secrets   []Secret
	certs     []*x509.Certificate
	federated []FederatedCredential
}

// New returns a Service with a fresh signing key and no tenants.
func New(opts Options) (*Service, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("entra: generate signing key: %w", err)
	}
	s := &Service{
		now:          opts.Now,
		lifetime:     opts.TokenLifetime,
		miHeader:     randomString(24),
		subscription: NewGUID(),
		counts:       map[countKey]*TokenCount{},
		jtis:         map[string]time.Time{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultTokenLifetime
	}
	s.reset(key)
	return s, nil
}

// reset empties the directory and installs key as the signing key.
func (s *Service) reset(key *rsa.PrivateKey) {
	s.signingKey = key
	s.keyID = keyThumbprint(&key.PublicKey)
	s.tenants = map[string]*tenant{}
	s.apps = map[string]*app{}
	s.identities = map[string]*ManagedIdentity{}
	s.issuers = map[string]*rsa.PrivateKey{}
	s.users = map[string]*User{}
	s.codes = map[[32]byte]*authCode{}
	if len(s.idKeys) == 0 {
		s.idKeys = []*rsa.PrivateKey{key}
	}
}

// keyThumbprint names a public key: base64url SHA-1 of its PKIX DER, the
// shape of Entra's kid/x5t.
func keyThumbprint(pub *rsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub) // an RSA key always marshals
	sum := sha1.Sum(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// NewGUID returns a random (version 4) GUID in lower case.
func NewGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// randomString returns n random characters usable in a client secret.
func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789~._-"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// guidOrNew checks that id is a GUID, or makes one when id is empty.
func guidOrNew(what, id string) (string, error) {
	if id == "" {
		return NewGUID(), nil
	}
	if !guidPattern.MatchString(id) {
		return "", fmt.Errorf("%w: %s %q is not a GUID (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", ErrInvalid, what, id)
	}
	return strings.ToLower(id), nil
}

// CreateTenant adds a tenant. An empty t.ID gets a new GUID. It returns the
// tenant as stored.
func (s *Service) CreateTenant(t Tenant) (Tenant, error) {
	id, err := guidOrNew("tenant id", t.ID)
	if err != nil {
		return Tenant{}, err
	}
	t.ID = id
	t.Domains = slices.Clone(t.Domains)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tenants[id]; ok {
		return Tenant{}, fmt.Errorf("%w: tenant %s", ErrExists, id)
	}
	for _, d := range t.Domains {
		if s.lookupTenant(d) != nil {
			return Tenant{}, fmt.Errorf("%w: domain %q belongs to another tenant", ErrExists, d)
		}
	}
	s.tenants[id] = &tenant{Tenant: t, sps: map[string]string{}}
	return t, nil
}

// Tenants lists the tenants, in no particular order.
func (s *Service) Tenants() []Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		out = append(out, t.Tenant)
	}
	return out
}

// lookupTenant finds a tenant by id or domain, case-insensitively. The
// caller holds mu.
func (s *Service) lookupTenant(idOrDomain string) *tenant {
	if t, ok := s.tenants[strings.ToLower(idOrDomain)]; ok {
		return t
	}
	for _, t := range s.tenants {
		for _, d := range t.Domains {
			if strings.EqualFold(d, idOrDomain) {
				return t
			}
		}
	}
	return nil
}

// CreateApp registers an app in a.TenantID and creates its service
// principal there. Empty ClientID and ObjectID are generated. It returns
// the app as stored.
func (s *Service) CreateApp(a App) (App, error) {
	var err error
	if a.ClientID, err = guidOrNew("client id", a.ClientID); err != nil {
		return App{}, err
	}
	if a.ObjectID, err = guidOrNew("object id", a.ObjectID); err != nil {
		return App{}, err
	}
	a.RedirectURIs = slices.Clone(a.RedirectURIs)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookupTenant(a.TenantID)
	if t == nil {
		return App{}, fmt.Errorf("%w: tenant %q; create it first", ErrNotFound, a.TenantID)
	}
	a.TenantID = t.ID
	if s.apps[a.ClientID] != nil || s.identities[a.ClientID] != nil {
		return App{}, fmt.Errorf("%w: client id %s", ErrExists, a.ClientID)
	}
	s.apps[a.ClientID] = &app{App: a}
	t.sps[a.ClientID] = a.ObjectID
	return a, nil
}

// App returns the app with the given client id.
func (s *Service) App(clientID string) (App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[strings.ToLower(clientID)]
	if a == nil {
		return App{}, fmt.Errorf("%w: app %q", ErrNotFound, clientID)
	}
	return a.App, nil
}

// appLocked returns the app or an ErrNotFound error. The caller holds mu.
func (s *Service) appLocked(clientID string) (*app, error) {
	a := s.apps[strings.ToLower(clientID)]
	if a == nil {
		return nil, fmt.Errorf("%w: app %q; create it first", ErrNotFound, clientID)
	}
	return a, nil
}

// AddSecret adds a client secret to an app. An empty ID or Value is
// generated. The returned Secret carries the value; keep it, no other
// method returns it.
func (s *Service) AddSecret(clientID string, sec Secret) (Secret, error) {
	var err error
	if sec.ID, err = guidOrNew("secret id", sec.ID); err != nil {
		return Secret{}, err
	}
	if sec.Value == "" {
		sec.Value = randomString(40)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appLocked(clientID)
	if err != nil {
		return Secret{}, err
	}
	for _, o := range a.secrets {
		if o.ID == sec.ID {
			return Secret{}, fmt.Errorf("%w: secret %s of app %s", ErrExists, sec.ID, a.ClientID)
		}
	}
	a.secrets = append(a.secrets, sec)
	return sec, nil
}

// RemoveSecret deletes a client secret by its id.
func (s *Service) RemoveSecret(clientID, secretID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appLocked(clientID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(a.secrets, func(o Secret) bool { return strings.EqualFold(o.ID, secretID) })
	if i < 0 {
		return fmt.Errorf("%w: secret %q of app %s", ErrNotFound, secretID, a.ClientID)
	}
	a.secrets = slices.Delete(a.secrets, i, i+1)
	return nil
}

// AddCertificate adds a certificate credential (DER) to an app. Its public
// key must be RSA. Assertions signed by its private key are then accepted
// between the certificate's NotBefore and NotAfter.
func (s *Service) AddCertificate(clientID string, der []byte) (Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Certificate{}, fmt.Errorf("%w: certificate is not DER X.509: %v", ErrInvalid, err)
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return Certificate{}, fmt.Errorf("%w: certificate key is %T; Entra client assertions need RSA", ErrInvalid, cert.PublicKey)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appLocked(clientID)
	if err != nil {
		return Certificate{}, err
	}
	info := certInfo(cert)
	for _, c := range a.certs {
		if c.Equal(cert) {
			return Certificate{}, fmt.Errorf("%w: certificate %s on app %s", ErrExists, info.ThumbprintSHA256, a.ClientID)
		}
	}
	a.certs = append(a.certs, cert)
	return info, nil
}

// RemoveCertificate deletes a certificate credential by its hex SHA-256
// thumbprint.
func (s *Service) RemoveCertificate(clientID, thumbprintSHA256 string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appLocked(clientID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(a.certs, func(c *x509.Certificate) bool {
		return strings.EqualFold(certInfo(c).ThumbprintSHA256, thumbprintSHA256)
	})
	if i < 0 {
		return fmt.Errorf("%w: certificate %q on app %s", ErrNotFound, thumbprintSHA256, a.ClientID)
	}
	a.certs = slices.Delete(a.certs, i, i+1)
	return nil
}

func certInfo(c *x509.Certificate) Certificate {
	sum := sha256.Sum256(c.Raw)
	return Certificate{ThumbprintSHA256: hex.EncodeToString(sum[:]), NotBefore: c.NotBefore, NotAfter: c.NotAfter}
}

// Consent creates the service principal of a multi-tenant app in tenantID,
// as admin consent or `az ad sp create --id` does, and returns its object
// id. Consenting again returns the existing object id. A single-tenant app
// can only be "consented" in its home tenant.
func (s *Service) Consent(tenantID, clientID string) (string, error) {
	return s.ConsentAs(tenantID, clientID, "")
}

// consentLocked is Consent with an optional fixed object id. The caller
// holds mu.
func (s *Service) consentLocked(tenantID, clientID, objectID string) (string, error) {
	t := s.lookupTenant(tenantID)
	if t == nil {
		return "", fmt.Errorf("%w: tenant %q", ErrNotFound, tenantID)
	}
	a, err := s.appLocked(clientID)
	if err != nil {
		return "", err
	}
	if oid, ok := t.sps[a.ClientID]; ok {
		return oid, nil
	}
	if !a.MultiTenant {
		return "", fmt.Errorf("%w: app %s is single-tenant (home %s); make it multi-tenant to consent in tenant %s", ErrInvalid, a.ClientID, a.TenantID, t.ID)
	}
	if objectID, err = guidOrNew("object id", objectID); err != nil {
		return "", err
	}
	t.sps[a.ClientID] = objectID
	return objectID, nil
}

// RevokeConsent deletes the app's service principal from tenantID, as
// removing the enterprise application does. Token requests for that tenant
// then fail with AADSTS700016.
func (s *Service) RevokeConsent(tenantID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookupTenant(tenantID)
	if t == nil {
		return fmt.Errorf("%w: tenant %q", ErrNotFound, tenantID)
	}
	id := strings.ToLower(clientID)
	if _, ok := t.sps[id]; !ok {
		return fmt.Errorf("%w: no service principal of app %q in tenant %s", ErrNotFound, clientID, t.ID)
	}
	delete(t.sps, id)
	return nil
}

// ServicePrincipal returns the object id of the app's service principal in
// tenantID.
func (s *Service) ServicePrincipal(tenantID, clientID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookupTenant(tenantID)
	if t == nil {
		return "", fmt.Errorf("%w: tenant %q", ErrNotFound, tenantID)
	}
	oid, ok := t.sps[strings.ToLower(clientID)]
	if !ok {
		return "", fmt.Errorf("%w: no service principal of app %q in tenant %s; consent first", ErrNotFound, clientID, t.ID)
	}
	return oid, nil
}
