package kvemu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/openbyok/byok/kvemu/internal/entra"
)

const exchangeScope = TokenExchangeAudience + "/.default"

// ficFixture is the platform directory P with a user-assigned managed
// identity and a multi-tenant app trusting it, and a customer directory C
// that consented to the app.
type ficFixture struct {
	platform, customer Tenant
	mi                 ManagedIdentity
	app                App
	spInCustomer       string
}

func newFICFixture(t *testing.T, e *Emulator) ficFixture {
	t.Helper()
	var f ficFixture
	var err error
	if f.platform, err = e.CreateTenant(Tenant{Name: "platform"}); err != nil {
		t.Fatal(err)
	}
	if f.customer, err = e.CreateTenant(Tenant{Name: "customer"}); err != nil {
		t.Fatal(err)
	}
	// User-assigned: MSAL-Go caches managed identity tokens process-wide by
	// identity, and a fresh client id keeps other tests' tokens out.
	if f.mi, err = e.CreateManagedIdentity(ManagedIdentity{TenantID: f.platform.ID, Name: "byok-platform"}); err != nil {
		t.Fatal(err)
	}
	if f.app, err = e.CreateApp(App{TenantID: f.platform.ID, DisplayName: "byok platform", MultiTenant: true}); err != nil {
		t.Fatal(err)
	}
	fc, err := e.TrustManagedIdentity(f.app.ClientID, "byok-platform")
	if err != nil {
		t.Fatal(err)
	}
	if want := (FederatedCredential{Issuer: "https://login.microsoftonline.com/" + f.platform.ID + "/v2.0", Subject: f.mi.ObjectID, Audiences: []string{"api://AzureADTokenExchange"}}); fc.Issuer != want.Issuer || fc.Subject != want.Subject || len(fc.Audiences) != 1 || fc.Audiences[0] != want.Audiences[0] {
		t.Fatalf("TrustManagedIdentity = %+v, want %+v", fc, want)
	}
	if f.spInCustomer, err = e.Consent(f.customer.ID, f.app.ClientID); err != nil {
		t.Fatal(err)
	}
	clearMIEnv(t)
	return f
}

