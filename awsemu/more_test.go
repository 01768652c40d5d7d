package awsemu_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/openbyok/byok/awsemu"
)

const seedYAML = `
users:
  - arn: arn:aws:iam::999988887777:user/byok-platform
    accessKeys:
      - id: AKIAEXAMPLEPLATFORM1
        secret: platform-secret
roles:
  - arn: arn:aws:iam::111122223333:role/byok-access
    trustPolicy: |
      {"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::999988887777:user/byok-platform"},
        "Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"byok-ext-1"}}}]}
keys:
  - account: "111122223333"
    region: eu-west-1
    id: 11111111-2222-4333-8444-555555555555
    aliases: [alias/byok]
    rotation: true
  - account: "111122223333"
    region: us-east-1
    id: mrk-0123456789abcdef0123456789abcdef
`

func TestSeed(t *testing.T) {
	seed, err := awsemu.LoadSeed(strings.NewReader(seedYAML))
	if err != nil {
		t.Fatal(err)
	}
	emu, err := awsemu.Start(awsemu.Options{Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	creds := credentials.NewStaticCredentialsProvider("AKIAEXAMPLEPLATFORM1", "platform-secret", "")
	ctx := context.Background()

	// The seeded user is not in the key's account: the default policy
	// (the account root's kms:*) keeps it out.
	c := kms.New(kms.Options{Region: "eu-west-1", HTTPClient: emu.HTTPClient(), Credentials: creds, RetryMaxAttempts: 1})
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("arn:aws:kms:eu-west-1:111122223333:alias/byok")})
	if apiCode(err) != "AccessDeniedException" {
		t.Errorf("DescribeKey by another account under the default policy: %v", err)
	}
	// Its role session is in the account: the root statement lets it in.
	sc := sts.New(sts.Options{Region: "eu-west-1", HTTPClient: emu.HTTPClient(), Credentials: creds})
	ar, err := sc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111122223333:role/byok-access"),
		RoleSessionName: aws.String("seed"), ExternalId: aws.String("byok-ext-1")})
	if err != nil {
		t.Fatal(err)
	}
	rc := credentials.NewStaticCredentialsProvider(*ar.Credentials.AccessKeyId, *ar.Credentials.SecretAccessKey, *ar.Credentials.SessionToken)
	c = kms.New(kms.Options{Region: "eu-west-1", HTTPClient: emu.HTTPClient(), Credentials: rc, RetryMaxAttempts: 1})
	d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/byok")})
	if err != nil || *d.KeyMetadata.Arn != "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-4333-8444-555555555555" || d.KeyMetadata.MultiRegion == nil || *d.KeyMetadata.MultiRegion {
		t.Errorf("DescribeKey(alias/byok) by the role: %+v, %v", d, err)
	}
	rot, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: d.KeyMetadata.Arn})
	if err != nil || !rot.KeyRotationEnabled {
		t.Errorf("GetKeyRotationStatus: %+v, %v", rot, err)
	}
	// A bare key id resolves in the caller's account and the request's
	// region; an ARN of another region does not.
	ue := kms.New(kms.Options{Region: "us-east-1", HTTPClient: emu.HTTPClient(), Credentials: rc, RetryMaxAttempts: 1})
	m, err := ue.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("mrk-0123456789abcdef0123456789abcdef")})
	if err != nil || !*m.KeyMetadata.MultiRegion || m.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType != types.MultiRegionKeyTypePrimary {
		t.Errorf("DescribeKey of the multi-region key: %+v, %v", m, err)
	}
	_, err = ue.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: d.KeyMetadata.Arn})
	if apiCode(err) != "NotFoundException" || apiMessage(err) != "Invalid arn eu-west-1" {
		t.Errorf("DescribeKey of an eu-west-1 ARN in us-east-1: %v", err)
	}

	if _, err := awsemu.LoadSeed(strings.NewReader("users: []\nkeyz: []\n")); err == nil || !strings.Contains(err.Error(), "keyz") {
		t.Errorf("LoadSeed with an unknown field: %v", err)
	}
}

func TestSTSErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tt := range []struct {
		id, secret, code string
	}{
		{e.key.ID, "wrong", "SignatureDoesNotMatch"},
		{"AKIAUNKNOWNUNKNOWN00", "x", "InvalidClientTokenId"},
	} {
		sc := sts.New(sts.Options{Region: region, HTTPClient: e.emu.HTTPClient(), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(tt.id, tt.secret, "")})
		_, err := sc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		var re interface{ HTTPStatusCode() int }
		if apiCode(err) != tt.code || !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
			t.Errorf("GetCallerIdentity with %s: %v, want 403 %s", tt.code, err, tt.code)
		}
	}
	sc := sts.New(sts.Options{Region: region, HTTPClient: e.emu.HTTPClient(), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e.key.ID, e.key.Secret, "")})
	id, err := sc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || *id.Arn != userARN || *id.Account != platform {
		t.Errorf("GetCallerIdentity: %+v, %v", id, err)
	}
	_, err = sc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("bad name!")})
	if apiCode(err) != "ValidationError" {
		t.Errorf("AssumeRole with a bad session name: %v", err)
	}
}

func TestClockSkew(t *testing.T) {
	now := time.Now()
	var skew time.Duration
	emu, err := awsemu.Start(awsemu.Options{Now: func() time.Time { return now.Add(skew) }})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	ak, _ := emu.AddUser(userARN, awsemu.AccessKey{})
	k, _ := emu.CreateKey(awsemu.KeySpec{Account: platform, Region: region})
	c := kms.New(kms.Options{Region: region, HTTPClient: emu.HTTPClient(), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(ak.ID, ak.Secret, "")})
	describe := func() error {
		_, err := c.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(k.ARN)})
		return err
	}
	if err := describe(); err != nil {
		t.Fatalf("DescribeKey in the key's own account: %v", err)
	}
	skew = 20 * time.Minute
	if err := describe(); apiCode(err) != "InvalidSignatureException" || !strings.HasPrefix(apiMessage(err), "Signature expired: ") {
		t.Errorf("a request signed 20 minutes ago: %v", err)
	}
}

func TestDecryptChecks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, _ := e.emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, Policy: policyFor(userARN)})
	enc, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.cmk.ARN), Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.kms.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(other.ARN), CiphertextBlob: enc.CiphertextBlob})
	var ik *types.IncorrectKeyException
	if !errors.As(err, &ik) {
		t.Errorf("Decrypt naming another key: %v", err)
	}
	_, err = e.kms.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(e.cmk.ARN), CiphertextBlob: enc.CiphertextBlob[:len(enc.CiphertextBlob)-20]})
	var ic *types.InvalidCiphertextException
	if !errors.As(err, &ic) {
		t.Errorf("Decrypt of a truncated ciphertext: %v", err)
	}
	_, err = e.kms.CreateKey(ctx, &kms.CreateKeyInput{})
	if apiCode(err) != "UnknownOperationException" {
		t.Errorf("CreateKey through the data plane: %v", err)
	}
	_, err = e.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(e.cmk.ARN), Policy: aws.String("{}")})
	if apiCode(err) != "AccessDeniedException" {
		t.Errorf("PutKeyPolicy by a principal the policy does not allow: %v", err)
	}
}

// TestDataDir restarts the emulator on the same key store: keys and
// aliases stay; IAM users do not (the seed or the test adds them again).
func TestDataDir(t *testing.T) {
	dir := t.TempDir()
	emu, err := awsemu.Start(awsemu.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	k, err := emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, Aliases: []string{"alias/kept"}})
	if err != nil {
		t.Fatal(err)
	}
	emu.Close()
	emu, err = awsemu.Start(awsemu.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	if p, err := emu.KeyPolicy(k.ARN); err != nil || !strings.Contains(p, customer+":root") {
		t.Errorf("after a restart, the key's policy: %q, %v", p, err)
	}
	if err := emu.PutAlias("arn:aws:kms:"+region+":"+customer+":alias/kept", k.ARN); err != nil {
		t.Errorf("PutAlias after a restart: %v", err)
	}
}

// TestLatency delays answers past the client's deadline.
func TestLatency(t *testing.T) {
	e := newEnv(t)
	e.emu.SetLatency(time.Minute)
	defer e.emu.ClearFaults()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(e.cmk.ARN)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DescribeKey with a minute of latency and a 100 ms deadline: %v", err)
	}
}
