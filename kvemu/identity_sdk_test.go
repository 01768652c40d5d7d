package kvemu

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/openbyok/byok/internal/emuca"
	"github.com/openbyok/byok/kvemu/internal/entra"
)

const vaultScope = "https://vault.azure.net/.default"

// idClock is a settable clock shared by the emulator and a test.
type idClock struct {
	mu sync.Mutex
	t  time.Time
}

func newIDClock() *idClock { return &idClock{t: time.Now().Truncate(time.Second)} }

func (c *idClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *idClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startIdentityEmulator starts an emulator on a fake clock and closes it
// at the end of the test.
func startIdentityEmulator(t *testing.T, opts Options) (*Emulator, *idClock) {
	t.Helper()
	clk := newIDClock()
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	e, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e, clk
}

// idFixture is one tenant with one app and a secret.
type idFixture struct {
	tenant Tenant
	app    App
	secret Secret
}

func newIDFixture(t *testing.T, e *Emulator, multiTenant bool) idFixture {
	t.Helper()
	tn, err := e.CreateTenant(Tenant{Name: "platform"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := e.CreateApp(App{TenantID: tn.ID, DisplayName: "byok", MultiTenant: multiTenant})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := e.AddSecret(app.ClientID, Secret{})
	if err != nil {
		t.Fatal(err)
	}
	return idFixture{tenant: tn, app: app, secret: sec}
}

func clientOpts(e *Emulator) azcore.ClientOptions {
	return azcore.ClientOptions{Transport: e.HTTPClient()}
}

func secretCred(t *testing.T, e *Emulator, tenantID, clientID, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	c, err := azidentity.NewClientSecretCredential(tenantID, clientID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOpts(e)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// getVaultToken gets a Key Vault token and verifies it with the emulator.
func getVaultToken(t *testing.T, e *Emulator, cred azcore.TokenCredential) entra.Claims {
	t.Helper()
	return getToken(t, e, cred, vaultScope)
}

// getToken gets a token for scope and verifies it with the emulator.
func getToken(t *testing.T, e *Emulator, cred azcore.TokenCredential, scope string) entra.Claims {
	t.Helper()
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	c, err := e.entra.VerifyAccessToken(tok.Token)
	if err != nil {
		t.Fatalf("VerifyAccessToken: %v", err)
	}
	if want := strings.TrimSuffix(scope, "/.default"); c.Audience != want {
		t.Errorf("aud = %q, want %s", c.Audience, want)
	}
	if want := "https://sts.windows.net/" + c.TenantID + "/"; c.Issuer != want {
		t.Errorf("iss = %q, want %q", c.Issuer, want)
	}
	return c
}

// wantAuthFailed asserts err is an AuthenticationFailedError with the
// status and AADSTS code.
func wantAuthFailed(t *testing.T, err error, status int, aadsts string) {
	t.Helper()
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) {
		t.Fatalf("error %v (%T) is not an AuthenticationFailedError", err, err)
	}
	if afe.RawResponse == nil || afe.RawResponse.StatusCode != status {
		t.Fatalf("status: got response %v, want %d; error: %v", afe.RawResponse, status, err)
	}
	if !strings.Contains(err.Error(), aadsts) {
		t.Fatalf("error does not name %s: %v", aadsts, err)
	}
}

func TestClientSecretCredential(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	f := newIDFixture(t, e, false)
	cred := secretCred(t, e, f.tenant.ID, f.app.ClientID, f.secret.Value)
	c := getVaultToken(t, e, cred)
	if c.TenantID != f.tenant.ID || c.ObjectID != f.app.ObjectID || c.AppID != f.app.ClientID {
		t.Errorf("claims %+v, want tid %s oid %s appid %s", c, f.tenant.ID, f.app.ObjectID, f.app.ClientID)
	}
	getVaultToken(t, e, cred) // served from the credential's cache
	if got := e.TokenCount(f.tenant.ID, f.app.ClientID); got.Requests != 1 || got.Issued != 1 {
		t.Errorf("token count %+v, want one request, one issued", got)
	}
}

func TestClientSecretCredentialByDomain(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	tn, err := e.CreateTenant(Tenant{Domains: []string{"contoso.onmicrosoft.com"}})
	if err != nil {
		t.Fatal(err)
	}
	app, err := e.CreateApp(App{TenantID: "contoso.onmicrosoft.com"})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := e.AddSecret(app.ClientID, Secret{Value: "s3cret-value"})
	if err != nil {
		t.Fatal(err)
	}
	c := getVaultToken(t, e, secretCred(t, e, "contoso.onmicrosoft.com", app.ClientID, sec.Value))
	if c.TenantID != tn.ID {
		t.Errorf("tid = %s, want %s", c.TenantID, tn.ID)
	}
}

func TestMultiTenantConsent(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	f := newIDFixture(t, e, true)
	customer, err := e.CreateTenant(Tenant{Name: "customer"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = secretCred(t, e, customer.ID, f.app.ClientID, f.secret.Value).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	wantAuthFailed(t, err, 400, "AADSTS700016")

	oid, err := e.Consent(customer.ID, f.app.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if oid == f.app.ObjectID {
		t.Fatal("the service principal in the customer tenant has the home tenant's object id")
	}
	c := getVaultToken(t, e, secretCred(t, e, customer.ID, f.app.ClientID, f.secret.Value))
	if c.TenantID != customer.ID || c.ObjectID != oid {
		t.Errorf("claims tid %s oid %s, want %s %s", c.TenantID, c.ObjectID, customer.ID, oid)
	}
	if again, err := e.Consent(customer.ID, f.app.ClientID); err != nil || again != oid {
		t.Errorf("second consent = %q, %v; want %q", again, err, oid)
	}

	if err := e.RevokeConsent(customer.ID, f.app.ClientID); err != nil {
		t.Fatal(err)
	}
	_, err = secretCred(t, e, customer.ID, f.app.ClientID, f.secret.Value).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	wantAuthFailed(t, err, 400, "AADSTS700016")
}

func TestSingleTenantAppCannotBeConsented(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	f := newIDFixture(t, e, false)
	other, err := e.CreateTenant(Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Consent(other.ID, f.app.ClientID); !errors.Is(err, entra.ErrInvalid) {
		t.Fatalf("Consent of a single-tenant app = %v, want ErrInvalid", err)
	}
}

func TestAdminConsentURL(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	f := newIDFixture(t, e, true)
	customer, err := e.CreateTenant(Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	hc := *e.HTTPClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u := "https://login.microsoftonline.com/" + customer.ID + "/adminconsent?client_id=" + f.app.ClientID +
		"&redirect_uri=" + url.QueryEscape("https://platform.example/consented") + "&state=xyz"
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Host != "platform.example" || loc.Query().Get("admin_consent") != "True" ||
		loc.Query().Get("tenant") != customer.ID || loc.Query().Get("state") != "xyz" {
		t.Fatalf("redirect to %q", resp.Header.Get("Location"))
	}
	if _, err := e.ServicePrincipal(customer.ID, f.app.ClientID); err != nil {
		t.Fatalf("no service principal after admin consent: %v", err)
	}

	resp, err = hc.Get("https://login.microsoftonline.com/" + entra.NewGUID() + "/adminconsent?client_id=" + f.app.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "AADSTS90002") {
		t.Fatalf("consent in an unknown tenant: %d %s", resp.StatusCode, body)
	}
}

func TestClientCertificateCredential(t *testing.T) {
	for _, chain := range []bool{false, true} {
		e, _ := startIdentityEmulator(t, Options{})
		f := newIDFixture(t, e, false)
		cert, key, err := e.CreateCertificate(f.app.ClientID, time.Now().Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		cred, err := azidentity.NewClientCertificateCredential(f.tenant.ID, f.app.ClientID, []*x509.Certificate{cert}, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOpts(e), SendCertificateChain: chain})
		if err != nil {
			t.Fatal(err)
		}
		if c := getVaultToken(t, e, cred); c.ObjectID != f.app.ObjectID {
			t.Errorf("oid %s, want %s", c.ObjectID, f.app.ObjectID)
		}
	}
}

// TestTokenErrors drives every Entra error case through azidentity.
func TestTokenErrors(t *testing.T) {
	e, clk := startIdentityEmulator(t, Options{})
	f := newIDFixture(t, e, false)
	expiring, err := e.AddSecret(f.app.ClientID, Secret{ExpiresAt: clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	unknownCert, unknownKey := selfSigned(t, time.Now().Add(time.Hour))
	expiredCert, expiredKey, err := e.CreateCertificate(f.app.ClientID, clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour) // expires the secret and the second certificate

	certCred := func(cert *x509.Certificate, key *rsa.PrivateKey) azcore.TokenCredential {
		c, err := azidentity.NewClientCertificateCredential(f.tenant.ID, f.app.ClientID, []*x509.Certificate{cert}, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOpts(e)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		cred   azcore.TokenCredential
		status int
		code   string
	}{
		{"wrong secret", secretCred(t, e, f.tenant.ID, f.app.ClientID, "not-the-secret"), 401, "AADSTS7000215"},
		{"secret id instead of value", secretCred(t, e, f.tenant.ID, f.app.ClientID, f.secret.ID), 401, "AADSTS7000215"},
		{"expired secret", secretCred(t, e, f.tenant.ID, f.app.ClientID, expiring.Value), 401, "AADSTS7000222"},
		{"unknown app", secretCred(t, e, f.tenant.ID, entra.NewGUID(), f.secret.Value), 400, "AADSTS700016"},
		{"unknown tenant", secretCred(t, e, entra.NewGUID(), f.app.ClientID, f.secret.Value), 400, "AADSTS90002"},
		{"unregistered certificate", certCred(unknownCert, unknownKey), 401, "AADSTS700027"},
		{"expired certificate", certCred(expiredCert, expiredKey), 401, "AADSTS700027"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
			wantAuthFailed(t, err, tc.status, tc.code)
			if strings.Contains(err.Error(), f.secret.Value) || strings.Contains(err.Error(), expiring.Value) {
				t.Error("the error contains a client secret")
			}
		})
	}
	if got := e.TokenCount(f.tenant.ID, f.app.ClientID); got.Issued != 0 || got.Requests < 4 {
		t.Errorf("token count %+v, want ≥4 requests and none issued", got)
	}
}

func selfSigned(t *testing.T, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: emuca.Serial(), NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestClientAssertionReplay sends one certificate assertion twice: Entra
// accepts a jti once. A federated token, by contrast, serves many requests
// while it is valid (a workload's token is presented for every scope).
func TestClientAssertionReplay(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	f := newIDFixture(t, e, false)
	cert, key, err := e.CreateCertificate(f.app.ClientID, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tokenURL := "https://login.microsoftonline.com/" + f.tenant.ID + "/oauth2/v2.0/token"
	assertion := signTestJWT(t, key, map[string]any{"alg": "RS256", "typ": "JWT", "x5t#S256": thumbS256(cert)},
		map[string]any{"aud": tokenURL, "iss": f.app.ClientID, "sub": f.app.ClientID, "jti": entra.NewGUID(),
			"nbf": time.Now().Unix(), "exp": time.Now().Add(10 * time.Minute).Unix()})
	newCred := func(assertion string) azcore.TokenCredential {
		c, err := azidentity.NewClientAssertionCredential(f.tenant.ID, f.app.ClientID,
			func(context.Context) (string, error) { return assertion, nil },
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: clientOpts(e)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	getVaultToken(t, e, newCred(assertion))
	_, err = newCred(assertion).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	wantAuthFailed(t, err, 401, "AADSTS700027")
	if !strings.Contains(err.Error(), "already been used") {
		t.Errorf("replay error does not say so: %v", err)
	}

	if err := e.AddFederatedIssuer("https://issuer.example"); err != nil {
		t.Fatal(err)
	}
	if err := e.AddFederatedCredential(f.app.ClientID, FederatedCredential{Issuer: "https://issuer.example", Subject: "system:serviceaccount:byok:byok"}); err != nil {
		t.Fatal(err)
	}
	fed, err := e.FederatedToken("https://issuer.example", "system:serviceaccount:byok:byok", "")
	if err != nil {
		t.Fatal(err)
	}
	getVaultToken(t, e, newCred(fed))
	getVaultToken(t, e, newCred(fed))
}

// signTestJWT signs an RS256 compact JWS with header and claims.
func signTestJWT(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func thumbS256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestWorkloadIdentityCredential(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	f := newIDFixture(t, e, false)
	const issuer, subject = "https://oidc.cluster.example/abc", "system:serviceaccount:byok:api"
	if err := e.AddFederatedIssuer(issuer); err != nil {
		t.Fatal(err)
	}
	if err := e.AddFederatedCredential(f.app.ClientID, FederatedCredential{Issuer: issuer, Subject: subject}); err != nil {
		t.Fatal(err)
	}
	cred := func(subject string) azcore.TokenCredential {
		tok, err := e.FederatedToken(issuer, subject, "")
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: clientOpts(e), ClientID: f.app.ClientID, TenantID: f.tenant.ID, TokenFilePath: file})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := getVaultToken(t, e, cred(subject)); c.ObjectID != f.app.ObjectID || c.AppID != f.app.ClientID {
		t.Errorf("claims %+v", c)
	}
	_, err := cred("system:serviceaccount:other:intruder").GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	wantAuthFailed(t, err, 401, "AADSTS700213")
}

// clearMIEnv unsets every variable that selects a managed identity source.
func clearMIEnv(t *testing.T) {
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
}

// TestManagedIdentityAppService uses IDENTITY_ENDPOINT / IDENTITY_HEADER;
// azidentity reads them from the environment, so it cannot run in parallel.
func TestManagedIdentityAppService(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	tn, err := e.CreateTenant(Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	system, err := e.CreateManagedIdentity(ManagedIdentity{TenantID: tn.ID, SystemAssigned: true})
	if err != nil {
		t.Fatal(err)
	}
	user, err := e.CreateManagedIdentity(ManagedIdentity{TenantID: tn.ID, Name: "byok-uami"})
	if err != nil {
		t.Fatal(err)
	}
	// MSAL-Go caches managed identity tokens process-wide by identity and
	// resource; the system-assigned identity asks for a resource unique to
	// this emulator so that no other test's token is served.
	resource, err := e.CreateApp(App{TenantID: tn.ID})
	if err != nil {
		t.Fatal(err)
	}
	clearMIEnv(t)
	endpoint, header := e.ManagedIdentityEnv()
	t.Setenv("IDENTITY_ENDPOINT", endpoint)
	t.Setenv("IDENTITY_HEADER", header)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: clientOpts(e)})
	if err != nil {
		t.Fatal(err)
	}
	if c := getToken(t, e, cred, "api://"+resource.ClientID+"/.default"); c.ObjectID != system.ObjectID || c.AppID != system.ClientID {
		t.Errorf("system-assigned: claims %+v, want oid %s appid %s", c, system.ObjectID, system.ClientID)
	}
	for _, tc := range []struct {
		id   azidentity.ManagedIDKind
		want ManagedIdentity
	}{
		{azidentity.ObjectID(user.ObjectID), user},
		{azidentity.ResourceID(user.ResourceID), user},
	} {
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: clientOpts(e), ID: tc.id})
		if err != nil {
			t.Fatal(err)
		}
		c := getVaultToken(t, e, cred)
		if c.ObjectID != tc.want.ObjectID || c.AppID != tc.want.ClientID || c.TenantID != tn.ID {
			t.Errorf("id %v: claims %+v, want oid %s appid %s", tc.id, c, tc.want.ObjectID, tc.want.ClientID)
		}
	}
	cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: clientOpts(e), ID: azidentity.ClientID(entra.NewGUID())})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != 400 {
		t.Fatalf("unknown identity: %v, want AuthenticationFailedError with status 400", err)
	}

	// The wrong header is tried with an identity that has no cached token.
	fresh, err := e.CreateManagedIdentity(ManagedIdentity{TenantID: tn.ID, Name: "fresh"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("IDENTITY_HEADER", "wrong")
	cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: clientOpts(e), ID: azidentity.ClientID(fresh.ClientID)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != 401 {
		t.Fatalf("wrong IDENTITY_HEADER: %v, want AuthenticationFailedError with status 401", err)
	}
	if got := e.TokenCount(tn.ID, system.ClientID); got.Issued != 1 {
		t.Errorf("system identity token count %+v, want 1 issued", got)
	}
}

// TestManagedIdentityIMDS reaches IMDS at 169.254.169.254 through the
// HTTPClient's dialer.
func TestManagedIdentityIMDS(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	tn, err := e.CreateTenant(Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	system, err := e.CreateManagedIdentity(ManagedIdentity{TenantID: tn.ID, SystemAssigned: true})
	if err != nil {
		t.Fatal(err)
	}
	user, err := e.CreateManagedIdentity(ManagedIdentity{TenantID: tn.ID, Name: "uami"})
	if err != nil {
		t.Fatal(err)
	}
	// A resource unique to this emulator: MSAL-Go caches managed identity
	// tokens process-wide by identity and resource.
	resource, err := e.CreateApp(App{TenantID: tn.ID})
	if err != nil {
		t.Fatal(err)
	}
	clearMIEnv(t)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: clientOpts(e)})
	if err != nil {
		t.Fatal(err)
	}
	if c := getToken(t, e, cred, "api://"+resource.ClientID+"/.default"); c.ObjectID != system.ObjectID {
		t.Errorf("system-assigned IMDS token: oid %s, want %s", c.ObjectID, system.ObjectID)
	}
	for _, tc := range []struct {
		id   azidentity.ManagedIDKind
		want ManagedIdentity
	}{{azidentity.ClientID(user.ClientID), user}, {azidentity.ResourceID(user.ResourceID), user}} {
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: clientOpts(e), ID: tc.id})
		if err != nil {
			t.Fatal(err)
		}
		if c := getVaultToken(t, e, cred); c.ObjectID != tc.want.ObjectID {
			t.Errorf("id %v: oid %s, want %s", tc.id, c.ObjectID, tc.want.ObjectID)
		}
	}
	cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: clientOpts(e), ID: azidentity.ClientID(entra.NewGUID())})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	if err == nil || !strings.Contains(err.Error(), "isn't assigned") {
		t.Fatalf("unknown user-assigned identity on IMDS: %v, want \"the requested identity isn't assigned\"", err)
	}
}

func TestTokenLifetimeAndExpiry(t *testing.T) {
	e, clk := startIdentityEmulator(t, Options{TokenLifetime: 10 * time.Minute})
	f := newIDFixture(t, e, false)
	tok, err := secretCred(t, e, f.tenant.ID, f.app.ClientID, f.secret.Value).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.entra.VerifyAccessToken(tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ExpiresAt.Sub(c.NotBefore); got != 10*time.Minute {
		t.Errorf("token lifetime %v, want 10m", got)
	}
	clk.Advance(10 * time.Minute)
	if _, err := e.entra.VerifyAccessToken(tok.Token); !errors.Is(err, entra.ErrTokenExpired) {
		t.Fatalf("verify after expiry: %v, want ErrTokenExpired", err)
	}
}

func TestOpenIDConfigurationAndDiscovery(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	tn, err := e.CreateTenant(Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) (int, map[string]any) {
		resp, err := e.HTTPClient().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		return resp.StatusCode, m
	}
	st, doc := get("https://login.microsoftonline.com/" + tn.ID + "/v2.0/.well-known/openid-configuration")
	if st != 200 || doc["issuer"] != "https://login.microsoftonline.com/"+tn.ID+"/v2.0" ||
		doc["token_endpoint"] != "https://login.microsoftonline.com/"+tn.ID+"/oauth2/v2.0/token" {
		t.Errorf("openid-configuration %d %v", st, doc)
	}
	st, doc = get("https://login.microsoftonline.com/" + entra.NewGUID() + "/v2.0/.well-known/openid-configuration")
	if st != 400 || doc["error"] != "invalid_tenant" {
		t.Errorf("unknown tenant: %d %v", st, doc)
	}
	st, doc = get("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/common/oauth2/v2.0/authorize")
	if md, _ := doc["metadata"].([]any); st != 200 || len(md) != 1 {
		t.Errorf("instance discovery %d %v", st, doc)
	}
	st, doc = get("https://login.microsoftonline.com/" + tn.ID + "/discovery/v2.0/keys")
	if keys, _ := doc["keys"].([]any); st != 200 || len(keys) != 1 {
		t.Errorf("keys %d %v", st, doc)
	}
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	e, err := Start(Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f := newIDFixture(t, e, false)
	tok, err := secretCred(t, e, f.tenant.ID, f.app.ClientID, f.secret.Value).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	if err != nil {
		t.Fatal(err)
	}
	ca := e.CACertPEM()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2, _ := startIdentityEmulator(t, Options{StateDir: dir, Now: time.Now})
	if string(e2.CACertPEM()) != string(ca) {
		t.Error("the CA changed across a restart")
	}
	if _, err := e2.entra.VerifyAccessToken(tok.Token); err != nil {
		t.Errorf("a token of the first run does not verify after the restart: %v", err)
	}
	getVaultToken(t, e2, secretCred(t, e2, f.tenant.ID, f.app.ClientID, f.secret.Value))
}

func TestStartRejectsBrokenState(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, entraStateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Options{StateDir: dir}); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("Start with a broken state file: %v, want an error that says how to fix it", err)
	}
	if err := os.WriteFile(filepath.Join(dir, emuca.CertFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Options{StateDir: dir}); err == nil || !strings.Contains(err.Error(), emuca.CertFile) {
		t.Fatalf("Start with a CA certificate but no key: %v, want an error naming %s", err, emuca.CertFile)
	}
}

// TestConcurrentTokenRequests runs credentials in parallel with control
// changes; run with -race.
func TestConcurrentTokenRequests(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	f := newIDFixture(t, e, true)
	const workers, each = 8, 5
	errs := make(chan error, (workers+1)*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				cred, err := azidentity.NewClientSecretCredential(f.tenant.ID, f.app.ClientID, f.secret.Value,
					&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOpts(e)})
				if err == nil {
					_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
				}
				errs <- err
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range each {
			tn, err := e.CreateTenant(Tenant{})
			if err == nil {
				_, err = e.Consent(tn.ID, f.app.ClientID)
			}
			if err == nil {
				_, err = e.AddSecret(f.app.ClientID, Secret{})
			}
			errs <- err
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := e.TokenCount(f.tenant.ID, f.app.ClientID); got.Requests != workers*each || got.Issued != workers*each {
		t.Errorf("token count %+v, want %d requests, all issued", got, workers*each)
	}
}

// TestEveryCredentialReachesTheVault wraps a key through azkeys with each
// kind of credential, each granted Key Vault Crypto User by its object id,
// and checks that a principal without a role is refused. It sets
// IDENTITY_ENDPOINT, so it cannot run in parallel.
func TestEveryCredentialReachesTheVault(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{Now: time.Now})
	f := newIDFixture(t, e, false)
	if err := e.CreateVault(VaultConfig{Name: "idvault", TenantID: f.tenant.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateKey("idvault", "cmk", KeySpec{}); err != nil {
		t.Fatal(err)
	}
	grant := func(oid string) {
		t.Helper()
		if _, err := e.AssignRole("idvault", RoleAssignment{PrincipalID: oid, Role: "Key Vault Crypto User"}); err != nil {
			t.Fatal(err)
		}
	}
	opts := clientOpts(e)

	// Client secret and certificate: the app's home service principal.
	grant(f.app.ObjectID)
	cert, key, err := e.CreateCertificate(f.app.ClientID, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certCred, err := azidentity.NewClientCertificateCredential(f.tenant.ID, f.app.ClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}

	// Workload identity: a second app with a federated credential.
	wl, err := e.CreateApp(App{TenantID: f.tenant.ID})
	if err != nil {
		t.Fatal(err)
	}
	grant(wl.ObjectID)
	const issuer = "https://oidc.idvault.example"
	if err := e.AddFederatedIssuer(issuer); err != nil {
		t.Fatal(err)
	}
	if err := e.AddFederatedCredential(wl.ClientID, FederatedCredential{Issuer: issuer, Subject: "sa"}); err != nil {
		t.Fatal(err)
	}
	fedTok, err := e.FederatedToken(issuer, "sa", "")
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(fedTok), 0o600); err != nil {
		t.Fatal(err)
	}
	wlCred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: opts, ClientID: wl.ClientID, TenantID: f.tenant.ID, TokenFilePath: tokenFile})
	if err != nil {
		t.Fatal(err)
	}

	// Managed identity (App Service style), user-assigned so that MSAL-Go's
	// process-wide cache holds no token of it.
	mi, err := e.CreateManagedIdentity(ManagedIdentity{TenantID: f.tenant.ID, Name: "idvault-mi"})
	if err != nil {
		t.Fatal(err)
	}
	grant(mi.ObjectID)
	clearMIEnv(t)
	endpoint, header := e.ManagedIdentityEnv()
	t.Setenv("IDENTITY_ENDPOINT", endpoint)
	t.Setenv("IDENTITY_HEADER", header)
	miCred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: opts, ID: azidentity.ClientID(mi.ClientID)})
	if err != nil {
		t.Fatal(err)
	}

	// A principal with no role.
	nobody, err := e.CreateApp(App{TenantID: f.tenant.ID})
	if err != nil {
		t.Fatal(err)
	}
	nobodySecret, err := e.AddSecret(nobody.ClientID, Secret{})
	if err != nil {
		t.Fatal(err)
	}

	alg := azkeys.EncryptionAlgorithmRSAOAEP256
	wrap := func(cred azcore.TokenCredential) error {
		kc, err := azkeys.NewClient("https://idvault.vault.azure.net", cred, &azkeys.ClientOptions{ClientOptions: opts})
		if err != nil {
			t.Fatal(err)
		}
		_, err = kc.WrapKey(context.Background(), "cmk", "", azkeys.KeyOperationParameters{Algorithm: &alg, Value: make([]byte, 32)}, nil)
		return err
	}
	for name, cred := range map[string]azcore.TokenCredential{
		"client secret":      secretCred(t, e, f.tenant.ID, f.app.ClientID, f.secret.Value),
		"client certificate": certCred,
		"workload identity":  wlCred,
		"managed identity":   miCred,
	} {
		if err := wrap(cred); err != nil {
			t.Errorf("%s: WrapKey: %v", name, err)
		}
	}
	err = wrap(secretCred(t, e, f.tenant.ID, nobody.ClientID, nobodySecret.Value))
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("principal without a role: %v, want 403", err)
	}
}
