package awskms

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
)

// harness runs the conformance suite with alias ARNs as the versionless
// ids and key ARNs as the versions: NewVersion creates a key and points the
// alias at it, as a customer rotates to another key.
func harness(t *testing.T, e *env, p kms.Provider, principal string) kmstest.Harness {
	other, err := e.emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, Policy: keyPolicy(principal), Aliases: []string{"alias/byok-other"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = other
	return kmstest.Harness{
		Provider:         p,
		KeyID:            aliasARN,
		OtherKeyID:       "arn:aws:kms:" + region + ":" + customer + ":alias/byok-other",
		UnknownKeyID:     "arn:aws:kms:" + region + ":" + customer + ":alias/no-such-alias",
		UnknownVersionID: "arn:aws:kms:" + region + ":" + customer + ":key/00000000-0000-4000-8000-000000000000",
		NewVersion: func(t testing.TB) string {
			k, err := e.emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, Policy: keyPolicy(principal)})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.emu.PutAlias(aliasARN, k.ARN); err != nil {
				t.Fatal(err)
			}
			return k.ARN
		},
	}
}

func TestConformance(t *testing.T) {
	e := newEnv(t)
	kmstest.RunConformance(t, harness(t, e, e.provider(t, e.config()), platform))
}

func TestConformanceAssumedRole(t *testing.T) {
	e := newEnv(t)
	cfg := e.roleConfig(t)
	kmstest.RunConformance(t, harness(t, e, e.provider(t, cfg), roleARN))
	for _, c := range e.emu.Calls() {
		if c.Op == "Encrypt" && c.Principal != "arn:aws:sts::"+customer+":assumed-role/byok-access/byok-"+tenant {
			t.Fatalf("Encrypt was made as %q, not as the role's session", c.Principal)
		}
	}
	// The SDK cached the session: one AssumeRole for the whole suite.
	if n := e.emu.CallCounts()["AssumeRole"]; n != 1 {
		t.Errorf("AssumeRole called %d times, want 1 (cached)", n)
	}
}

// TestEncryptionContext checks what the customer sees in CloudTrail and
// that a share of another tenant, kind or epoch does not unwrap.
func TestEncryptionContext(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config())
	b := Binding{Kind: "customer-managed", Epoch: 3}
	ctx := kms.WithBinding(context.Background(), b)
	w, err := p.Wrap(ctx, aliasARN, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if w.KeyID != e.cmk.ARN || w.Algorithm != "SYMMETRIC_DEFAULT;kind=customer-managed;epoch=3" {
		t.Errorf("Wrap recorded %s %s", w.KeyID, w.Algorithm)
	}
	calls := e.emu.Calls()
	want := map[string]string{"byok:tenant": tenant, "byok:kind": "customer-managed", "byok:epoch": "3"}
	if got := calls[len(calls)-1].EncryptionContext; len(got) != 3 || got["byok:tenant"] != tenant || got["byok:kind"] != "customer-managed" || got["byok:epoch"] != "3" {
		t.Errorf("the Encrypt call carried context %v, want %v", got, want)
	}
	// The customer can decrypt the share in their own account with the
	// documented context: the ciphertext is KMS's blob unchanged.
	admin, _ := e.emu.AddUser("arn:aws:iam::"+customer+":user/admin", awsemu.AccessKey{})
	kc := awskms.New(awskms.Options{Region: region, HTTPClient: e.emu.HTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider(admin.ID, admin.Secret, "")})
	ec, _ := EncryptionContext(tenant, w.Algorithm)
	if out, err := kc.Decrypt(context.Background(), &awskms.DecryptInput{CiphertextBlob: w.Ciphertext, EncryptionContext: ec}); err != nil || string(out.Plaintext) != "0123456789abcdef0123456789abcdef" {
		t.Errorf("the customer's own Decrypt of the share: %v", err)
	}
	// Reproducible from the wrapped value and the configuration alone.
	if _, err := p.Unwrap(context.Background(), w); err != nil {
		t.Errorf("Unwrap without the binding in ctx: %v", err)
	}
	// Another tenant's provider: the key policy refuses its context; a key
	// policy without the condition lets KMS refuse the ciphertext.
	cfg := e.config()
	cfg.Tenant = "tenant-43"
	other := e.provider(t, cfg)
	if _, err = other.Unwrap(context.Background(), w); kms.ReasonOf(err) != kms.ReasonDenied {
		t.Errorf("Unwrap by another tenant under the tenant-bound policy: %v, want access-denied", err)
	}
	if err := e.emu.PutKeyPolicy(e.cmk.ARN, openPolicy(platform)); err != nil {
		t.Fatal(err)
	}
	_, err = other.Unwrap(context.Background(), w)
	if kms.ClassOf(err) != kms.Invalid || kms.ReasonOf(err) != kms.ReasonUnwrapFailed {
		t.Errorf("Unwrap by another tenant: %v, want invalid/unwrap-failed", err)
	}
	for _, other := range []Binding{{Kind: "customer-managed", Epoch: 4}, {Kind: "platform-managed", Epoch: 3}} {
		_, err := p.Unwrap(kms.WithBinding(context.Background(), other), w)
		if kms.ClassOf(err) != kms.Invalid {
			t.Errorf("Unwrap expecting %+v: %v", other, err)
		}
	}
	forged := w
	forged.Algorithm = "SYMMETRIC_DEFAULT;kind=customer-managed;epoch=4"
	if _, err := p.Unwrap(context.Background(), forged); kms.ReasonOf(err) != kms.ReasonUnwrapFailed {
		t.Errorf("Unwrap of a value whose recorded epoch was changed: %v", err)
	}
}

