package console_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	kmsapi "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/openbyok/byok/gcpkmsemu"
	"github.com/openbyok/byok/kms/gcpkms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/gcp"
)

// Contoso's Google Cloud side: its key ring and key in the emulator.
const (
	gcpRing = "projects/contoso-prod/locations/europe-west1/keyRings/byok"
	gcpKey  = gcpRing + "/cryptoKeys/contoso-cmk"
)

// gcpFixture is the console's fixture with the Cloud KMS connector beside
// Azure's, over gcpkmsemu through the official client.
type gcpFixture struct {
	*fixture
	emu      *gcpkmsemu.Emulator
	platform string // the platform's service account
}

// newGCPFixture starts gcpkmsemu with the platform's service account (its
// key file the connector's credentials, as byok serve's gcp: block has
// it) and Contoso's key, created by Contoso's administrator, and the
// console over a lifecycle that offers Azure and GCP.
func newGCPFixture(t *testing.T) *gcpFixture {
	t.Helper()
	ctx := t.Context()
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	platform, err := emu.CreateServiceAccount("byok-platform", "byok-platform")
	if err != nil {
		t.Fatal(err)
	}
	keyFile, err := emu.CreateServiceAccountKey(platform)
	if err != nil {
		t.Fatal(err)
	}
	adminEmail, err := emu.CreateServiceAccount("contoso-prod", "kms-admin")
	if err != nil {
		t.Fatal(err)
	}
	adminKey, err := emu.CreateServiceAccountKey(adminEmail)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.AddBinding("contoso-prod", "roles/cloudkms.admin", "serviceAccount:"+adminEmail); err != nil {
		t.Fatal(err)
	}
	admin, err := kmsapi.NewKeyManagementClient(ctx, emu.ClientOptions(adminKey)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{Parent: "projects/contoso-prod/locations/europe-west1", KeyRingId: "byok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: gcpRing, CryptoKeyId: "contoso-cmk",
		CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}}); err != nil {
		t.Fatal(err)
	}
	conn, err := gcp.New(gcp.Config{CredentialsJSON: keyFile, Endpoint: emu.Addr(), RootCAs: emu.CAPool()})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureConnectors(t, false, nil, func(*fixture) []lifecycle.Connector { return []lifecycle.Connector{conn} })
	return &gcpFixture{fixture: f, emu: emu, platform: platform}
}

// grant runs, in the emulator, the gcloud lines the console shows: each
// binds its role on the key to its member.
func (f *gcpFixture) grant(lines ...string) {
	f.t.Helper()
	for _, line := range lines {
		m := regexp.MustCompile(`^gcloud kms keys add-iam-policy-binding (\S+) --keyring (\S+) --location (\S+) --project (\S+) --member (\S+) --role (\S+)$`).FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			f.t.Fatalf("not a gcloud add-iam-policy-binding line: %q", line)
		}
		key := "projects/" + m[4] + "/locations/" + m[3] + "/keyRings/" + m[2] + "/cryptoKeys/" + m[1]
		if err := f.emu.AddBinding(key, m[6], m[5]); err != nil {
			f.t.Fatal(err)
		}
	}
}

