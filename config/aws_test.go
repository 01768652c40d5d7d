package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/config"
)

func TestAWSAbsentOrEmpty(t *testing.T) {
	c, err := config.Parse([]byte(minimal))
	if err != nil || c.AWS != nil {
		t.Fatalf("no aws block: AWS = %+v, %v", c.AWS, err)
	}
	c, err = config.Parse([]byte(minimal + "aws: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.AWS == nil || *c.AWS != (config.AWS{}) {
		t.Fatalf("aws: {} decodes to %+v, want an empty block (the SDK's default chain)", c.AWS)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAWSFull(t *testing.T) {
	c, err := config.Parse([]byte(minimal + `aws:
  region: eu-west-1
  credentials:
    web_identity:
      role_arn: arn:aws:iam::999988887777:role/byok
      token_file: /var/run/secrets/eks.amazonaws.com/serviceaccount/token
  platform_principal: arn:aws:iam::999988887777:role/service/byok
  endpoint: https://vpce-0123.kms.eu-west-1.vpce.amazonaws.com
  sts_endpoint: https://sts.eu-west-1.amazonaws.com
  ca_file: /etc/byok/aws-ca.pem
  timeout: 10s
  session_duration: 1h
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	a := c.AWS
	if a.Region != "eu-west-1" || a.Credentials.WebIdentity.RoleARN != "arn:aws:iam::999988887777:role/byok" || a.Timeout != 10*time.Second ||
		a.SessionDuration != time.Hour || a.CAFile != "/etc/byok/aws-ca.pem" || a.PlatformPrincipal != "arn:aws:iam::999988887777:role/service/byok" {
		t.Fatalf("decoded %+v", a)
	}
}

var awsErrorTests = map[string]struct{ block, want string }{
	"unknown field":         {"aws: {regoin: eu-west-1}", "field regoin not found"},
	"region":                {"aws: {region: Ireland}", "aws.region: is \"Ireland\""},
	"principal":             {"aws: {platform_principal: 999988887777}", "aws.platform_principal"},
	"http endpoint":         {"aws: {endpoint: http://localhost:4566}", "aws.endpoint: is \"http://localhost:4566\"; give an https:// base URL"},
	"sts endpoint path":     {"aws: {sts_endpoint: https://sts.amazonaws.com/x}", "aws.sts_endpoint"},
	"timeout":               {"aws: {timeout: 10ms}", "aws.timeout"},
	"session":               {"aws: {session_duration: 5m}", "aws.session_duration: is 5m0s; STS issues sessions of 15m to 12h"},
	"web identity role":     {"aws: {credentials: {web_identity: {role_arn: byok, token_file: /t}}}", "aws.credentials.web_identity.role_arn"},
	"web identity token":    {"aws: {credentials: {web_identity: {role_arn: 'arn:aws:iam::999988887777:role/byok'}}}", "aws.credentials.web_identity.token_file: is empty"},
	"access key half":       {"aws: {credentials: {access_key: {id_env: AWS_ACCESS_KEY_ID}}}", "aws.credentials.access_key: needs id_env and secret_env"},
	"two credentials":       {"aws: {credentials: {profile: byok, access_key: {id_env: A, secret_env: B}}}", "aws.credentials: sets more than one"},
	"secret in access_key":  {"aws: {credentials: {access_key: {id: AKIA, secret: x}}}", "field id not found"},
	"credentials not a map": {"aws: {credentials: default}", "cannot unmarshal"},
}

func TestAWSErrors(t *testing.T) {
	for name, tt := range awsErrorTests {
		t.Run(name, func(t *testing.T) {
			c, err := config.Parse([]byte(minimal + tt.block + "\n"))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
