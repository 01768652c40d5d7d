package awskms

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Defaults of [Config].
const (
	DefaultTimeout    = 30 * time.Second
	DefaultMaxRetries = 3
	// DefaultSessionDuration is the lifetime of an assumed role's
	// session: AWS's minimum.
	DefaultSessionDuration = 15 * time.Minute
)

// Config configures a [Provider] and [TestConfiguration]: the customer's
// settings (KeyARN, Tenant, RoleARN, ExternalID) and the platform's own
// (Credentials, Endpoint, HTTPClient, …). It is plain data; a connector
// builds it from a tenant's stored settings and the platform's
// configuration.
type Config struct {
	// KeyARN is the customer's key: a key ARN or an alias ARN, in any
	// region; required by TestConfiguration. A Provider wraps under
	// whatever ARN it is given.
	KeyARN string
	// Tenant is the byok tenant id. Every Encrypt and Decrypt carries it
	// in the encryption context as byok:tenant (see [EncryptionContext]).
	// Required.
	Tenant string
	// RoleARN, when set, is a role in the customer's account that byok
	// assumes (sts:AssumeRole) with ExternalID before calling KMS; the
	// SDK caches the session's credentials and refreshes them before
	// they expire. Empty: byok calls KMS as the platform's own principal,
	// which the key policy must name.
	RoleARN string
	// ExternalID is the external id byok generated for this tenant and
	// the role's trust policy requires (sts:ExternalId). Required with
	// RoleARN.
	ExternalID string
	// SessionName is the role session name, which the customer sees in
	// CloudTrail; empty means "byok-" + Tenant (cut to 64 characters of
	// the allowed set).
	SessionName string
	// SessionDuration is the lifetime of the role's sessions; zero means
	// [DefaultSessionDuration]. A session outlives a change of the role's
	// trust policy (AWS does not revoke issued sessions), so it bounds how
	// long byok can still use the key after the customer removes the
	// trust; removing the key policy statement or disabling the key takes
	// effect at once. 15 minutes to 12 hours (the role's maximum).
	SessionDuration time.Duration
	// Credentials are the platform's own AWS credentials; nil means the
	// SDK's default chain (environment, shared files, web identity, ECS,
	// EC2 instance metadata), loaded by [New].
	Credentials aws.CredentialsProvider
	// PlatformPrincipal is the platform's IAM principal ARN, which the
	// key policy statement (or the role's trust policy) printed by Test
	// configuration names; empty means the ARN STS GetCallerIdentity
	// returns for Credentials (for a role session, the role's ARN without
	// its path: set PlatformPrincipal when the platform's role has a
	// path, e.g. arn:aws:iam::999988887777:role/service/byok).
	PlatformPrincipal string
	// Endpoint, when set, is the base URL of KMS (a VPC endpoint, an
	// emulator) instead of https://kms.<region>.amazonaws.com;
	// STSEndpoint the same for STS. Empty: the SDK's endpoints.
	Endpoint, STSEndpoint string
	// HTTPClient sends every request (KMS and STS); nil uses the SDK's.
	// Tests pass awsemu's HTTPClient.
	HTTPClient aws.HTTPClient
	// Timeout bounds each provider call, retries and credential refresh
	// included. Zero means [DefaultTimeout].
	Timeout time.Duration
	// MaxRetries is the number of retries of a failed call (throttling,
	// 5xx, connection errors), with the SDK's backoff. Zero means
	// [DefaultMaxRetries]; negative disables retries.
	MaxRetries int
	// Logger receives one debug line per KMS call (with the AWS request
	// id) and a warning per failed one, never with secrets. Nil discards
	// them.
	Logger *slog.Logger
}

var (
	externalIDRE  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	roleARNRE     = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	sessionNameRE = regexp.MustCompile(`[^\w+=,.@-]`)
)

// Validate checks c without any network call; each error names the
// setting and what to enter.
func (c Config) Validate() error {
	var errs []error
	if c.KeyARN != "" {
		if _, err := ParseKeyARN(c.KeyARN); err != nil {
			errs = append(errs, err)
		}
	}
	if strings.TrimSpace(c.Tenant) == "" {
		errs = append(errs, errors.New("awskms: Config.Tenant is empty; set it to the byok tenant id, which every encryption context carries"))
	}
	switch {
	case c.RoleARN == "" && c.ExternalID != "":
		errs = append(errs, errors.New("awskms: Config.ExternalID is set without a RoleARN; enter the ARN of the role byok assumes, or clear the external id to use the key policy"))
	case c.RoleARN != "" && !roleARNRE.MatchString(c.RoleARN):
		errs = append(errs, fmt.Errorf("awskms: Config.RoleARN %q is not a role ARN such as arn:aws:iam::111122223333:role/byok-access (IAM > Roles > the role > ARN)", c.RoleARN))
	case c.RoleARN != "" && c.ExternalID == "":
		errs = append(errs, errors.New("awskms: Config.ExternalID is empty; byok assumes a customer's role only with the external id it generated for the tenant (the role's trust policy requires sts:ExternalId)"))
	case c.RoleARN != "" && (!externalIDRE.MatchString(c.ExternalID) || len(c.ExternalID) < 2 || len(c.ExternalID) > 1224):
		errs = append(errs, errors.New("awskms: Config.ExternalID has characters other than letters, digits and +=,.@:/-, or fewer than 2 or more than 1224"))
	}
	for name, u := range map[string]string{"Endpoint": c.Endpoint, "STSEndpoint": c.STSEndpoint} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Host == "" {
			errs = append(errs, fmt.Errorf("awskms: Config.%s %q is not an https:// URL", name, u))
		}
	}
	if c.SessionDuration != 0 && (c.SessionDuration < 15*time.Minute || c.SessionDuration > 12*time.Hour) {
		errs = append(errs, fmt.Errorf("awskms: Config.SessionDuration %v is outside 15m to 12h, what STS issues", c.SessionDuration))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("awskms: Config.Timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// NewExternalID returns a new external id for a tenant's role trust
// policy: "byok-" and 26 random base32 characters (130 bits), which the
// console shows the customer and the tenant's settings keep.
func NewExternalID() string {
	b := make([]byte, 17)
	rand.Read(b)
	return "byok-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:26]
}

// sessionName returns the role session name.
func (c Config) sessionName() string {
	s := c.SessionName
	if s == "" {
		s = "byok-" + sessionNameRE.ReplaceAllString(c.Tenant, "-")
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func (c Config) sessionDuration() time.Duration {
	if c.SessionDuration == 0 {
		return DefaultSessionDuration
	}
	return c.SessionDuration
}

func (c Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c Config) maxAttempts() int {
	switch {
	case c.MaxRetries < 0:
		return 1
	case c.MaxRetries == 0:
		return DefaultMaxRetries + 1
	}
	return c.MaxRetries + 1
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
