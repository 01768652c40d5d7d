package awskms

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/openbyok/byok/awsemu"
)

func TestConfigurationPasses(t *testing.T) {
	for _, mode := range []string{"key policy", "assumed role"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			cfg := e.config()
			cfg.KeyARN = aliasARN
			if mode == "assumed role" {
				cfg.RoleARN, cfg.ExternalID = roleARN, externalID
				e.emu.PutKeyPolicy(e.cmk.ARN, keyPolicy(roleARN))
			}
			r := TestConfiguration(context.Background(), cfg)
			if !r.OK() {
				t.Fatalf("report fails:\n%s", dump(r))
			}
			for _, c := range r.Checks {
				if c.Status == Warn || c.Status == Fail {
					t.Errorf("check %s: %s: %s", c.Name, c.Status, c.Reason)
				}
			}
			if r.KeyPolicy != "" || r.TrustPolicy != "" {
				t.Errorf("a passing report asks to paste a policy: %q %q", r.KeyPolicy, r.TrustPolicy)
			}
			answered := map[string]awsemu.Call{}
			for _, c := range e.emu.Calls() {
				answered[c.RequestID] = c
			}
			named := map[string]bool{}
			for _, id := range r.RequestIDs {
				named[id] = true
				if _, ok := answered[id]; !ok {
					t.Errorf("the report names request id %s, which the emulator did not answer", id)
				}
			}
			for id, c := range answered {
				if c.Service == "kms" && c.Principal != "" && !named[id] {
					t.Errorf("the report lacks the request id of %s (%s)", c.Op, id)
				}
			}
			if rt, _ := r.Check(CheckRoundTrip); !strings.Contains(rt.Value, "byok:tenant:"+tenant) {
				t.Errorf("the round trip does not show the encryption context: %q", rt.Value)
			}
		})
	}
}

// dnsFail fails every request as a failed name lookup.
type dnsFail struct{}

func (dnsFail) Do(req *http.Request) (*http.Response, error) {
	return nil, &net.DNSError{Err: "no such host", Name: req.URL.Hostname(), IsNotFound: true}
}

type matrixCase struct {
	name   string
	setup  func(t *testing.T, e *env, cfg *Config)
	check  string // the check that must have status (Fail unless set)
	status Status
	remedy []string // parts of its remedy
}

