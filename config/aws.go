package config

import (
	"net/url"
	"regexp"
	"time"
)

// AWS is the platform's own AWS access, for customer keys in AWS KMS: the
// aws: block. Present (even as "aws: {}"), byok serve offers the aws-kms
// provider; absent, it does not. Customers grant the platform's principal
// in their key policy, or let it assume a role of theirs with an external
// id byok generates (docs/aws-setup.md).
//
//	aws:
//	  region: eu-west-1
//	  credentials:
//	    web_identity:
//	      role_arn: arn:aws:iam::999988887777:role/byok
//	      token_file: /var/run/secrets/eks.amazonaws.com/serviceaccount/token
//	  platform_principal: arn:aws:iam::999988887777:role/byok
type AWS struct {
	// Region is the region of the platform's own STS calls (who it is,
	// web identity); empty means AWS_REGION, else us-east-1. Each
	// customer key is reached in the region of its ARN.
	Region string `yaml:"region"`
	// Credentials are the platform's own AWS credentials; empty means the
	// SDK's default chain (environment, shared files, web identity from
	// AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, ECS, EC2 instance
	// metadata).
	Credentials AWSCredentials `yaml:"credentials"`
	// PlatformPrincipal is the platform's IAM principal ARN, which
	// customers name in key policies and trust policies; empty means the
	// one STS GetCallerIdentity returns (a role session as its role,
	// without the role's path: set it when the role has a path).
	PlatformPrincipal string `yaml:"platform_principal"`
	// Endpoint and STSEndpoint replace the KMS and STS endpoints (a VPC
	// endpoint's DNS name, or an emulator): https:// URLs.
	Endpoint    string `yaml:"endpoint"`
	STSEndpoint string `yaml:"sts_endpoint"`
	// CAFile is a PEM file of CA certificates trusted for AWS endpoints
	// besides the system's (an emulator's, or a TLS-inspecting proxy's).
	CAFile string `yaml:"ca_file"`
	// Timeout bounds each AWS call, retries included; 0 means 30s.
	Timeout time.Duration `yaml:"timeout"`
	// SessionDuration is the lifetime of sessions of customers' roles;
	// 0 means 15m (AWS's minimum), at most 12h. It bounds how long byok
	// keeps a role's session after the customer removes its trust.
	SessionDuration time.Duration `yaml:"session_duration"`
}

// AWSCredentials are the platform's own AWS credentials: at most one of
// the fields; none means the SDK's default chain.
type AWSCredentials struct {
	// WebIdentity assumes RoleARN with the web identity token in
	// TokenFile (EKS IAM roles for service accounts), read at every
	// refresh.
	WebIdentity *AWSWebIdentity `yaml:"web_identity"`
	// AccessKey names the environment variables that hold an access key:
	// the key itself never goes in the file.
	AccessKey *AWSAccessKey `yaml:"access_key"`
	// Profile names a profile of the shared configuration files
	// (~/.aws/config, ~/.aws/credentials).
	Profile string `yaml:"profile"`
}

// AWSWebIdentity is a role assumed with a web identity token file.
type AWSWebIdentity struct {
	RoleARN     string `yaml:"role_arn"`
	TokenFile   string `yaml:"token_file"`
	SessionName string `yaml:"session_name"`
}

// AWSAccessKey names the variables of an access key (and, for temporary
// credentials, a session token).
type AWSAccessKey struct {
	IDEnv           string `yaml:"id_env"`
	SecretEnv       string `yaml:"secret_env"`
	SessionTokenEnv string `yaml:"session_token_env"`
}

var (
	awsRegionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d{1,2}$`)
	awsRoleARNRE   = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]+$`)
	awsPrincipalRE = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/[\w+=,.@/-]+$`)
)

// validateAWS checks the aws: block, when there is one.
func (c *Config) validateAWS(bad func(field, format string, args ...any)) {
	a := c.AWS
	if a == nil {
		return
	}
	if a.Region != "" && !awsRegionRE.MatchString(a.Region) {
		bad("aws.region", "is %q; give an AWS region such as eu-west-1, or leave it out", a.Region)
	}
	if a.PlatformPrincipal != "" && !awsPrincipalRE.MatchString(a.PlatformPrincipal) {
		bad("aws.platform_principal", "is %q; give the platform's IAM role or user ARN, e.g. arn:aws:iam::999988887777:role/byok (IAM > Roles > the role > ARN), or leave it out to ask STS", a.PlatformPrincipal)
	}
	for _, e := range []struct{ field, u string }{{"aws.endpoint", a.Endpoint}, {"aws.sts_endpoint", a.STSEndpoint}} {
		if e.u == "" {
			continue
		}
		if u, err := url.Parse(e.u); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad(e.field, "is %q; give an https:// base URL such as https://vpce-0123-abcd.kms.eu-west-1.vpce.amazonaws.com, or leave it out for AWS's endpoint", e.u)
		}
	}
	if a.Timeout < 0 || (a.Timeout > 0 && a.Timeout < time.Second) {
		bad("aws.timeout", "is %v; use at least 1s, or leave it out for 30s", a.Timeout)
	}
	if a.SessionDuration != 0 && (a.SessionDuration < 15*time.Minute || a.SessionDuration > 12*time.Hour) {
		bad("aws.session_duration", "is %v; STS issues sessions of 15m to 12h (leave it out for 15m)", a.SessionDuration)
	}
	cr := a.Credentials
	n := 0
	if cr.WebIdentity != nil {
		n++
		w := cr.WebIdentity
		if !awsRoleARNRE.MatchString(w.RoleARN) {
			bad("aws.credentials.web_identity.role_arn", "is %q; give the platform's role ARN, e.g. arn:aws:iam::999988887777:role/byok (AWS_ROLE_ARN)", w.RoleARN)
		}
		if w.TokenFile == "" {
			bad("aws.credentials.web_identity.token_file", "is empty; give the web identity token file (AWS_WEB_IDENTITY_TOKEN_FILE)")
		}
	}
	if cr.AccessKey != nil {
		n++
		if cr.AccessKey.IDEnv == "" || cr.AccessKey.SecretEnv == "" {
			bad("aws.credentials.access_key", "needs id_env and secret_env: the names of the environment variables that hold the access key id and secret (the key never goes in the file)")
		}
	}
	if cr.Profile != "" {
		n++
	}
	if n > 1 {
		bad("aws.credentials", "sets more than one of web_identity, access_key and profile; keep one, or none for the SDK's default chain")
	}
}
