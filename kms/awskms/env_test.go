package awskms

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/openbyok/byok/awsemu"
)

const (
	customer   = "111122223333"
	platformID = "999988887777"
	region     = "eu-west-1"
	platform   = "arn:aws:iam::" + platformID + ":user/byok-platform"
	roleARN    = "arn:aws:iam::" + customer + ":role/byok-access"
	tenant     = "tenant-42"
	externalID = "byok-ext-5f1c2a"
	aliasARN   = "arn:aws:kms:" + region + ":" + customer + ":alias/byok"
)

// env is an awsemu with the platform's user, the customer's key (aliased
// alias/byok) whose policy grants the platform what byok needs for tenant,
// and the customer's role trusting the platform with externalID.
type env struct {
	emu *awsemu.Emulator
	key awsemu.AccessKey
	cmk awsemu.Key
}

// rootStatement keeps the customer's own access, as AWS's default policy
// does.
const rootStatement = `{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + customer + `:root"},"Action":"kms:*","Resource":"*"}`

// keyPolicy is the key policy with the statements Test configuration
// prints for principal, plus the root statement.
func keyPolicy(principal string) string {
	st := strings.TrimSuffix(strings.TrimPrefix(KeyPolicyStatement(principal, tenant), "["), "]")
	return `{"Version":"2012-10-17","Statement":[` + rootStatement + "," + st + `]}`
}

// openPolicy grants principal Encrypt, Decrypt and DescribeKey with no
// encryption context condition.
func openPolicy(principal string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[%s,{"Effect":"Allow","Principal":{"AWS":%q},"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey","kms:GetKeyRotationStatus"],"Resource":"*"}]}`, rootStatement, principal)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	emu, err := awsemu.Start(awsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	key, err := emu.AddUser(platform, awsemu.AccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	cmk, err := emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, Policy: keyPolicy(platform), Aliases: []string{"alias/byok"}, Rotation: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.PutRole(roleARN, TrustPolicy(platform, externalID)); err != nil {
		t.Fatal(err)
	}
	return &env{emu: emu, key: key, cmk: cmk}
}

// config is the direct-access configuration of the customer's key.
func (e *env) config() Config {
	return Config{
		KeyARN:      e.cmk.ARN,
		Tenant:      tenant,
		Credentials: credentials.NewStaticCredentialsProvider(e.key.ID, e.key.Secret, ""),
		HTTPClient:  e.emu.HTTPClient(),
		MaxRetries:  -1,
	}
}

// roleConfig is the configuration that assumes the customer's role; the
// key policy then names the role.
func (e *env) roleConfig(t testing.TB) Config {
	t.Helper()
	if err := e.emu.PutKeyPolicy(e.cmk.ARN, keyPolicy(roleARN)); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.RoleARN, cfg.ExternalID = roleARN, externalID
	return cfg
}

func (e *env) provider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dump(r Report) string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "  %-20s %-4s %s | %s | %s\n", c.Name, c.Status, c.Value, c.Reason, c.Remedy)
	}
	return b.String()
}