// TestRequestIDs checks that every call's AWS request id reaches the
// caller, and that the operation id reaches CloudTrail's user agent.
func TestRequestIDs(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config())
	ctx, log := WithRequestLog(kms.WithOperationID(context.Background(), "evt-0001"))
	w, err := p.Wrap(ctx, e.cmk.ARN, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	e.emu.DisableKey(e.cmk.ARN)
	_, err = p.Unwrap(ctx, w)
	if RequestIDOf(err) == "" {
		t.Errorf("the error %v carries no request id", err)
	}
	calls := e.emu.Calls()
	reqs := log.Requests()
	if len(reqs) != 2 || len(calls) != 2 {
		t.Fatalf("%d requests logged, %d calls answered", len(reqs), len(calls))
	}
	for i, r := range reqs {
		if r.RequestID != calls[i].RequestID || r.RequestID == "" {
			t.Errorf("request %d: logged id %q, the emulator answered %q", i, r.RequestID, calls[i].RequestID)
		}
		if !strings.Contains(calls[i].UserAgent, "byok-op/evt-0001") {
			t.Errorf("user agent %q lacks the operation id", calls[i].UserAgent)
		}
	}
	if reqs[1].Err == nil || !strings.Contains(reqs[1].Err.Error(), calls[1].RequestID) {
		t.Errorf("the failed call's error %v does not name request id %s", reqs[1].Err, calls[1].RequestID)
	}
}