func miCred(t *testing.T, e *Emulator, clientID string) *azidentity.ManagedIdentityCredential {
	t.Helper()
	c, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: clientOpts(e), ID: azidentity.ClientID(clientID)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertionCred is the app's credential in tenant whose client assertion
// is what assertion returns.
func assertionCred(t *testing.T, e *Emulator, tenant, clientID string, assertion func(context.Context) (string, error)) azcore.TokenCredential {
	t.Helper()
	c, err := azidentity.NewClientAssertionCredential(tenant, clientID, assertion,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: clientOpts(e)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// miAssertion returns the managed identity's token for scope.
func miAssertion(mi azcore.TokenCredential, scope string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		return tok.Token, err
	}
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestManagedIdentityTokenForTokenExchange: a managed identity's token for
// api://AzureADTokenExchange is a v2.0 token of its tenant's issuer whose
// subject is its object id.
func TestManagedIdentityTokenForTokenExchange(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	f := newFICFixture(t, e)
	tok, err := miCred(t, e, f.mi.ClientID).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{exchangeScope}})
	if err != nil {
		t.Fatal(err)
	}
	c := jwtClaims(t, tok.Token)
	want := map[string]any{
		"iss": "https://login.microsoftonline.com/" + f.platform.ID + "/v2.0", "sub": f.mi.ObjectID, "oid": f.mi.ObjectID,
		"aud": "api://AzureADTokenExchange", "tid": f.platform.ID, "azp": f.mi.ClientID, "ver": "2.0", "idtyp": "app",
		"xms_mirid": f.mi.ResourceID,
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if _, ok := c["appid"]; ok {
		t.Error("a v2.0 token carries appid; Entra puts azp")
	}
	if _, err := e.entra.VerifyAccessToken(tok.Token); err != nil {
		t.Errorf("VerifyAccessToken: %v", err)
	}
	if got, _ := e.ManagedIdentity(f.mi.Name); got.ObjectID != f.mi.ObjectID {
		t.Errorf("ManagedIdentity(%q) = %+v", f.mi.Name, got)
	}
	if got, _ := e.ManagedIdentity(strings.ToUpper(f.mi.ObjectID)); got.ClientID != f.mi.ClientID {
		t.Errorf("ManagedIdentity(object id) = %+v", got)
	}
}

// TestManagedIdentityAsFederatedCredential presents the platform's managed
// identity token as the client assertion of its multi-tenant app, in the
// customer's directory and in its own.
func TestManagedIdentityAsFederatedCredential(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	f := newFICFixture(t, e)
	mi := miCred(t, e, f.mi.ClientID)
	cred := assertionCred(t, e, f.customer.ID, f.app.ClientID, miAssertion(mi, exchangeScope))
	c := getVaultToken(t, e, cred)
	if c.TenantID != f.customer.ID || c.AppID != f.app.ClientID || c.ObjectID != f.spInCustomer {
		t.Errorf("claims %+v, want tid %s appid %s oid %s", c, f.customer.ID, f.app.ClientID, f.spInCustomer)
	}
	home := getVaultToken(t, e, assertionCred(t, e, f.platform.ID, f.app.ClientID, miAssertion(mi, exchangeScope)))
	if home.ObjectID != f.app.ObjectID {
		t.Errorf("home tenant oid %s, want %s", home.ObjectID, f.app.ObjectID)
	}
	// One MI token serves both directories (it is not a one-time assertion).
	if got := e.TokenCount(f.platform.ID, f.mi.ClientID); got.Issued != 1 {
		t.Errorf("managed identity tokens issued: %+v, want 1", got)
	}

	other, err := e.CreateTenant(Tenant{Name: "not consented"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = assertionCred(t, e, other.ID, f.app.ClientID, miAssertion(mi, exchangeScope)).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	wantAuthFailed(t, err, 400, "AADSTS700016")
}

// TestManagedIdentityFederatedErrors: each way a presented managed identity
// token can miss the app's federated credentials, answered as Entra does.
func TestManagedIdentityFederatedErrors(t *testing.T) {
	e, clk := startIdentityEmulator(t, Options{})
	f := newFICFixture(t, e)
	mi := miCred(t, e, f.mi.ClientID)
	platIss := EntraIssuer(f.platform.ID)

	// appWith registers a multi-tenant app in home, consented in the
	// customer's directory, with the given federated credentials.
	appWith := func(home string, fcs ...FederatedCredential) App {
		a, err := e.CreateApp(App{TenantID: home, MultiTenant: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, fc := range fcs {
			if err := e.AddFederatedCredential(a.ClientID, fc); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.Consent(f.customer.ID, a.ClientID); err != nil {
			t.Fatal(err)
		}
		return a
	}
	tok, err := mi.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{exchangeScope}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		app       App
		assertion func(context.Context) (string, error)
		status    int
		code      string
		says      string
	}{
		{"no federated credential", appWith(f.platform.ID), miAssertion(mi, exchangeScope), 400, "AADSTS70021",
			"Assertion Issuer: '" + platIss + "'. Assertion Subject: '" + f.mi.ObjectID + "'. Assertion Audience: 'api://AzureADTokenExchange'"},
		{"wrong issuer", appWith(f.platform.ID, FederatedCredential{Issuer: EntraIssuer(f.customer.ID), Subject: f.mi.ObjectID}), miAssertion(mi, exchangeScope), 401, "AADSTS700211",
			"presented assertion issuer '" + platIss + "'"},
		{"issuer with a trailing slash", appWith(f.platform.ID, FederatedCredential{Issuer: platIss + "/", Subject: f.mi.ObjectID}), miAssertion(mi, exchangeScope), 401, "AADSTS700211", platIss},
		{"wrong subject", appWith(f.platform.ID, FederatedCredential{Issuer: platIss, Subject: entra.NewGUID()}), miAssertion(mi, exchangeScope), 401, "AADSTS700213",
			"presented assertion subject '" + f.mi.ObjectID + "'"},
		{"subject in other case", appWith(f.platform.ID, FederatedCredential{Issuer: platIss, Subject: strings.ToUpper(f.mi.ObjectID)}), miAssertion(mi, exchangeScope), 401, "AADSTS7002138",
			"case-insensitive comparison"},
		{"wrong audience on the credential", appWith(f.platform.ID, FederatedCredential{Issuer: platIss, Subject: f.mi.ObjectID, Audiences: []string{"api://other"}}), miAssertion(mi, exchangeScope), 401, "AADSTS700212",
			"presented assertion audience 'api://AzureADTokenExchange'"},
		// A token for another audience is a v1.0 token: its issuer is
		// https://sts.windows.net/{tid}/, which no credential names.
		{"MI token for the vault, not for token exchange", f.app, miAssertion(mi, vaultScope), 401, "AADSTS700211",
			"presented assertion issuer 'https://sts.windows.net/" + f.platform.ID + "/'"},
		{"app registered in another directory than the MI", appWith(f.customer.ID, FederatedCredential{Issuer: platIss, Subject: f.mi.ObjectID}), miAssertion(mi, exchangeScope), 400, "AADSTS700236",
			"may not be used for federated identity credential flows"},
		{"expired MI token", f.app, func(context.Context) (string, error) { return tok.Token, nil }, 401, "AADSTS700024",
			"not within its valid time range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code == "AADSTS700024" {
				clk.Advance(2 * time.Hour)
				defer clk.Advance(-2 * time.Hour)
			}
			_, err := assertionCred(t, e, f.customer.ID, tc.app.ClientID, tc.assertion).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
			wantAuthFailed(t, err, tc.status, tc.code)
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error does not say %q: %v", tc.says, err)
			}
			if strings.Contains(err.Error(), tok.Token) || strings.Contains(err.Error(), strings.Split(tok.Token, ".")[2]) {
				t.Error("the error shows the managed identity's token")
			}
		})
	}

	// A managed identity the host does not have: the assertion cannot be
	// made, and the app's token request fails with IMDS's answer.
	ghost := miCred(t, e, entra.NewGUID())
	_, err = assertionCred(t, e, f.customer.ID, f.app.ClientID, miAssertion(ghost, exchangeScope)).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	if err == nil || !strings.Contains(err.Error(), "isn't assigned") {
		t.Errorf("unassigned identity: %v, want \"the requested identity isn't assigned\"", err)
	}
}

// TestTrustManagedIdentityControlAndSeed adds the federated credential of
// a managed identity through the control API and through a seed.
func TestTrustManagedIdentityControlAndSeed(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	seed, err := ParseSeed([]byte(`
tenants:
  - id: 72f988bf-86f1-41af-91ab-2d7cd011db47
    name: platform
  - id: 11111111-2222-3333-4444-555555555555
    name: contoso
identities:
  - name: byok-mi
    tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
    objectId: cccccccc-0000-0000-0000-000000000001
apps:
  - clientId: aaaaaaaa-0000-0000-0000-000000000001
    tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
    multiTenant: true
    federatedCredentials:
      - identity: byok-mi
consents:
  - tenantId: 11111111-2222-3333-4444-555555555555
    clientId: aaaaaaaa-0000-0000-0000-000000000001
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ApplySeed(seed); err != nil {
		t.Fatal(err)
	}
	var got struct {
		ObjectID string `json:"objectId"`
		ClientID string `json:"clientId"`
		Issuer   string `json:"issuer"`
	}
	if st := control(t, e, "GET", "/control/identities/byok-mi", "", &got); st != 200 ||
		got.ObjectID != "cccccccc-0000-0000-0000-000000000001" || got.Issuer != "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0" {
		t.Fatalf("GET identity: %d %+v", st, got)
	}
	if st := control(t, e, "GET", "/control/identities/nope", "", nil); st != 404 {
		t.Errorf("GET unknown identity: %d, want 404", st)
	}
	clearMIEnv(t)
	mi := miCred(t, e, got.ClientID)
	const customer, client = "11111111-2222-3333-4444-555555555555", "aaaaaaaa-0000-0000-0000-000000000001"
	getVaultToken(t, e, assertionCred(t, e, customer, client, miAssertion(mi, exchangeScope)))

	// The control API: a second app trusts the identity by name.
	var app App
	if st := control(t, e, "POST", "/control/apps", `{"tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","multiTenant":true}`, &app); st != 200 {
		t.Fatalf("create app: %d", st)
	}
	var fc FederatedCredential
	if st := control(t, e, "POST", "/control/apps/"+app.ClientID+"/federated-credentials", `{"identity":"byok-mi"}`, &fc); st != 200 || fc.Subject != got.ObjectID || fc.Issuer != got.Issuer {
		t.Fatalf("trust identity: %d %+v", st, fc)
	}
	if st := control(t, e, "POST", "/control/apps/"+app.ClientID+"/federated-credentials", `{"identity":"byok-mi","subject":"x"}`, nil); st != 400 {
		t.Errorf("identity and subject: %d, want 400", st)
	}
	getVaultToken(t, e, assertionCred(t, e, "72f988bf-86f1-41af-91ab-2d7cd011db47", app.ClientID, miAssertion(mi, exchangeScope)))

	if _, err := ParseSeed([]byte("apps:\n  - tenantId: x\n    federatedCredentials:\n      - identity: a\n        issuer: https://x\n")); err != nil {
		t.Fatal(err) // parses; ApplySeed refuses it
	}
	bad, _ := ParseSeed([]byte("apps:\n  - tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47\n    federatedCredentials:\n      - identity: a\n        issuer: https://x\n"))
	if err := e.ApplySeed(bad); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("seed with identity and issuer: %v", err)
	}
}
