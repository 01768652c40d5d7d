package aws

import (
	"context"
	"regexp"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/openbyok/byok/kms/awskms"
	"github.com/openbyok/byok/lifecycle"
)

// Platform is what a customer's administrator needs to let the platform
// reach a key: the principal to name in the key policy (direct access) or
// in the role's trust policy (AssumeRole).
type Platform struct {
	// Principal is the platform's IAM principal ARN, e.g.
	// arn:aws:iam::999988887777:role/byok; "" when it could not be
	// learned (the platform's credentials failed) or AWS is not offered.
	Principal string
	// NotOffered says why AWS KMS is not offered ("aws-kms is not offered
	// by this platform"); "" when it is.
	NotOffered string
}

// notOffered is Platform.NotOffered of a platform without the AWS
// connector.
const notOffered = "aws-kms is not offered by this platform"

// principalRetry is how long the connector waits before asking STS again
// who the platform is, after it failed.
const principalRetry = time.Minute

// principalCache remembers who the platform is.
type principalCache struct {
	mu     sync.Mutex
	arn    string
	failed time.Time
}

var assumedRoleRE = regexp.MustCompile(`^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]+)/[\w+=,.@-]+$`)

// Platform returns the platform's principal: Config.PlatformPrincipal, or
// else the caller STS GetCallerIdentity names for the platform's
// credentials (a role session as its role), asked once and then
// remembered; after a failure, not again for a minute. It never fails:
// what it could not learn is left empty.
func (c *Connector) Platform(ctx context.Context) Platform {
	if c.cfg.PlatformPrincipal != "" {
		return Platform{Principal: c.cfg.PlatformPrincipal}
	}
	pc := &c.principals
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.arn != "" || time.Since(pc.failed) < principalRetry {
		return Platform{Principal: pc.arn}
	}
	timeout := c.cfg.Timeout
	if timeout <= 0 || timeout > 10*time.Second {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var base *string
	if c.cfg.STSEndpoint != "" {
		base = &c.cfg.STSEndpoint
	}
	region := c.cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	client := sts.New(sts.Options{Region: region, Credentials: c.cfg.Credentials, HTTPClient: c.cfg.HTTPClient, BaseEndpoint: base, AppID: "byok"})
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		pc.failed = time.Now()
		if c.cfg.Logger != nil {
			ke := awskms.Classify("whoami", "", err)
			c.cfg.Logger.WarnContext(ctx, "aws: STS did not say who the platform is; set aws.platform_principal", "err", ke, "request_id", awskms.RequestIDOf(err))
		}
		return Platform{}
	}
	pc.arn = sdkaws.ToString(out.Arn)
	if m := assumedRoleRE.FindStringSubmatch(pc.arn); m != nil {
		pc.arn = "arn:" + m[1] + ":iam::" + m[2] + ":role/" + m[3]
	}
	return Platform{Principal: pc.arn}
}

// PlatformOf returns the platform offered by src: an AWS [Connector], or a
// lifecycle (a *lifecycle.Service) whose AWS connector it is; anything
// else offers none, with NotOffered "aws-kms is not offered by this
// platform".
func PlatformOf(ctx context.Context, src any) Platform {
	if lc, ok := src.(interface {
		Connector(name string) (lifecycle.Connector, error)
	}); ok {
		conn, err := lc.Connector(Provider)
		if err != nil {
			return Platform{NotOffered: notOffered}
		}
		src = conn
	}
	c, ok := src.(*Connector)
	if !ok || c == nil {
		return Platform{NotOffered: notOffered}
	}
	return c.Platform(ctx)
}

// SetupPolicies returns the policies a customer's administrator pastes for
// settings s of tenant: keyPolicyStatement, the statements to add to the
// key policy (naming the role of s when it has one, else p.Principal), and
// trustPolicy, the role's whole trust policy (naming p.Principal and the
// external id of s). keyPolicyStatement is "" when its principal is not
// known; trustPolicy is "" for settings without an external id or when
// p.Principal is not known.
func SetupPolicies(p Platform, s lifecycle.KeySettings, tenant string) (keyPolicyStatement, trustPolicy string) {
	o, _ := OptionsOf(s)
	principal := p.Principal
	if o.RoleARN != "" {
		principal = o.RoleARN
	}
	if principal != "" {
		keyPolicyStatement = awskms.KeyPolicyStatement(principal, tenant)
	}
	if o.ExternalID != "" && p.Principal != "" {
		trustPolicy = awskms.TrustPolicy(p.Principal, o.ExternalID)
	}
	return keyPolicyStatement, trustPolicy
}
