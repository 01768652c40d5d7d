package console_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// The platform's workload, as the setup steps show it.
const (
	platformIssuer  = "https://oidc.platform.example/cluster"
	platformSubject = "system:serviceaccount:byok:byok"
)

// offerManagedIdentity makes Contoso's directory the platform's own (a
// business unit of the platform's organisation), gives the platform a
// user-assigned managed identity there, offers it to tenants, and tags
// the key for tenant contoso.
func (f *fixture) offerManagedIdentity(t *testing.T) kvemu.ManagedIdentity {
	t.Helper()
	// azidentity picks App Service's endpoint from these; unset, it asks
	// IMDS, which the emulator's transport reaches.
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	mi, err := f.emu.CreateManagedIdentity(kvemu.ManagedIdentity{TenantID: directory, Name: "byok-" + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	f.conn.ManagedIdentity = &azurekv.ManagedIdentity{ClientID: mi.ClientID}
	f.conn.HomeTenant = directory
	if err := f.emu.UpdateKey(vaultName, keyName, "", kvemu.KeyUpdate{Tags: map[string]string{azurekv.OwnerTagName: contoso}}); err != nil {
		t.Fatal(err)
	}
	return mi
}

// offerWorkload offers the platform's workload identity, its token in a
// file.
func (f *fixture) offerWorkload(t *testing.T) {
	t.Helper()
	if err := f.emu.AddFederatedIssuer(platformIssuer); err != nil {
		t.Fatal(err)
	}
	tok, err := f.emu.FederatedToken(platformIssuer, platformSubject, "")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	f.conn.Workload = &azure.WorkloadFederation{TokenFile: file, Issuer: platformIssuer, Subject: platformSubject}
}

// TestSetupIdentitySteps: Create key shows the setup steps of each of the
// platform's identities it offers (the managed identity's principal and
// role command, the federated credential's issuer, subject and audience
// and its command), and why a mode is not offered.
func TestSetupIdentitySteps(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	_, body := u.get("/t/contoso/setup")
	mustContain(t, "setup page without the platform's identities", body,
		`id="cred-mi" name="credential" value="managed-identity"  disabled`,
		"managed-identity is not offered by this platform: its operator has not configured azure.managed_identity",
		"workload-identity is not offered by this platform: its operator has not configured azure.workload_identity")

	mi := f.offerManagedIdentity(t)
	f.offerWorkload(t)
	_, body = u.get("/t/contoso/setup")
	mustContain(t, "setup page with the platform's identities", body,
		`<code id="mi-object-id">`+mi.ObjectID+`</code>`, `<code id="mi-client-id">`+mi.ClientID+`</code>`,
		"--assignee-object-id "+mi.ObjectID+" --assignee-principal-type ServicePrincipal",
		`<dd id="wi-issuer">`+platformIssuer+`</dd>`, `<dd id="wi-subject">`+platformSubject+`</dd>`,
		`<dd id="wi-audience">api://AzureADTokenExchange</dd>`,
		"az ad app federated-credential create --id &lt;your-app-id&gt;", "byok-tenant="+contoso)
	if strings.Contains(body, "is not offered by this platform") {
		t.Error("the setup page says a mode is not offered although both are")
	}
	// The API tells the same to the tenant admin.
	req, _ := http.NewRequest("GET", f.srv.URL+"/v1/tenants/contoso/key/identities", nil)
	req.Header.Set("Authorization", "Bearer "+f.tokens[contoso])
	res0, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := io.ReadAll(res0.Body)
	res0.Body.Close()
	mustContain(t, "GET /v1/tenants/contoso/key/identities", string(api), `"object_id":"`+mi.ObjectID+`"`, `"directory_id":"`+directory+`"`,
		`"issuer":"`+platformIssuer+`"`, `"subject":"`+platformSubject+`"`, `"audience":"api://AzureADTokenExchange"`, "--assignee-object-id "+mi.ObjectID)

	// Saved with the managed identity: the role command names the key.
	res, body := u.post("/t/contoso/configure", url.Values{"csrf": {u.csrf("/t/contoso/setup")}, "key_id": {keyID},
		"credential": {"managed-identity"}, "client_id": {"left over from another mode"}})
	if res.StatusCode != 303 {
		t.Fatalf("saving with the managed identity: %d %s", res.StatusCode, body)
	}
	k, err := f.lc.Status(f.ctx, contoso)
	if err != nil || opts(k.Settings).Credential != azure.CredentialManagedIdentity || opts(k.Settings).DirectoryID != directory || opts(k.Settings).ClientID != "" {
		t.Fatalf("saved settings %+v, %v", k.Settings, err)
	}
	_, body = u.get("/t/contoso/setup")
	mustContain(t, "setup page after saving", body, "$(az keyvault show --name "+vaultName+" --query id -o tsv)/keys/"+keyName)

	// Saved with the workload identity: the command names the app.
	res, body = u.post("/t/contoso/configure", url.Values{"csrf": {u.csrf("/t/contoso/setup")}, "key_id": {keyID}, "directory_id": {directory},
		"credential": {"workload-identity"}, "client_id": {f.app.ClientID}})
	if res.StatusCode != 303 {
		t.Fatalf("saving with the workload identity: %d %s", res.StatusCode, body)
	}
	if k, err := f.lc.Status(f.ctx, contoso); err != nil || opts(k.Settings).Credential != azure.CredentialWorkloadIdentity || opts(k.Settings).ClientID != f.app.ClientID || k.SecretSet {
		t.Fatalf("saved settings %+v, secret set %v, %v", k.Settings, k.SecretSet, err)
	}
	_, body = u.get("/t/contoso/setup")
	mustContain(t, "setup page after saving", body, "az ad app federated-credential create --id "+f.app.ClientID)
}

// TestBrowserManagedIdentityJourney: in chromium, a business unit in the
// platform's directory chooses the platform's managed identity in Create
// key (the directory left empty), reads the principal to grant, Test
// configuration fails without the role and passes with it, and the key
// goes live.
func TestBrowserManagedIdentityJourney(t *testing.T) {
	f := newFixture(t, false)
	mi := f.offerManagedIdentity(t)
	p := &page{t: t, ctx: browser(t), f: f}
	p.signIn(f.tokens[contoso], "#state")

	p.open("/t/contoso/setup")
	p.do("choose the managed identity", chromedp.Click(chromedp.CSS("#cred-mi")), chromedp.WaitVisible(chromedp.CSS("#mi-role-command")))
	if got := p.text("#mi-object-id"); got != mi.ObjectID {
		t.Fatalf("the setup steps name the principal %q, want %s", got, mi.ObjectID)
	}
	if vis, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`!document.getElementById("client_id").closest(".panel").hidden`)); err != nil || vis {
		t.Errorf("the client id field is shown with the managed identity (%v)", err)
	}
	p.do("fill in the key settings", chromedp.SendKeys(chromedp.CSS("#key_id"), keyID))
	p.scroll("#credential")
	p.shot("managed-identity-credential")
	p.click("#save", "#flash")
	if got := p.text("#flash"); !strings.Contains(got, "Settings saved") {
		t.Fatalf("saving with the managed identity: %q", got)
	}

	p.click("#test", "#test-result")
	if got := p.text("#test-result"); got != "failed" {
		t.Fatalf("test without a role: %q", got)
	}
	mustContain(t, "report without a role", p.text("#checks"), "identity-directory", "token-audience", mi.ObjectID, "Key Vault Crypto Service Encryption User")

	if _, err := f.emu.AssignRole(vaultName, kvemu.RoleAssignment{PrincipalID: mi.ObjectID, Role: "Key Vault Crypto Service Encryption User"}); err != nil {
		t.Fatal(err)
	}
	p.open("/t/contoso/setup")
	p.click("#test", "#test-result")
	if got := p.text("#test-result"); got != "passed" {
		t.Fatalf("test with the role: %q\n%s", got, p.text("#checks"))
	}
	p.click("#back-to-setup", "#enforce_at")
	p.do("set the enforcement date", chromedp.SetValue(chromedp.CSS("#enforce_at"), f.clock.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")))
	p.click("#proceed-button", "#confirm")
	p.click("#confirm", "#state")
	f.clock.Advance(2 * time.Hour)
	f.tick()
	p.open("/t/contoso/")
	if got := p.text("#state"); got != "active" {
		t.Fatalf("state after the enforcement date: %q, want active", got)
	}
	ct, err := f.lc.Keyring().Encrypt(f.ctx, contoso, "chat", []byte("reached by the platform's managed identity"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.lc.Keyring().Forget(contoso)
	if pt, err := f.lc.Keyring().Decrypt(f.ctx, contoso, "chat", ct, nil); err != nil || string(pt) != "reached by the platform's managed identity" {
		t.Fatalf("decrypt under the managed identity: %q, %v", pt, err)
	}
}

// opts returns the Azure options of s.
func opts(s lifecycle.KeySettings) azure.Options {
	o, _ := azure.OptionsOf(s)
	return o
}