var matrix = []matrixCase{
	{"bare key id instead of an ARN", func(t *testing.T, e *env, cfg *Config) {
		cfg.KeyARN = e.cmk.ID
	}, CheckKeyARN, "", []string{"copy the ARN from the KMS console", "arn:aws:kms:"}},
	{"ARN of another service", func(t *testing.T, e *env, cfg *Config) {
		cfg.KeyARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:byok"
	}, CheckKeyARN, "", []string{"General configuration > ARN"}},
	{"role without an external id", func(t *testing.T, e *env, cfg *Config) {
		cfg.RoleARN = roleARN
	}, CheckSettings, "", []string{"correct the settings"}},
	{"region does not resolve", func(t *testing.T, e *env, cfg *Config) {
		cfg.HTTPClient = dnsFail{}
	}, CheckDNS, "", []string{`check the region "eu-west-1"`}},
	{"connection refused", func(t *testing.T, e *env, cfg *Config) {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:1")
		}}}
	}, CheckTCP, "", []string{"allow outbound HTTPS (TCP 443)", "VPC interface endpoint"}},
	{"TLS intercepted", func(t *testing.T, e *env, cfg *Config) {
		addr := e.emu.Addr()
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		}}
	}, CheckTLS, "", []string{"intercepting TLS"}},
	{"wrong platform secret", func(t *testing.T, e *env, cfg *Config) {
		cfg.Credentials = credentials.NewStaticCredentialsProvider(e.key.ID, "wrong-secret", "")
	}, CheckCredentials, "", []string{"platform operator"}},
	{"external id mismatch", func(t *testing.T, e *env, cfg *Config) {
		*cfg = e.roleConfig(t)
		cfg.ExternalID = "byok-ext-other"
	}, CheckAssumeRole, "", []string{"Trust relationships > Edit trust policy", `"sts:ExternalId": "byok-ext-other"`, `"AWS": "` + platform + `"`}},
	{"trust policy does not name the platform", func(t *testing.T, e *env, cfg *Config) {
		*cfg = e.roleConfig(t)
		e.emu.PutRole(roleARN, TrustPolicy("arn:aws:iam::444455556666:root", externalID))
	}, CheckAssumeRole, "", []string{"Roles > byok-access > Trust relationships", `"AWS": "` + platform + `"`}},
	{"role does not exist", func(t *testing.T, e *env, cfg *Config) {
		*cfg = e.roleConfig(t)
		cfg.RoleARN = "arn:aws:iam::" + customer + ":role/no-such-role"
	}, CheckAssumeRole, "", []string{"Roles > no-such-role"}},
	{"trust policy without the external id condition", func(t *testing.T, e *env, cfg *Config) {
		*cfg = e.roleConfig(t)
		e.emu.PutRole(roleARN, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"`+platform+`"},"Action":"sts:AssumeRole"}]}`)
	}, CheckExternalID, "", []string{`"sts:ExternalId": "` + externalID + `"`}},
	{"key policy without the platform", func(t *testing.T, e *env, cfg *Config) {
		e.emu.PutKeyPolicy(e.cmk.ARN, `{"Version":"2012-10-17","Statement":[`+rootStatement+`]}`)
	}, CheckKeyRead, "", []string{"Key policy > Edit", `"kms:DescribeKey"`, `"kms:Encrypt"`, `"AWS": "` + platform + `"`, `"kms:EncryptionContext:byok:tenant": "` + tenant + `"`, "the platform's own IAM policy"}},
	{"key policy names the platform, not the role", func(t *testing.T, e *env, cfg *Config) {
		*cfg = e.roleConfig(t)
		// Without the root statement: the role's account does not delegate.
		e.emu.PutKeyPolicy(e.cmk.ARN, `{"Version":"2012-10-17","Statement":`+KeyPolicyStatement(platform, tenant)+`}`)
	}, CheckKeyRead, "", []string{`"AWS": "` + roleARN + `"`}},
	{"key in another region", func(t *testing.T, e *env, cfg *Config) {
		cfg.KeyARN = strings.Replace(e.cmk.ARN, region, "us-east-1", 1)
	}, CheckKeyRead, "", []string{"a key and its aliases live in one region"}},
	{"AWS managed key", func(t *testing.T, e *env, cfg *Config) {
		k, _ := e.emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, AWSManaged: true, Policy: keyPolicy(platform)})
		cfg.KeyARN = k.ARN
	}, CheckKeyManager, "", []string{"create a customer managed key"}},
	{"asymmetric key", func(t *testing.T, e *env, cfg *Config) {
		k, _ := e.emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, KeySpec: "RSA_2048", Policy: keyPolicy(platform)})
		cfg.KeyARN = k.ARN
	}, CheckKeySpec, "", []string{"--key-spec SYMMETRIC_DEFAULT"}},
	{"signing key", func(t *testing.T, e *env, cfg *Config) {
		k, _ := e.emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, KeySpec: "RSA_3072", KeyUsage: "SIGN_VERIFY", Policy: keyPolicy(platform)})
		cfg.KeyARN = k.ARN
	}, CheckKeyUsage, "", []string{"--key-usage ENCRYPT_DECRYPT"}},
	{"disabled key", func(t *testing.T, e *env, cfg *Config) {
		e.emu.DisableKey(e.cmk.ARN)
	}, CheckKeyState, "", []string{"aws kms enable-key --key-id " + "arn:aws:kms:"}},
	{"key pending deletion", func(t *testing.T, e *env, cfg *Config) {
		e.emu.ScheduleKeyDeletion(e.cmk.ARN, 7)
	}, CheckKeyState, "", []string{"Cancel key deletion", "aws kms cancel-key-deletion"}},
	{"rotation off", func(t *testing.T, e *env, cfg *Config) {
		e.emu.SetKeyRotation(e.cmk.ARN, false)
	}, CheckRotation, Warn, []string{"aws kms enable-key-rotation"}},
	{"policy grants DescribeKey only", func(t *testing.T, e *env, cfg *Config) {
		e.emu.PutKeyPolicy(e.cmk.ARN, `{"Version":"2012-10-17","Statement":[`+rootStatement+`,{"Effect":"Allow","Principal":{"AWS":"`+platform+`"},"Action":["kms:DescribeKey","kms:GetKeyRotationStatus"],"Resource":"*"}]}`)
	}, CheckPermissions, "", []string{`"kms:Encrypt"`, `"kms:Decrypt"`}},
	{"policy bound to another tenant", func(t *testing.T, e *env, cfg *Config) {
		cfg.Tenant = "tenant-43"
	}, CheckPermissions, "", []string{`"kms:EncryptionContext:byok:tenant": "tenant-43"`}},
	{"policy not bound to the tenant", func(t *testing.T, e *env, cfg *Config) {
		e.emu.PutKeyPolicy(e.cmk.ARN, openPolicy(platform))
	}, CheckTenantBound, "", []string{"Condition", `"kms:EncryptionContext:byok:tenant": "` + tenant + `"`}},
	{"KMS throttles", func(t *testing.T, e *env, cfg *Config) {
		e.emu.InjectFault(awsemu.Fault{Ops: []string{"DescribeKey"}, Throttle: true})
	}, CheckKeyRead, "", []string{"test again"}},
}

// TestConfigurationMatrix runs each failure case and checks that its
// check has the status, with a remedy that names the fix; that the report
// fails (or warns) and shows no secret.
func TestConfigurationMatrix(t *testing.T) {
	for _, tt := range matrix {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := e.config()
			tt.setup(t, e, &cfg)
			r := TestConfiguration(context.Background(), cfg)
			want := tt.status
			if want == "" {
				want = Fail
			}
			c, ok := r.Check(tt.check)
			if !ok || c.Status != want {
				t.Fatalf("check %s: %q, want %s; report:\n%s", tt.check, c.Status, want, dump(r))
			}
			for _, part := range tt.remedy {
				if !strings.Contains(c.Remedy, part) {
					t.Errorf("the %s remedy lacks %q:\n%s", tt.check, part, c.Remedy)
				}
			}
			if want == Fail && r.OK() {
				t.Error("the report is OK with a failed check")
			}
			for _, ch := range r.Checks {
				for _, s := range []string{e.key.Secret, "wrong-secret"} {
					if strings.Contains(ch.Value+ch.Reason+ch.Remedy, s) {
						t.Errorf("check %s shows a secret", ch.Name)
					}
				}
			}
		})
	}
}
