package kvemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// control sends one control API request and decodes a JSON answer into out
// (when not nil). It returns the status.
func control(t *testing.T, e *Emulator, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+e.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

func TestControlAPIIdentity(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{})
	var tn Tenant
	if st := control(t, e, "POST", "/control/tenants", `{"name":"platform"}`, &tn); st != 200 || tn.ID == "" {
		t.Fatalf("create tenant: %d %+v", st, tn)
	}
	var app App
	if st := control(t, e, "POST", "/control/apps", `{"tenantId":"`+tn.ID+`","multiTenant":true}`, &app); st != 200 || app.ClientID == "" || app.ObjectID == "" {
		t.Fatalf("create app: %d %+v", st, app)
	}
	var sec Secret
	if st := control(t, e, "POST", "/control/apps/"+app.ClientID+"/secrets", `{"expiresAt":"2099-01-01T00:00:00Z"}`, &sec); st != 200 || sec.Value == "" {
		t.Fatalf("add secret: %d", st)
	}
	getVaultToken(t, e, secretCred(t, e, tn.ID, app.ClientID, sec.Value))

	var customer Tenant
	control(t, e, "POST", "/control/tenants", `{}`, &customer)
	var consent struct{ ObjectID string }
	if st := control(t, e, "PUT", "/control/tenants/"+customer.ID+"/consents/"+app.ClientID, "", &consent); st != 200 || consent.ObjectID == "" {
		t.Fatalf("consent: %d %+v", st, consent)
	}
	if c := getVaultToken(t, e, secretCred(t, e, customer.ID, app.ClientID, sec.Value)); c.ObjectID != consent.ObjectID {
		t.Errorf("oid %s, want %s", c.ObjectID, consent.ObjectID)
	}
	if st := control(t, e, "DELETE", "/control/tenants/"+customer.ID+"/consents/"+app.ClientID, "", nil); st != 204 {
		t.Errorf("revoke consent: %d", st)
	}

	certPEM := func() string {
		cert, _ := selfSigned(t, time.Now().Add(time.Hour))
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}()
	body, _ := json.Marshal(map[string]string{"pem": certPEM})
	var ci Certificate
	if st := control(t, e, "POST", "/control/apps/"+app.ClientID+"/certificates", string(body), &ci); st != 200 || len(ci.ThumbprintSHA256) != 64 {
		t.Fatalf("add certificate: %d %+v", st, ci)
	}
	if st := control(t, e, "DELETE", "/control/apps/"+app.ClientID+"/certificates/"+ci.ThumbprintSHA256, "", nil); st != 204 {
		t.Errorf("remove certificate: %d", st)
	}
	var counts []TokenCount
	if st := control(t, e, "GET", "/control/token-counts", "", &counts); st != 200 || len(counts) != 2 {
		t.Errorf("token counts: %d %+v, want two clients", st, counts)
	}

	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"unknown field", "POST", "/control/tenants", `{"nmae":"typo"}`, 400},
		{"not JSON", "POST", "/control/apps", `{`, 400},
		{"bad GUID", "POST", "/control/tenants", `{"id":"not-a-guid"}`, 400},
		{"duplicate tenant", "POST", "/control/tenants", `{"id":"` + tn.ID + `"}`, 409},
		{"unknown app", "POST", "/control/apps/00000000-0000-0000-0000-000000000001/secrets", `{}`, 404},
		{"unknown secret", "DELETE", "/control/apps/" + app.ClientID + "/secrets/00000000-0000-0000-0000-000000000001", ``, 404},
		{"bad certificate", "POST", "/control/apps/" + app.ClientID + "/certificates", `{"pem":"nope"}`, 400},
		{"unknown route", "GET", "/control/nothing", ``, 404},
		{"unknown vault", "GET", "/control/vaults/nosuchvault", ``, 404},
		{"bad throttle mode", "PUT", "/control/vaults/nosuchvault/throttle", `{"mode":"fast"}`, 400},
		{"bad key action", "POST", "/control/vaults/v/keys/k/explode", ``, 400},
		{"save without state dir", "POST", "/control/save", ``, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st := control(t, e, tc.method, tc.path, tc.body, nil); st != tc.want {
				t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, st, tc.want)
			}
		})
	}
}

