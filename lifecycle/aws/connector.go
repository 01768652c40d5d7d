package aws

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	sdkconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/awskms"
	"github.com/openbyok/byok/lifecycle"
)

// Config is the platform's side of AWS access, from byok's configuration
// (the aws: block): the same for every tenant.
type Config struct {
	// Credentials are the platform's own AWS credentials; nil means the
	// SDK's default chain (environment, shared files, web identity, ECS,
	// EC2 instance metadata), loaded once by [New] and shared by every
	// tenant's provider.
	Credentials sdkaws.CredentialsProvider
	// PlatformPrincipal is the platform's IAM principal ARN, which key
	// policies and trust policies name; empty means the one STS
	// GetCallerIdentity returns for Credentials (for a role session, the
	// role's ARN without its path).
	PlatformPrincipal string
	// Region is the region of the platform's own STS call that learns
	// its principal; empty means us-east-1. Customer keys are reached in
	// the region of their ARN.
	Region string
	// Endpoint and STSEndpoint override the KMS and STS endpoints (a VPC
	// endpoint, an emulator): https:// URLs; empty: the SDK's.
	Endpoint, STSEndpoint string
	// HTTPClient sends every AWS request; nil uses the SDK's. Tests and
	// the demo pass awsemu's.
	HTTPClient sdkaws.HTTPClient
	// Timeout bounds each call (awskms.Config.Timeout); zero: its default.
	Timeout time.Duration
	// SessionDuration is the lifetime of assumed roles' sessions
	// (awskms.Config.SessionDuration); zero: 15 minutes.
	SessionDuration time.Duration
	// Logger receives awskms's call logs; nil discards them.
	Logger *slog.Logger
}

// Connector is the [lifecycle.Connector] of AWS KMS over kms/awskms. It is
// safe for concurrent use; create it with [New].
type Connector struct {
	cfg        Config
	principals principalCache // who the platform is (platform.go)
}

var (
	_ lifecycle.Connector      = (*Connector)(nil)
	_ lifecycle.ProgressTester = (*Connector)(nil)
)

// New returns the connector of cfg. With nil cfg.Credentials it loads the
// SDK's default credential chain, which reads the environment and shared
// files (not the network) until first used; it fails if they are
// malformed, or if an endpoint is not an https:// URL.
func New(cfg Config) (*Connector, error) {
	for name, u := range map[string]string{"endpoint": cfg.Endpoint, "sts_endpoint": cfg.STSEndpoint} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Host == "" {
			return nil, fmt.Errorf("aws: the %s %q is not an https:// URL", name, u)
		}
	}
	if cfg.Credentials == nil {
		ac, err := sdkconfig.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("aws: loading the platform's default AWS credentials (environment, shared files, web identity): %w", err)
		}
		cfg.Credentials = ac.Credentials
	}
	return &Connector{cfg: cfg}, nil
}

// config turns settings into an awskms.Config, or an error wrapping
// byok.ErrInvalidInput (a *lifecycle.FieldError for a bad option) that
// says what is wrong.
func (c *Connector) config(s lifecycle.KeySettings) (awskms.Config, error) {
	o, err := OptionsOf(s)
	if err != nil {
		return awskms.Config{}, err
	}
	if _, err := awskms.ParseKeyARN(s.KeyID); err != nil {
		return awskms.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	cfg := awskms.Config{KeyARN: s.KeyID, Tenant: s.Tenant, RoleARN: o.RoleARN, ExternalID: o.ExternalID,
		SessionDuration: c.cfg.SessionDuration, Credentials: c.cfg.Credentials, PlatformPrincipal: c.cfg.PlatformPrincipal,
		Endpoint: c.cfg.Endpoint, STSEndpoint: c.cfg.STSEndpoint, HTTPClient: c.cfg.HTTPClient,
		Timeout: c.cfg.Timeout, Logger: c.cfg.Logger}
	if err := cfg.Validate(); err != nil {
		return awskms.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	return cfg, nil
}

// Provider implements [lifecycle.Connector] with awskms.New. It makes no
// network call.
func (c *Connector) Provider(ctx context.Context, s lifecycle.KeySettings) (kms.Provider, error) {
	cfg, err := c.config(s)
	if err != nil {
		return nil, err
	}
	p, err := awskms.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	return p, nil
}

// Test implements [lifecycle.Connector] with awskms.TestConfiguration.
// Settings that cannot even be turned into a configuration give a report
// with one failing line, not an error.
func (c *Connector) Test(ctx context.Context, s lifecycle.KeySettings) (lifecycle.Report, error) {
	return c.TestProgress(ctx, s, nil)
}

// TestProgress implements [lifecycle.ProgressTester] with
// awskms.TestConfigurationProgress; a nil progress is Test. The report's
// KeyID is the key ARN the test reached (behind an alias), else s.KeyID;
// remedies carry the key policy statement or trust policy to paste.
func (c *Connector) TestProgress(ctx context.Context, s lifecycle.KeySettings, progress func(lifecycle.Check)) (lifecycle.Report, error) {
	if err := ctx.Err(); err != nil {
		return lifecycle.Report{}, err
	}
	cfg, err := c.config(s)
	if err != nil {
		return lifecycle.UnusableSettings(s, err, awskms.CheckKeyARN, awskms.CheckSettings, progress), nil
	}
	var report func(awskms.Check)
	if progress != nil {
		report = func(ch awskms.Check) { progress(check(ch)) }
	}
	ar := awskms.TestConfigurationProgress(ctx, cfg, report)
	r := lifecycle.Report{KeyID: s.KeyID}
	for _, ch := range ar.Checks {
		r.Checks = append(r.Checks, check(ch))
	}
	if ch, ok := ar.Check(awskms.CheckKeyRead); ok && ch.Status == awskms.Pass {
		if k := keyARNIn(ch.Value); k != "" {
			r.KeyID = k
		}
	}
	return r, nil
}

// keyARNIn returns the key ARN in the value of a passing key-read check
// ("<arn>", "alias/x → <arn>", either followed by " (multi-region)"), or
// "".
func keyARNIn(v string) string {
	for _, f := range strings.Fields(v) {
		if a, err := awskms.ParseKeyARN(f); err == nil && !a.IsAlias() {
			return f
		}
	}
	return ""
}

// check turns a line of awskms's report into one of the lifecycle's
// (a skipped check keeps awskms's "skip" outcome).
func check(ch awskms.Check) lifecycle.Check {
	detail := ch.Reason
	if ch.Value != "" {
		detail = ch.Value + ": " + ch.Reason
	}
	return lifecycle.Check{Name: ch.Name, Outcome: lifecycle.Outcome(ch.Status), Detail: detail, Remedy: ch.Remedy}
}
