package awsemu_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/openbyok/byok/awsemu"
)

const (
	customer = "111122223333"
	platform = "999988887777"
	region   = "eu-west-1"
	userARN  = "arn:aws:iam::" + platform + ":user/byok-platform"
	roleARN  = "arn:aws:iam::" + customer + ":role/byok-access"
)

type env struct {
	emu  *awsemu.Emulator
	key  awsemu.AccessKey
	cmk  awsemu.Key
	kms  *kms.Client
	opts kms.Options
}

// policyFor grants principal Encrypt, Decrypt and DescribeKey, besides the
// account root's kms:*.
func policyFor(principal string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
	 {"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"kms:*","Resource":"*"},
	 {"Sid":"byok","Effect":"Allow","Principal":{"AWS":%q},"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"}]}`, customer, principal)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	emu, err := awsemu.Start(awsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	key, err := emu.AddUser(userARN, awsemu.AccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, Policy: policyFor(userARN), Aliases: []string{"alias/byok"}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{emu: emu, key: key, cmk: k}
	e.opts = kms.Options{Region: region, HTTPClient: emu.HTTPClient(), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(key.ID, key.Secret, "")}
	e.kms = kms.New(e.opts)
	return e
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

func TestRoundTripWithEncryptionContext(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ec := map[string]string{"byok:tenant": "t1"}
	for _, id := range []string{e.cmk.ARN, "arn:aws:kms:" + region + ":" + customer + ":alias/byok"} {
		out, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("share"), EncryptionContext: ec})
		if err != nil {
			t.Fatalf("Encrypt(%s): %v", id, err)
		}
		if *out.KeyId != e.cmk.ARN {
			t.Errorf("Encrypt answered KeyId %s, want %s", *out.KeyId, e.cmk.ARN)
		}
		dec, err := e.kms.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(e.cmk.ARN), CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
		if err != nil || string(dec.Plaintext) != "share" {
			t.Fatalf("Decrypt: %v", err)
		}
		_, err = e.kms.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(e.cmk.ARN), CiphertextBlob: out.CiphertextBlob, EncryptionContext: map[string]string{"byok:tenant": "t2"}})
		if apiCode(err) != "InvalidCiphertextException" {
			t.Errorf("Decrypt with another context: %v, want InvalidCiphertextException", err)
		}
	}
	calls := e.emu.Calls()
	if len(calls) == 0 || calls[0].EncryptionContext["byok:tenant"] != "t1" || calls[0].Principal != userARN || calls[0].RequestID == "" {
		t.Errorf("first call recorded as %+v", calls[0])
	}
}

func TestSignatureErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name, id, secret, code, msg string
	}{
		{"wrong secret", e.key.ID, "not-the-secret", "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."},
		{"unknown key", "AKIAUNKNOWNUNKNOWN00", e.key.Secret, "UnrecognizedClientException", "The security token included in the request is invalid."},
	} {
		o := e.opts
		o.Credentials = credentials.NewStaticCredentialsProvider(tt.id, tt.secret, "")
		_, err := kms.New(o).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(e.cmk.ARN)})
		if apiCode(err) != tt.code || apiMessage(err) != tt.msg {
			t.Errorf("%s: %v; want %s: %s", tt.name, err, tt.code, tt.msg)
		}
	}
}

func TestAccessDenied(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, _ := e.emu.AddUser("arn:aws:iam::"+platform+":user/other", awsemu.AccessKey{})
	o := e.opts
	o.Credentials = credentials.NewStaticCredentialsProvider(other.ID, other.Secret, "")
	_, err := kms.New(o).Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.cmk.ARN), Plaintext: []byte("x")})
	want := "User: arn:aws:iam::" + platform + ":user/other is not authorized to perform: kms:Encrypt on resource: " + e.cmk.ARN +
		" because no resource-based policy allows the kms:Encrypt action"
	if apiCode(err) != "AccessDeniedException" || apiMessage(err) != want {
		t.Errorf("Encrypt by a user the policy does not name: %v\nwant AccessDeniedException: %s", err, want)
	}
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 400 {
		t.Errorf("status of AccessDeniedException: %v", err)
	}

	// An explicit deny wins; the account root covers a same-account role.
	deny := strings.Replace(policyFor(userARN), `]}`, `,{"Effect":"Deny","Principal":{"AWS":"`+userARN+`"},"Action":"kms:Decrypt","Resource":"*"}]}`, 1)
	if err := e.emu.PutKeyPolicy(e.cmk.ARN, deny); err != nil {
		t.Fatal(err)
	}
	enc, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.cmk.ARN), Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if !strings.HasSuffix(apiMessage(err), "with an explicit deny in a resource-based policy") {
		t.Errorf("Decrypt under an explicit deny: %v", err)
	}
}

func TestEncryptionContextCondition(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":%q},"Action":"kms:DescribeKey","Resource":"*"},
	 {"Effect":"Allow","Principal":{"AWS":%q},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*",
	  "Condition":{"StringEquals":{"kms:EncryptionContext:byok:tenant":"t1"}}}]}`, userARN, userARN)
	if err := e.emu.PutKeyPolicy(e.cmk.ARN, p); err != nil {
		t.Fatal(err)
	}
	for tenant, ok := range map[string]bool{"t1": true, "t2": false} {
		_, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.cmk.ARN), Plaintext: []byte("x"), EncryptionContext: map[string]string{"byok:tenant": tenant}})
		if (err == nil) != ok {
			t.Errorf("Encrypt for tenant %s: %v", tenant, err)
		}
	}
}

