package aws

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/kms/awskms"
	"github.com/openbyok/byok/lifecycle"
)

const platformUser = "arn:aws:iam::999988887777:user/byok-platform"

// emuConnector starts awsemu with the platform's user and returns a
// connector that reaches it, without a configured principal.
func emuConnector(t *testing.T) (*awsemu.Emulator, *Connector) {
	t.Helper()
	emu, err := awsemu.Start(awsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	ak, err := emu.AddUser(platformUser, awsemu.AccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Credentials: credentials.NewStaticCredentialsProvider(ak.ID, ak.Secret, ""), HTTPClient: emu.HTTPClient(), Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	return emu, c
}

func TestConnectorAgainstEmulator(t *testing.T) {
	emu, c := emuConnector(t)
	ctx := context.Background()
	if p := c.Platform(ctx); p.Principal != platformUser || p.NotOffered != "" {
		t.Fatalf("Platform = %+v, want the caller STS names, %s", p, platformUser)
	}
	s := Settings("arn:aws:kms:eu-west-1:111122223333:alias/byok", Options{})
	s.Tenant = "acme"
	kp, _ := SetupPolicies(c.Platform(ctx), s, s.Tenant)
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},` +
		strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(kp), "["), "]") + `]}`
	key, err := emu.CreateKey(awsemu.KeySpec{Account: "111122223333", Region: "eu-west-1", Aliases: []string{"alias/byok"}, Rotation: true, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	var seen []lifecycle.Check
	r, err := c.TestProgress(ctx, s, func(ch lifecycle.Check) { seen = append(seen, ch) })
	if err != nil {
		t.Fatal(err)
	}
	if !r.Passed() {
		t.Fatalf("Test with the statements SetupPolicies printed: %+v", r.Checks)
	}
	if r.KeyID != key.ARN {
		t.Errorf("report KeyID = %q, want the key ARN behind the alias %q", r.KeyID, key.ARN)
	}
	if !slices.Equal(seen, r.Checks) {
		t.Errorf("progress saw %d checks, the report has %d", len(seen), len(r.Checks))
	}
	p, err := c.Provider(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.Wrap(ctx, s.KeyID, []byte("customer share"))
	if err != nil {
		t.Fatal(err)
	}
	if k, v := c.SplitKeyID(w.KeyID); w.KeyID != key.ARN || k != key.ARN || v != key.ARN {
		t.Fatalf("the share records %q (split %q, %q); want the key ARN as its version", w.KeyID, k, v)
	}
	if err := emu.RotateKey(key.ARN); err != nil {
		t.Fatal(err)
	}
	if pt, err := p.Unwrap(ctx, w); err != nil || string(pt) != "customer share" {
		t.Fatalf("Unwrap after KMS rotated the key material: %q, %v", pt, err)
	}

	// Settings that cannot become a configuration give one failing line.
	bad := Settings("arn:aws:kms:eu-west-1:111122223333:alias/byok", Options{ExternalID: "byok-x"})
	bad.Tenant = "acme"
	r, err = c.Test(ctx, bad)
	if err != nil || len(r.Checks) != 1 || r.Checks[0].Outcome != lifecycle.Fail || r.Checks[0].Name != awskms.CheckKeyARN && r.Checks[0].Name != awskms.CheckSettings {
		t.Fatalf("Test of invalid settings: %+v, %v", r, err)
	}
	if _, err := c.Provider(ctx, bad); err == nil {
		t.Fatal("Provider of invalid settings: no error")
	}
}

func TestPlatformWhenSTSFails(t *testing.T) {
	emu, _ := emuConnector(t)
	c, err := New(Config{Credentials: credentials.NewStaticCredentialsProvider("AKIAUNKNOWN000000000", "x", ""), HTTPClient: emu.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Platform(context.Background()); p.Principal != "" || p.NotOffered != "" {
		t.Fatalf("Platform with refused credentials = %+v, want an unknown principal, still offered", p)
	}
	if kp, tp := SetupPolicies(c.Platform(context.Background()), Settings("arn:aws:kms:eu-west-1:111122223333:alias/byok", Options{}), "acme"); kp != "" || tp != "" {
		t.Fatalf("policies without a principal: %q %q", kp, tp)
	}
}