const testSeed = `
tenants:
  - id: 72f988bf-86f1-41af-91ab-2d7cd011db47
    name: platform
  - id: 11111111-2222-3333-4444-555555555555
    name: contoso
    domains: [contoso.onmicrosoft.com]
apps:
  - clientId: aaaaaaaa-0000-0000-0000-000000000001
    tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
    name: byok-platform
    multiTenant: true
    secrets:
      - value: platform-secret-value
consents:
  - tenantId: contoso.onmicrosoft.com
    clientId: aaaaaaaa-0000-0000-0000-000000000001
    objectId: bbbbbbbb-0000-0000-0000-000000000001
identities:
  - name: byok-uami
    tenantId: 11111111-2222-3333-4444-555555555555
vaults:
  - name: contoso
    tenantId: 11111111-2222-3333-4444-555555555555
    purgeProtection: true
    keys:
      - name: cmk
        size: 3072
    roleAssignments:
      - app: aaaaaaaa-0000-0000-0000-000000000001
        role: Key Vault Crypto User
      - identity: byok-uami
        dataActions: [Microsoft.KeyVault/vaults/keys/read]
    throttle:
      mode: documented
`

// TestSeedEndToEnd seeds a platform app consented in a customer tenant
// with a role on the customer's vault, then wraps and unwraps through the
// SDK, and checks that one token served both calls.
func TestSeedEndToEnd(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{Now: time.Now})
	seed, err := ParseSeed([]byte(testSeed))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ApplySeed(seed); err != nil {
		t.Fatal(err)
	}
	roles, err := e.RoleAssignments("contoso")
	if err != nil || len(roles) != 2 || roles[0].PrincipalID != "bbbbbbbb-0000-0000-0000-000000000001" {
		t.Fatalf("role assignments %+v, %v", roles, err)
	}
	const customer, client = "11111111-2222-3333-4444-555555555555", "aaaaaaaa-0000-0000-0000-000000000001"
	cred := secretCred(t, e, customer, client, "platform-secret-value")
	kc, err := azkeys.NewClient("https://contoso.vault.azure.net", cred, &azkeys.ClientOptions{ClientOptions: clientOpts(e)})
	if err != nil {
		t.Fatal(err)
	}
	alg := azkeys.EncryptionAlgorithmRSAOAEP256
	share := bytes.Repeat([]byte{7}, 32)
	w, err := kc.WrapKey(context.Background(), "cmk", "", azkeys.KeyOperationParameters{Algorithm: &alg, Value: share}, nil)
	if err != nil {
		t.Fatalf("WrapKey: %v", err)
	}
	u, err := kc.UnwrapKey(context.Background(), "cmk", w.KID.Version(), azkeys.KeyOperationParameters{Algorithm: &alg, Value: w.Result}, nil)
	if err != nil {
		t.Fatalf("UnwrapKey: %v", err)
	}
	if !bytes.Equal(u.Result, share) {
		t.Fatal("unwrap returned other bytes")
	}
	if got := e.TokenCount(customer, client); got.Requests != 1 || got.Issued != 1 {
		t.Errorf("token requests %+v, want exactly one for two vault calls", got)
	}
}