// gcpFlash posts form to configure and returns the flash message of the
// page it leads to, which must be the GCP form.
func (u *user) gcpFlash(form url.Values) string {
	u.f.t.Helper()
	res, _ := u.post("/t/contoso/configure", form)
	if res.StatusCode != http.StatusSeeOther {
		u.f.t.Fatalf("configure: %d, want 303", res.StatusCode)
	}
	loc := strings.TrimPrefix(res.Header.Get("Location"), "/console")
	if !strings.Contains(loc, "provider=gcp-kms") {
		u.f.t.Errorf("configure of the GCP form leads to %s, not back to the GCP form", loc)
	}
	_, body := u.get(loc)
	m := regexp.MustCompile(`id="flash">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		u.f.t.Fatalf("no flash after configure")
	}
	return html.UnescapeString(m[1])
}

// preText is the unescaped text of the <pre> of id in body.
func preText(t *testing.T, body, id string) string {
	t.Helper()
	m := preOf(id).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no <pre id=%q> in the page:\n%s", id, body)
	}
	return html.UnescapeString(m[1])
}

// TestGCPForm checks the Create key form of a Google Cloud tenant without
// a browser: the provider choice, the platform's service account, the
// gcloud lines (placeholders, then the saved key's), the form's
// validation (each refusal names its field and saves nothing), CSRF,
// Test configuration failing with the gcloud line and passing once the
// lines shown are run, and the status page's words.
func TestGCPForm(t *testing.T) {
	f := newGCPFixture(t)
	u := f.newUser()
	u.signIn(f.tokens[contoso])

	_, body := u.get("/t/contoso/setup")
	mustContain(t, "setup page with two providers", body, `id="provider-form"`, `id="provider-azure-key-vault" name="provider" value="azure-key-vault" checked`,
		`id="provider-gcp-kms"`, "Google Cloud KMS", `id="directory_id"`)
	if strings.Contains(body, `id="provider-aws-kms"`) {
		t.Error("a platform without the AWS connector offers AWS KMS")
	}
	_, page := u.get("/t/contoso/setup?provider=gcp-kms")
	mustContain(t, "GCP form", page, `id="provider-gcp-kms" name="provider" value="gcp-kms" checked`, `name="provider" value="gcp-kms">`,
		`id="gcp-key-name" name="key_id"`, `placeholder="projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>"`,
		`id="gcp-service-account">`+f.platform, `data-copy="gcp-grant-encrypter"`, `data-copy="gcp-grant-viewer"`, "replacing PROJECT, LOCATION, RING and KEY")
	if strings.Contains(page, `id="directory_id"`) || strings.Contains(page, `id="aws-key-arn"`) {
		t.Error("the GCP form shows another provider's fields")
	}
	placeholder := gcpkms.KeyName{Project: "PROJECT", Location: "LOCATION", KeyRing: "RING", CryptoKey: "KEY"}
	if got, want := preText(t, page, "gcp-grant-encrypter"), gcpkms.GrantCommand(placeholder, f.platform, gcpkms.RoleEncrypterDecrypter); got != want {
		t.Errorf("first gcloud line before a key is saved:\n%s\nwant\n%s", got, want)
	}
	if got, want := preText(t, page, "gcp-grant-viewer"), gcpkms.GrantCommand(placeholder, f.platform, gcpkms.RoleViewer); got != want {
		t.Errorf("second gcloud line before a key is saved:\n%s\nwant\n%s", got, want)
	}

	csrf := u.csrf("/t/contoso/setup?provider=gcp-kms")
	form := func(key string) url.Values {
		return url.Values{"csrf": {csrf}, "provider": {gcp.Provider}, "key_id": {key}}
	}
	refusals := []struct {
		name, key, want string
	}{
		{"no key name", " ", "key_id: is empty"},
		{"a key ring", gcpRing, "key_id:"},
		{"a console URL", "https://console.cloud.google.com/security/kms/key/manage/europe-west1/byok/contoso-cmk?project=contoso-prod", "key_id:"},
		{"an AWS ARN", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "key_id:"},
	}
	for _, r := range refusals {
		if got := u.gcpFlash(form(r.key)); !strings.Contains(got, r.want) {
			t.Errorf("%s: flash %q, want %q", r.name, got, r.want)
		}
		if k, _ := f.lc.Status(f.ctx, contoso); k.State != lifecycle.StateNone {
			t.Fatalf("%s: state %s, want none (nothing saved)", r.name, k.State)
		}
	}
	noCSRF := form(gcpKey)
	noCSRF.Del("csrf")
	if res, _ := u.post("/t/contoso/configure", noCSRF); res.StatusCode != http.StatusForbidden {
		t.Errorf("configure without CSRF: %d, want 403", res.StatusCode)
	}
	if k, _ := f.lc.Status(f.ctx, contoso); k.State != lifecycle.StateNone {
		t.Fatalf("configure without CSRF saved settings: state %s", k.State)
	}

	// The key name (with spaces around it, as pasted) is saved, and the
	// form comes back with it and the gcloud lines naming the key, in a
	// new session too.
	if got := u.gcpFlash(form("  " + gcpKey + "\n")); !strings.Contains(got, "Settings saved") {
		t.Fatalf("saving the GCP settings: %q", got)
	}
	k, err := f.lc.Status(f.ctx, contoso)
	if err != nil {
		t.Fatal(err)
	}
	if k.State != lifecycle.StateDraft || k.Settings.Provider != gcp.Provider || k.Settings.KeyID != gcpKey {
		t.Fatalf("saved: %s %+v", k.State, k.Settings)
	}
	other := f.newUser()
	other.signIn(f.tokens[contoso])
	_, body = other.get("/t/contoso/setup")
	mustContain(t, "setup page of saved GCP settings, another session", body, `id="provider-gcp-kms" name="provider" value="gcp-kms" checked`, `value="`+gcpKey+`"`)
	if strings.Contains(body, "replacing PROJECT") {
		t.Error("the form asks to replace placeholders once the key name is saved")
	}
	name, _ := gcpkms.ParseKeyName(gcpKey)
	encrypter, viewer := preText(t, body, "gcp-grant-encrypter"), preText(t, body, "gcp-grant-viewer")
	if want := gcpkms.GrantCommand(name, f.platform, gcpkms.RoleEncrypterDecrypter); encrypter != want {
		t.Errorf("first gcloud line of the saved key:\n%s\nwant\n%s", encrypter, want)
	}
	if want := gcpkms.GrantCommand(name, f.platform, gcpkms.RoleViewer); viewer != want {
		t.Errorf("second gcloud line of the saved key:\n%s\nwant\n%s", viewer, want)
	}
	mustContain(t, "gcloud lines", encrypter+"\n"+viewer, "--keyring byok --location europe-west1 --project contoso-prod", "--member serviceAccount:"+f.platform,
		"--role roles/cloudkms.cryptoKeyEncrypterDecrypter", "--role roles/cloudkms.viewer")

	// Test configuration fails before the grant, naming the gcloud line;
	// once the customer runs the two lines shown, it passes.
	res, body := other.post("/t/contoso/test", url.Values{"csrf": {other.csrf("/t/contoso/setup")}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="test-result">failed`) {
		t.Fatalf("Test configuration before the grant: %d\n%s", res.StatusCode, body)
	}
	mustContain(t, "failing report", html.UnescapeString(body), encrypter)
	f.grant(encrypter, viewer)
	res, body = other.post("/t/contoso/test", url.Values{"csrf": {other.csrf("/t/contoso/setup")}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="test-result">passed`) {
		t.Fatalf("Test configuration after the grant: %d\n%s", res.StatusCode, body)
	}
	_, body = other.get("/t/contoso/")
	mustContain(t, "status page", body, `id="provider">Google Cloud KMS`, "<dt>Key name</dt>", `id="key-id">`+gcpKey)
	if strings.Contains(body, "Current version") || strings.Contains(body, `id="aws-access"`) {
		t.Error("the status page of a GCP key shows another provider's facts")
	}
}

// TestGCPNotOfferedWithoutConnector: deployments without the GCP
// connector (Azure only, Azure and AWS) offer no GCP choice, the GCP form
// is not reachable by a query, and its settings are refused.
func TestGCPNotOfferedWithoutConnector(t *testing.T) {
	check := func(t *testing.T, f *fixture, form string) {
		u := f.newUser()
		u.signIn(f.tokens[contoso])
		for _, path := range []string{"/t/contoso/setup", "/t/contoso/setup?provider=gcp-kms"} {
			_, body := u.get(path)
			mustContain(t, path, body, `id="directory_id"`, form)
			if strings.Contains(body, `gcp-kms`) || strings.Contains(body, `id="gcp-key-name"`) || strings.Contains(body, "Google Cloud") {
				t.Errorf("%s offers GCP on a platform without its connector", path)
			}
		}
		csrf := u.csrf("/t/contoso/setup")
		u.post("/t/contoso/configure", url.Values{"csrf": {csrf}, "provider": {gcp.Provider}, "key_id": {gcpKey}})
		if k, _ := f.lc.Status(f.ctx, contoso); k.State != lifecycle.StateNone {
			t.Errorf("GCP settings saved on a platform without its connector: %s %+v", k.State, k.Settings)
		}
	}
	t.Run("Azure", func(t *testing.T) { check(t, newFixture(t, false), `<select id="provider" name="provider">`) })
	t.Run("AzureAWS", func(t *testing.T) { check(t, newAWSFixture(t).fixture, `id="provider-aws-kms"`) })
}
