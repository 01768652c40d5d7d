package console_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/aws"
)

// Contoso's AWS side: the platform's IAM user, Contoso's account, and its
// key in eu-west-1 (with an alias), whose policy at first names only
// Contoso's account.
const (
	awsPlatform = "arn:aws:iam::999988887777:user/byok-platform"
	awsAccount  = "111122223333"
	awsRegion   = "eu-west-1"
	awsRole     = "arn:aws:iam::" + awsAccount + ":role/byok-access"
)

// awsFixture is the console's fixture with the AWS KMS connector beside
// Azure's, over awsemu through the official SDK.
type awsFixture struct {
	*fixture
	emu *awsemu.Emulator
	key awsemu.Key
}

// newAWSFixture starts awsemu with the platform's user and Contoso's key,
// and the console over a lifecycle that offers Azure and AWS. The
// connector learns the platform's principal from STS, as byok serve does
// without aws.platform_principal.
func newAWSFixture(t *testing.T) *awsFixture {
	t.Helper()
	emu, err := awsemu.Start(awsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	ak, err := emu.AddUser(awsPlatform, awsemu.AccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := emu.CreateKey(awsemu.KeySpec{Account: awsAccount, Region: awsRegion, Aliases: []string{"alias/contoso-byok"}, Rotation: true})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := aws.New(aws.Config{Credentials: credentials.NewStaticCredentialsProvider(ak.ID, ak.Secret, ""),
		Region: awsRegion, HTTPClient: emu.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureConnectors(t, false, nil, func(*fixture) []lifecycle.Connector { return []lifecycle.Connector{conn} })
	return &awsFixture{fixture: f, emu: emu, key: key}
}

// grantPolicy sets the key's policy to AWS's default one with the
// statements pasted from the console (a JSON array) added, as the
// customer's administrator does in the KMS console.
func (f *awsFixture) grantPolicy(statements string) {
	f.t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(awsemu.DefaultKeyPolicy(awsAccount)), &doc); err != nil {
		f.t.Fatal(err)
	}
	var more []any
	if err := json.Unmarshal([]byte(statements), &more); err != nil {
		f.t.Fatalf("the statements to paste are not a JSON array: %v\n%s", err, statements)
	}
	doc["Statement"] = append(doc["Statement"].([]any), more...)
	b, _ := json.Marshal(doc)
	if err := f.emu.PutKeyPolicy(f.key.ARN, string(b)); err != nil {
		f.t.Fatal(err)
	}
}

var (
	externalIDField = regexp.MustCompile(`id="aws-external-id" name="external_id" value="([^"]+)"`)
	preOf           = func(id string) *regexp.Regexp {
		return regexp.MustCompile(`(?s)<pre class="mono" id="` + id + `">(.*?)</pre>`)
	}
)

// awsSetup returns the AWS form's page and the external id it shows.
func (u *user) awsSetup() (string, string) {
	u.f.t.Helper()
	code, body := u.get("/t/contoso/setup?provider=aws-kms")
	if code != http.StatusOK {
		u.f.t.Fatalf("AWS setup page: %d", code)
	}
	m := externalIDField.FindStringSubmatch(body)
	if m == nil {
		u.f.t.Fatalf("the AWS form shows no external id:\n%s", body)
	}
	return body, m[1]
}

// flashAfter posts form to configure and returns the flash message of the
// page it leads to.
func (u *user) configureFlash(form url.Values) string {
	u.f.t.Helper()
	res, _ := u.post("/t/contoso/configure", form)
	if res.StatusCode != http.StatusSeeOther {
		u.f.t.Fatalf("configure: %d, want 303", res.StatusCode)
	}
	loc := strings.TrimPrefix(res.Header.Get("Location"), "/console")
	if !strings.Contains(loc, "provider=aws-kms") {
		u.f.t.Errorf("configure of the AWS form leads to %s, not back to the AWS form", loc)
	}
	_, body := u.get(loc)
	m := regexp.MustCompile(`id="flash">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		u.f.t.Fatalf("no flash after configure")
	}
	return html.UnescapeString(m[1])
}

// TestAWSForm checks the Create key form of an AWS tenant without a
// browser: the provider choice, the external id generated once per setup
// and pre-filled from the saved settings, the form's validation (each
// refusal names its field and saves nothing), CSRF, the policies to paste,
// and the status page's words.
func TestAWSForm(t *testing.T) {
	f := newAWSFixture(t)
	u := f.newUser()
	u.signIn(f.tokens[contoso])

	_, body := u.get("/t/contoso/setup")
	mustContain(t, "setup page with two providers", body, `id="provider-form"`, `id="provider-azure-key-vault" name="provider" value="azure-key-vault" checked`,
		`id="provider-aws-kms"`, "AWS KMS", `id="directory_id"`)
	page, ext := u.awsSetup()
	mustContain(t, "AWS form", page, `id="aws-key-arn"`, `id="aws-principal">`+awsPlatform, `id="access-key-policy" name="access" value="key-policy" checked`,
		`name="external_id" value="`+ext+`" readonly`, `data-copy="aws-key-policy"`, `data-copy="aws-trust-policy"`)
	if strings.Contains(page, `id="directory_id"`) {
		t.Error("the AWS form shows Azure's directory field")
	}
	if !strings.HasPrefix(ext, "byok-") {
		t.Errorf("external id %q is not one of awskms.NewExternalID", ext)
	}
	if _, again := u.awsSetup(); again != ext {
		t.Errorf("external id changed between two loads of the same setup: %s, then %s", ext, again)
	}
	direct := html.UnescapeString(preOf("aws-key-policy").FindStringSubmatch(page)[1])
	mustContain(t, "key policy statement", direct, awsPlatform, `"kms:EncryptionContext:byok:tenant": "contoso"`, "kms:Encrypt", "kms:DescribeKey")
	trust := html.UnescapeString(preOf("aws-trust-policy").FindStringSubmatch(page)[1])
	mustContain(t, "trust policy", trust, awsPlatform, ext, "sts:AssumeRole")

	csrf := u.csrf("/t/contoso/setup?provider=aws-kms")
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}, "provider": {aws.Provider}, "key_id": {f.key.ARN}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	refusals := []struct {
		name string
		form url.Values
		want string
	}{
		{"no access mode", form(), "access: choose how byok reaches your key"},
		{"unknown access mode", form("access", "root-keys"), "access: choose"},
		{"assume role without a role", form("access", "assume-role", "external_id", ext), "role_arn: is empty"},
		{"an external id of the admin's choosing", form("access", "assume-role", "role_arn", awsRole, "external_id", "byok-mine"), "external_id: is not the external id byok generated"},
		{"no external id", form("access", "assume-role", "role_arn", awsRole), "external_id: is not the external id byok generated"},
		{"not a role ARN", form("access", "assume-role", "role_arn", "arn:aws:iam::"+awsAccount+":user/bob", "external_id", ext), "role_arn:"},
		{"not a key ARN", form("access", "key-policy", "key_id", "1234abcd-12ab-34cd-56ef-1234567890ab"), "key_id:"},
		{"no key ARN", form("access", "key-policy", "key_id", " "), "key_id: is empty"},
	}
	for _, r := range refusals {
		if got := u.configureFlash(r.form); !strings.Contains(got, r.want) {
			t.Errorf("%s: flash %q, want %q", r.name, got, r.want)
		}
		if k, _ := f.lc.Status(f.ctx, contoso); k.State != lifecycle.StateNone {
			t.Fatalf("%s: state %s, want none (nothing saved)", r.name, k.State)
		}
	}
	noCSRF := form("access", "key-policy")
	noCSRF.Del("csrf")
	if res, _ := u.post("/t/contoso/configure", noCSRF); res.StatusCode != http.StatusForbidden {
		t.Errorf("configure without CSRF: %d, want 403", res.StatusCode)
	}

	// AssumeRole with the generated external id is saved, and the form
	// comes back pre-filled from the saved settings, in a new session too.
	if got := u.configureFlash(form("access", "assume-role", "role_arn", awsRole, "external_id", ext)); !strings.Contains(got, "Settings saved") {
		t.Fatalf("saving AssumeRole settings: %q", got)
	}
	k, err := f.lc.Status(f.ctx, contoso)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := aws.OptionsOf(k.Settings); k.State != lifecycle.StateDraft || k.Settings.Provider != aws.Provider || k.Settings.KeyID != f.key.ARN || o != (aws.Options{RoleARN: awsRole, ExternalID: ext}) {
		t.Fatalf("saved: %s %+v %s", k.State, k.Settings, k.Settings.Options)
	}
	other := f.newUser()
	other.signIn(f.tokens[contoso])
	_, body = other.get("/t/contoso/setup")
	mustContain(t, "setup page of saved AWS settings, another session", body, `value="`+f.key.ARN+`"`, `id="access-assume-role" name="access" value="assume-role" checked`,
		`name="external_id" value="`+ext+`" readonly`, `value="`+awsRole+`"`)
	rolePolicy := html.UnescapeString(preOf("aws-role-key-policy").FindStringSubmatch(body)[1])
	mustContain(t, "key policy statement naming the role", rolePolicy, awsRole, "contoso")
	if strings.Contains(rolePolicy, awsPlatform) {
		t.Error("with AssumeRole the key policy statement names the platform instead of the role")
	}
	// The customer creates the role with the trust policy shown and adds
	// the statements naming the role to the key's policy: Test
	// configuration passes through AssumeRole with the external id.
	trust = html.UnescapeString(preOf("aws-trust-policy").FindStringSubmatch(body)[1])
	if err := f.emu.PutRole(awsRole, trust); err != nil {
		t.Fatal(err)
	}
	f.grantPolicy(rolePolicy)
	res, body := other.post("/t/contoso/test", url.Values{"csrf": {other.csrf("/t/contoso/setup")}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="test-result">passed`) {
		t.Fatalf("Test configuration through AssumeRole: %d\n%s", res.StatusCode, body)
	}
	mustContain(t, "AssumeRole report", body, `<tr class="check-pass"><th scope="row">assume-role</th>`)
	_, body = other.get("/t/contoso/")
	mustContain(t, "status page", body, `id="provider">AWS KMS`, `id="key-id">`+f.key.ARN, "by assuming your role "+awsRole+" with the external id "+ext)

	_, body = other.get("/t/contoso/rotate")
	mustContain(t, "rotate confirmation of an AWS key", body, "Another key ARN", `placeholder="arn:aws:kms:`)

	// Another tenant gets its own external id.
	fab := f.newUser()
	fab.signIn(f.tokens[fabrikam])
	_, body = fab.get("/t/fabrikam/setup?provider=aws-kms")
	if m := externalIDField.FindStringSubmatch(body); m == nil || m[1] == ext {
		t.Errorf("fabrikam's external id: %v, want one of its own", m)
	}
}

// TestAzureOnlyOffersNoChoice: a deployment with the Azure connector only
// shows no provider choice, and the AWS form is not reachable by a query.
func TestAzureOnlyOffersNoChoice(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	for _, path := range []string{"/t/contoso/setup", "/t/contoso/setup?provider=aws-kms"} {
		_, body := u.get(path)
		mustContain(t, path, body, `<select id="provider" name="provider">`, `id="directory_id"`)
		if strings.Contains(body, `id="provider-form"`) || strings.Contains(body, `id="aws-key-arn"`) {
			t.Errorf("%s offers a choice of provider or the AWS form on an Azure-only platform", path)
		}
	}
	csrf := u.csrf("/t/contoso/setup")
	u.post("/t/contoso/configure", url.Values{"csrf": {csrf}, "provider": {aws.Provider}, "key_id": {"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}, "access": {"key-policy"}})
	_, body := u.get("/t/contoso/setup?provider=aws-kms")
	mustContain(t, "AWS settings on an Azure-only platform", body, "provider: is &#34;aws-kms&#34;; this platform offers &#34;azure-key-vault&#34;")
}