func TestSeedRejectsBadInput(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown field", "tenants:\n  - id: 72f988bf-86f1-41af-91ab-2d7cd011db47\n    colour: blue\n", "colour"},
		{"empty", "", "empty"},
		{"two documents", "tenants: []\n---\ntenants: []\n", "single YAML document"},
		{"not YAML", "tenants: [", "invalid seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseSeed([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseSeed: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	e, _ := startIdentityEmulator(t, Options{})
	for _, tc := range []struct{ name, yaml, want string }{
		{"app in unknown tenant", "apps:\n  - tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47\n", "apps[0]"},
		{"two principals", "tenants:\n  - id: 72f988bf-86f1-41af-91ab-2d7cd011db47\nvaults:\n  - name: v1abc\n    tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47\n    roleAssignments:\n      - app: x\n        identity: y\n        role: Key Vault Reader\n", "exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSeed([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.ApplySeed(s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ApplySeed: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestControlAPIVaults(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{Now: time.Now})
	seed, err := ParseSeed([]byte(testSeed))
	if err != nil {
		t.Fatal(err)
	}
	if st := control(t, e, "POST", "/control/seed", testSeed, nil); st != 204 {
		t.Fatalf("seed: %d", st)
	}
	if st := control(t, e, "POST", "/control/vaults/contoso/keys/cmk/disable", "", nil); st != 204 {
		t.Fatalf("disable: %d", st)
	}
	if k, err := e.Key("contoso", "cmk", ""); err != nil || k.Enabled {
		t.Fatalf("key after disable: %+v, %v", k, err)
	}
	var rot KeyInfo
	if st := control(t, e, "POST", "/control/vaults/contoso/keys/cmk/rotate", "", &rot); st != 200 || rot.Version == "" {
		t.Fatalf("rotate: %d %+v", st, rot)
	}
	var roles []RoleAssignment
	control(t, e, "GET", "/control/vaults/contoso/roles", "", &roles)
	if len(roles) != len(seed.Vaults[0].RoleAssignments) {
		t.Fatalf("roles %+v", roles)
	}
	// Revoke and restore answer with what changed, which curl prints.
	var change struct {
		Message    string
		Vault      string
		Assignment RoleAssignment
	}
	if st := control(t, e, "POST", "/control/vaults/contoso/roles/"+roles[0].ID+"/revoke", "", &change); st != 200 ||
		!change.Assignment.Revoked || change.Vault != "contoso" || !strings.Contains(change.Message, "role assignment "+roles[0].ID) || !strings.Contains(change.Message, "revoked") {
		t.Fatalf("revoke role: %d %+v, want 200 and a message saying the assignment was revoked", st, change)
	}
	control(t, e, "GET", "/control/vaults/contoso/roles", "", &roles)
	if !roles[0].Revoked {
		t.Error("role not revoked")
	}
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/control/vaults/contoso/latency", `{"fixed":"1ms","jitter":"0s"}`},
		{"PUT", "/control/vaults/contoso/throttle", `{"mode":"custom","rate":100,"burst":10}`},
		{"POST", "/control/vaults/contoso/faults", `{"status":503,"count":1}`},
		{"DELETE", "/control/vaults/contoso/faults", ``},
		{"PUT", "/control/vaults/contoso/offline", `{"offline":false}`},
		{"DELETE", "/control/calls", ``},
	} {
		if st := control(t, e, tc.method, tc.path, tc.body, nil); st != 204 {
			t.Errorf("%s %s: %d, want 204", tc.method, tc.path, st)
		}
	}
	change.Message, change.Assignment = "", RoleAssignment{}
	if st := control(t, e, "POST", "/control/vaults/contoso/roles/"+roles[0].ID+"/restore", "", &change); st != 200 ||
		change.Assignment.ID != roles[0].ID || change.Assignment.Revoked || !strings.Contains(change.Message, "restored") {
		t.Fatalf("restore role: %d %+v, want 200 and a message saying the assignment was restored", st, change)
	}
	if st := control(t, e, "POST", "/control/vaults/contoso/roles/nosuch/restore", "", nil); st != 404 {
		t.Errorf("restore of an unknown assignment: %d, want 404", st)
	}
	if st := control(t, e, "PUT", "/control/vaults/contoso/latency", `{"fixed":"-1s"}`, nil); st != 400 {
		t.Errorf("negative latency: %d, want 400", st)
	}
	if st := control(t, e, "POST", "/control/vaults", `{"name":"contoso","tenantId":"11111111-2222-3333-4444-555555555555"}`, nil); st != 409 {
		t.Errorf("duplicate vault: %d, want 409", st)
	}
}

// TestStatePersistsVaults saves through the control API and restarts: the
// vaults, keys and roles come back with the directory.
func TestStatePersistsVaults(t *testing.T) {
	dir := t.TempDir()
	e, err := Start(Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if e.Restored() {
		t.Error("Restored on an empty state directory")
	}
	if st := control(t, e, "POST", "/control/seed", testSeed, nil); st != 204 {
		t.Fatalf("seed: %d", st)
	}
	if st := control(t, e, "POST", "/control/save", "", nil); st != 204 {
		t.Fatalf("save: %d", st)
	}
	before, err := e.Key("contoso", "cmk", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2, _ := startIdentityEmulator(t, Options{StateDir: dir, Now: time.Now})
	if !e2.Restored() {
		t.Error("Restored is false after a restart on saved state")
	}
	after, err := e2.Key("contoso", "cmk", "")
	if err != nil || after.ID != before.ID {
		t.Fatalf("key after restart %+v, %v; want %s", after, err, before.ID)
	}
	if oid, err := e2.ServicePrincipal("contoso.onmicrosoft.com", "aaaaaaaa-0000-0000-0000-000000000001"); err != nil || oid != "bbbbbbbb-0000-0000-0000-000000000001" {
		t.Fatalf("consent after restart: %q, %v", oid, err)
	}
}

// FuzzParseSeed checks that no seed text panics the strict decoder.
func FuzzParseSeed(f *testing.F) {
	f.Add(testSeed)
	f.Add("tenants: [{id: x}]\nvaults: [{name: v, keys: [{name: k, size: 9}]}]")
	f.Add("&a [*a]")
	f.Fuzz(func(t *testing.T, text string) {
		if _, err := ParseSeed([]byte(text)); err != nil && !strings.Contains(err.Error(), "invalid seed") {
			t.Fatalf("error does not say the seed is invalid: %v", err)
		}
	})
}

// TestControlAPIRoutes drives the remaining control routes, each checked
// through the Go side.
func TestControlAPIRoutes(t *testing.T) {
	e, _ := startIdentityEmulator(t, Options{Now: time.Now})
	if st := control(t, e, "POST", "/control/seed", testSeed, nil); st != 204 {
		t.Fatalf("seed: %d", st)
	}
	const tenant, client = "11111111-2222-3333-4444-555555555555", "aaaaaaaa-0000-0000-0000-000000000001"

	var mi ManagedIdentity
	if st := control(t, e, "POST", "/control/identities", `{"tenantId":"`+tenant+`","systemAssigned":true}`, &mi); st != 200 || mi.ClientID == "" {
		t.Fatalf("create identity: %d %+v", st, mi)
	}
	var mis []ManagedIdentity
	if control(t, e, "GET", "/control/identities", "", &mis); len(mis) != 2 {
		t.Errorf("identities %+v, want 2", mis)
	}
	if st := control(t, e, "DELETE", "/control/identities/"+mi.ClientID, "", nil); st != 204 {
		t.Errorf("delete identity: %d", st)
	}
	if st := control(t, e, "POST", "/control/issuers", `{"issuer":"https://oidc.example"}`, nil); st != 204 {
		t.Errorf("add issuer: %d", st)
	}
	if st := control(t, e, "POST", "/control/apps/"+client+"/federated-credentials", `{"issuer":"https://oidc.example","subject":"sa"}`, nil); st != 204 {
		t.Errorf("add federated credential: %d", st)
	}
	var tok struct{ Token string }
	if st := control(t, e, "POST", "/control/issuers/token", `{"issuer":"https://oidc.example","subject":"sa"}`, &tok); st != 200 || strings.Count(tok.Token, ".") != 2 {
		t.Errorf("federated token: %d %q", st, tok.Token)
	}
	var app App
	if st := control(t, e, "GET", "/control/apps/"+client, "", &app); st != 200 || app.TenantID != "72f988bf-86f1-41af-91ab-2d7cd011db47" {
		t.Errorf("get app: %d %+v", st, app)
	}
	var sp struct{ ObjectID string }
	if st := control(t, e, "GET", "/control/tenants/"+tenant+"/consents/"+client, "", &sp); st != 200 || sp.ObjectID != "bbbbbbbb-0000-0000-0000-000000000001" {
		t.Errorf("get consent: %d %+v", st, sp)
	}

	// Vault routes.
	if st := control(t, e, "PUT", "/control/vaults/contoso/network", `{"defaultAction":"Deny","allowedIps":["10.0.0.0/8"]}`, nil); st != 204 {
		t.Errorf("network: %d", st)
	}
	if v, err := e.Vault("contoso"); err != nil || v.Network.DefaultAction != "Deny" {
		t.Errorf("vault after network change: %+v, %v", v, err)
	}
	if st := control(t, e, "PATCH", "/control/vaults/contoso/keys/cmk", `{"ops":["wrapKey","unwrapKey"]}`, nil); st != 204 {
		t.Errorf("update key: %d", st)
	}
	var versions []KeyInfo
	if st := control(t, e, "GET", "/control/vaults/contoso/keys/cmk", "", &versions); st != 200 || len(versions) != 1 || len(versions[0].Ops) != 2 {
		t.Errorf("key versions after update: %d %+v", st, versions)
	}
	priv := testRSAKeyPEM(t)
	body, _ := json.Marshal(map[string]any{"pem": priv, "hsm": true})
	var imported KeyInfo
	if st := control(t, e, "POST", "/control/vaults/contoso/keys/imported", string(body), &imported); st != 200 || imported.Type != "RSA-HSM" {
		t.Errorf("import: %d %+v", st, imported)
	}
	if st := control(t, e, "POST", "/control/vaults/contoso/keys/byo", `{"pem":"garbage"}`, nil); st != 400 {
		t.Errorf("import of a non-PEM key: %d, want 400", st)
	}
	if st := control(t, e, "DELETE", "/control/vaults/contoso/keys/imported", "", nil); st != 204 {
		t.Errorf("delete key: %d", st)
	}
	if st := control(t, e, "POST", "/control/vaults/contoso/keys/imported/recover", "", nil); st != 204 {
		t.Errorf("recover key: %d", st)
	}
	if _, err := e.Key("contoso", "imported", ""); err != nil {
		t.Errorf("key after recover: %v", err)
	}
	if st := control(t, e, "POST", "/control/vaults", `{"name":"legacy","tenantId":"`+tenant+`","accessPolicies":true}`, nil); st != 200 {
		t.Fatalf("create vault: %d", st)
	}
	if st := control(t, e, "PUT", "/control/vaults/legacy/access-policies/bbbbbbbb-0000-0000-0000-000000000001", `{"keys":["get","wrapKey"]}`, nil); st != 204 {
		t.Errorf("access policy: %d", st)
	}
	if st := control(t, e, "PUT", "/control/vaults/legacy/access-policies/x", `{"keys":["fly"]}`, nil); st != 400 {
		t.Errorf("access policy with an unknown permission: %d, want 400", st)
	}
	if st := control(t, e, "DELETE", "/control/vaults/legacy", "", nil); st != 204 {
		t.Errorf("delete vault: %d", st)
	}
	var calls []Call
	if st := control(t, e, "GET", "/control/calls", "", &calls); st != 200 {
		t.Errorf("calls: %d", st)
	}
}

func testRSAKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}