func TestKeyStates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	enc, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.cmk.ARN), Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	e.emu.DisableKey(e.cmk.ARN)
	_, err = e.kms.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(e.cmk.ARN), CiphertextBlob: enc.CiphertextBlob})
	var de *types.DisabledException
	if !errors.As(err, &de) {
		t.Errorf("Decrypt under a disabled key: %v", err)
	}
	d, err := e.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(e.cmk.ARN)})
	if err != nil || d.KeyMetadata.Enabled || d.KeyMetadata.KeyState != types.KeyStateDisabled {
		t.Errorf("DescribeKey of a disabled key: %+v, %v", d, err)
	}
	e.emu.EnableKey(e.cmk.ARN)
	e.emu.ScheduleKeyDeletion(e.cmk.ARN, 7)
	_, err = e.kms.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(e.cmk.ARN), CiphertextBlob: enc.CiphertextBlob})
	var ise *types.KMSInvalidStateException
	if !errors.As(err, &ise) || !strings.Contains(apiMessage(err), "pending deletion") {
		t.Errorf("Decrypt under a key pending deletion: %v", err)
	}
	e.emu.CancelKeyDeletion(e.cmk.ARN)
	e.emu.EnableKey(e.cmk.ARN)

	_, err = e.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("arn:aws:kms:" + region + ":" + customer + ":key/00000000-0000-4000-8000-000000000000")})
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("DescribeKey of a missing key: %v", err)
	}
}

func TestRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	enc, _ := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.cmk.ARN), Plaintext: []byte("old")})
	p := strings.Replace(policyFor(userARN), `"kms:DescribeKey"`, `"kms:DescribeKey","kms:RotateKeyOnDemand"`, 1)
	e.emu.PutKeyPolicy(e.cmk.ARN, p)
	if _, err := e.kms.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(e.cmk.ARN)}); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.emu.BackingKeys(e.cmk.ARN); n != 2 {
		t.Errorf("after RotateKeyOnDemand, %d backing keys", n)
	}
	enc2, _ := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.cmk.ARN), Plaintext: []byte("new")})
	if bytes.Equal(enc.CiphertextBlob[:len(e.cmk.ARN)+5], enc2.CiphertextBlob[:len(e.cmk.ARN)+5]) {
		t.Error("the ciphertext header does not name the new backing key")
	}
	for _, c := range [][]byte{enc.CiphertextBlob, enc2.CiphertextBlob} {
		if _, err := e.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: c}); err != nil {
			t.Errorf("Decrypt after rotation: %v", err)
		}
	}
}

func TestAssumeRole(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},
	 "Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"ext-123"}}}}`, platform)
	if err := e.emu.PutRole(roleARN, trust); err != nil {
		t.Fatal(err)
	}
	e.emu.PutKeyPolicy(e.cmk.ARN, policyFor(roleARN))
	stsClient := sts.New(sts.Options{Region: region, HTTPClient: e.emu.HTTPClient(), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e.key.ID, e.key.Secret, "")})
	for _, tt := range []struct {
		ext  string
		code string
	}{{"ext-123", ""}, {"wrong", "AccessDenied"}, {"", "AccessDenied"}} {
		prov := stscreds.NewAssumeRoleProvider(stsClient, roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "byok-t1"
			if tt.ext != "" {
				o.ExternalID = aws.String(tt.ext)
			}
		})
		o := e.opts
		o.Credentials = aws.NewCredentialsCache(prov)
		_, err := kms.New(o).Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.cmk.ARN), Plaintext: []byte("x")})
		if apiCode(err) != tt.code {
			t.Errorf("ExternalId %q: %v, want code %q", tt.ext, err, tt.code)
		}
		if tt.code != "" {
			want := "User: " + userARN + " is not authorized to perform: sts:AssumeRole on resource: " + roleARN
			if apiMessage(err) != want {
				t.Errorf("message %q, want %q", apiMessage(err), want)
			}
			continue
		}
		calls := e.emu.Calls()
		if last := calls[len(calls)-1]; last.Principal != "arn:aws:sts::"+customer+":assumed-role/byok-access/byok-t1" {
			t.Errorf("Encrypt with the session recorded principal %q", last.Principal)
		}
		sc := sts.New(sts.Options{Region: region, HTTPClient: e.emu.HTTPClient(), Credentials: o.Credentials})
		id, err := sc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || *id.Account != customer || !strings.HasSuffix(*id.Arn, "assumed-role/byok-access/byok-t1") {
			t.Errorf("GetCallerIdentity: %+v, %v", id, err)
		}
		e.emu.ExpireSessions()
		_, err = sc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		_ = err // the cache refreshes: a new session is issued
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	describe := func() error {
		_, err := e.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(e.cmk.ARN)})
		return err
	}
	e.emu.InjectFault(awsemu.Fault{Ops: []string{"DescribeKey"}, Throttle: true, Count: 1})
	if err := describe(); apiCode(err) != "ThrottlingException" {
		t.Errorf("throttled: %v", err)
	}
	e.emu.InjectFault(awsemu.Fault{Status: 500, Count: 1})
	if err := describe(); apiCode(err) != "KMSInternalException" {
		t.Errorf("500: %v", err)
	}
	e.emu.InjectFault(awsemu.Fault{Reset: true, Count: 1})
	if err := describe(); err == nil || apiCode(err) != "" {
		t.Errorf("reset: %v", err)
	}
	if err := describe(); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	if n := e.emu.CallCounts()["DescribeKey"]; n != 4 {
		t.Errorf("DescribeKey counted %d times, want 4", n)
	}

	release := e.emu.Hold("DescribeKey")
	done := make(chan error)
	go func() { done <- describe() }()
	<-e.emu.Waiting()
	release()
	if err := <-done; err != nil {
		t.Errorf("held call: %v", err)
	}
}