// TestKMSRotation checks that KMS's own rotation changes nothing byok
// records: the key ARN stays, and values wrapped before still unwrap.
func TestKMSRotation(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config())
	ctx := context.Background()
	w1, err := p.Wrap(ctx, aliasARN, []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.emu.RotateKey(e.cmk.ARN); err != nil {
		t.Fatal(err)
	}
	w2, err := p.Wrap(ctx, aliasARN, []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if w1.KeyID != w2.KeyID {
		t.Errorf("the key ARN changed with KMS's rotation: %s, %s", w1.KeyID, w2.KeyID)
	}
	for _, w := range []kms.Wrapped{w1, w2} {
		if _, err := p.Unwrap(ctx, w); err != nil {
			t.Errorf("Unwrap after rotation: %v", err)
		}
	}
	info, err := p.Describe(ctx, aliasARN)
	if err != nil || info.KeyID != e.cmk.ARN || info.Type != "SYMMETRIC_DEFAULT" || info.Size != 256 || !info.Enabled {
		t.Errorf("Describe: %+v, %v", info, err)
	}
}

// TestMultiRegionKeyAndEndpoint uses a multi-region key in another region,
// through an endpoint override instead of the SDK's endpoints.
func TestMultiRegionKeyAndEndpoint(t *testing.T) {
	e := newEnv(t)
	k, err := e.emu.CreateKey(awsemu.KeySpec{Account: customer, Region: "ap-southeast-2", MultiRegion: true, Policy: keyPolicy(platform)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.KeyARN = k.ARN
	cfg.Endpoint, cfg.STSEndpoint = e.emu.Endpoint(), e.emu.Endpoint()
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.emu.CAPool()}}}
	p := e.provider(t, cfg)
	w, err := p.Wrap(context.Background(), k.ARN, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Unwrap(context.Background(), w)
	if err != nil || !bytes.Equal(got, []byte("share")) || w.KeyID != k.ARN || !strings.Contains(k.ARN, ":key/mrk-") {
		t.Errorf("round trip under %s: %s, %v", k.ARN, w.KeyID, err)
	}
	r := TestConfiguration(context.Background(), cfg)
	if !r.OK() {
		t.Errorf("Test configuration of a multi-region key through an endpoint:\n%s", dump(r))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no tenant", Config{}, "Config.Tenant is empty"},
		{"external id without role", Config{Tenant: "t", ExternalID: "x1"}, "without a RoleARN"},
		{"role without external id", Config{Tenant: "t", RoleARN: roleARN}, "Config.ExternalID is empty"},
		{"user as role", Config{Tenant: "t", RoleARN: platform, ExternalID: "x1"}, "is not a role ARN"},
		{"http endpoint", Config{Tenant: "t", Endpoint: "http://localhost:1"}, "is not an https:// URL"},
		{"bare key id", Config{Tenant: "t", KeyARN: "1234abcd-12ab-34cd-56ef-1234567890ab"}, "bare key id"},
	} {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

// TestRevokeByTrustPolicy removes the platform from the role's trust
// policy: the session in use stays valid until it expires (as in AWS),
// then the next call fails as authoritative; restoring the trust restores
// access.
func TestRevokeByTrustPolicy(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.roleConfig(t))
	ctx := context.Background()
	w, err := p.Wrap(ctx, aliasARN, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.emu.PutRole(roleARN, TrustPolicy("arn:aws:iam::444455556666:root", externalID)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Unwrap(ctx, w); err != nil {
		t.Fatalf("Unwrap with the session issued before the change: %v", err)
	}
	e.emu.ExpireSessions()
	_, err = p.Unwrap(ctx, w)
	checkClass(t, err, kms.Transient, kms.ReasonUnavailable) // ExpiredTokenException: the cache is invalidated
	_, err = p.Unwrap(ctx, w)
	checkClass(t, err, kms.Authoritative, kms.ReasonUnauthenticated)
	if !strings.Contains(err.Error(), "STS AssumeRole answered 403 AccessDenied") {
		t.Errorf("error %v does not say STS refused", err)
	}
	e.emu.PutRole(roleARN, TrustPolicy(platform, externalID))
	if _, err := p.Unwrap(ctx, w); err != nil {
		t.Errorf("Unwrap after the trust is restored: %v", err)
	}
}

func TestNewExternalID(t *testing.T) {
	a, b := NewExternalID(), NewExternalID()
	if a == b || len(a) != 31 || !strings.HasPrefix(a, "byok-") {
		t.Errorf("NewExternalID() = %q, %q", a, b)
	}
	cfg := Config{Tenant: "t", RoleARN: roleARN, ExternalID: a}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a new external id does not validate: %v", err)
	}
}

func TestProgressSeesEveryCheck(t *testing.T) {
	e := newEnv(t)
	var seen []Check
	r := TestConfigurationProgress(context.Background(), e.config(), func(c Check) { seen = append(seen, c) })
	if len(seen) != len(r.Checks) || len(seen) == 0 {
		t.Fatalf("progress saw %d checks; the report has %d", len(seen), len(r.Checks))
	}
	for i := range seen {
		if seen[i] != r.Checks[i] {
			t.Errorf("check %d: progress saw %+v, the report has %+v", i, seen[i], r.Checks[i])
		}
	}
}
