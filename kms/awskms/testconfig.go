package awskms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openbyok/byok/kms"
)

// Status is the outcome of one check.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip" // not run: a check it depends on did not pass, or not needed
)

// The checks of a [Report], in the order they appear.
const (
	CheckKeyARN      = "key-arn"
	CheckSettings    = "settings"
	CheckDNS         = "dns"
	CheckTCP         = "tcp"
	CheckTLS         = "tls"
	CheckCredentials = "credentials"
	CheckAssumeRole  = "assume-role"
	CheckExternalID  = "external-id-required"
	CheckKeyRead     = "key-read"
	CheckKeyManager  = "key-manager"
	CheckKeySpec     = "key-spec"
	CheckKeyUsage    = "key-usage"
	CheckKeyState    = "key-state"
	CheckRotation    = "rotation"
	CheckPermissions = "permissions"
	CheckTenantBound = "tenant-binding"
	CheckRoundTrip   = "round-trip"
	CheckLatency     = "latency"
)

const (
	latencySample     = 5
	latencyWarn       = time.Second
	foreignTenantSeed = "byok-test-configuration-other-tenant"
)

// Check is one line of a report.
type Check struct {
	Name   string // one of the Check* constants
	Status Status
	Value  string // what was measured, e.g. "SYMMETRIC_DEFAULT"
	Reason string // plain-language why
	Remedy string // what to change, and where; empty when nothing is to do
}

// Report is the result of [TestConfiguration].
type Report struct {
	Checks []Check
	// Principal is the principal byok calls KMS as: the platform's
	// principal, or the assumed role's ARN.
	Principal string
	// KeyPolicy is the key policy statements to paste (see
	// [KeyPolicyStatement]) when a check needs them; TrustPolicy the role's
	// trust policy (see [TrustPolicy]). Empty otherwise.
	KeyPolicy, TrustPolicy string
	// RequestIDs are the AWS request ids of the test's KMS and STS calls
	// that AWS answered, for the audit log.
	RequestIDs []string
}

// OK reports whether no check failed.
func (r Report) OK() bool {
	return !slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Status == Fail })
}

// Check returns the check named name.
func (r Report) Check(name string) (Check, bool) {
	i := slices.IndexFunc(r.Checks, func(c Check) bool { return c.Name == name })
	if i < 0 {
		return Check{}, false
	}
	return r.Checks[i], true
}

// TestConfiguration runs every check of a customer key configuration and
// reports each one: the key ARN; the settings; the region's KMS endpoint
// (DNS, TCP, TLS); the platform's credentials (STS GetCallerIdentity);
// with a role, AssumeRole with the external id, and that the role refuses
// to be assumed without it; DescribeKey (customer managed,
// SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT, enabled, not pending deletion);
// automatic rotation (a warning when off); kms:Encrypt and kms:Decrypt
// with the tenant's encryption context; without a role, that the key
// policy refuses another tenant's encryption context; a round trip; and
// latency. A check whose prerequisite did not pass is skipped with the
// reason. Remedies name the console page or CLI command, and the report
// carries the key policy statements or the trust policy to paste. It never
// reports secrets, and changes nothing in the customer's account.
func TestConfiguration(ctx context.Context, cfg Config) Report {
	return TestConfigurationProgress(ctx, cfg, nil)
}

// TestConfigurationProgress runs [TestConfiguration] and calls progress
// with each check as soon as it is decided, in report order, from the
// calling goroutine, before the next check starts. The checks progress
// sees are exactly those of the returned report, skipped ones included.
// A nil progress makes it TestConfiguration. progress must not block for
// long: the AWS calls of the next check wait for it.
func TestConfigurationProgress(ctx context.Context, cfg Config, progress func(Check)) Report {
	t := &tester{cfg: cfg, status: map[string]Status{}, progress: progress}
	ctx, t.log = WithRequestLog(ctx)
	t.run(ctx)
	for _, r := range t.log.Requests() {
		if r.RequestID != "" {
			t.report.RequestIDs = append(t.report.RequestIDs, r.RequestID)
		}
	}
	t.report.RequestIDs = append(t.report.RequestIDs, t.stsIDs...)
	return t.report
}

type tester struct {
	cfg    Config
	report Report
	status map[string]Status
	log    *RequestLog
	// progress, if set, is called with each check as it is added.
	progress func(Check)
	stsIDs   []string

	arn      KeyARN
	p        *Provider
	platform string // the platform's principal ARN
	md       *types.KeyMetadata
	wrapped  kms.Wrapped
}

func (t *tester) add(c Check) Status {
	t.report.Checks = append(t.report.Checks, c)
	t.status[c.Name] = c.Status
	if t.progress != nil {
		t.progress(c)
	}
	return c.Status
}

// needs adds a skip check for name and returns false if any of deps did
// not pass or warn.
func (t *tester) needs(name string, deps ...string) bool {
	for _, d := range deps {
		if s := t.status[d]; s != Pass && s != Warn {
			t.add(Check{Name: name, Status: Skip, Reason: fmt.Sprintf("not run: the %s check did not pass", d)})
			return false
		}
	}
	return true
}

func (t *tester) run(ctx context.Context) {
	t.checkKeyARN()
	t.checkSettings()
	t.checkReachability(ctx) // testnet.go
	t.checkCredentials(ctx)  // testauth.go
	t.checkAssumeRole(ctx)
	t.checkExternalIDRequired(ctx)
	t.checkKeyRead(ctx) // testkey.go
	t.checkKeyManager()
	t.checkKeySpec()
	t.checkKeyUsage()
	t.checkKeyState()
	t.checkRotation(ctx)
	t.checkPermissions(ctx) // testwrap.go
	t.checkTenantBinding(ctx)
	t.checkRoundTrip(ctx)
	t.checkLatency(ctx)
}

func (t *tester) checkKeyARN() {
	a, err := ParseKeyARN(t.cfg.KeyARN)
	if err != nil {
		reason := err.Error()
		var ae *ARNError
		if errors.As(err, &ae) {
			reason = "the key ARN is not valid: " + ae.Reason
		}
		t.add(Check{Name: CheckKeyARN, Status: Fail, Value: t.cfg.KeyARN, Reason: reason,
			Remedy: "copy the ARN from the KMS console (Customer managed keys > the key > General configuration > ARN), or run `aws kms describe-key --key-id alias/<name> --query KeyMetadata.Arn`; e.g. " + arnExample})
		return
	}
	t.arn = a
	v := "key " + a.KeyID
	switch {
	case a.IsAlias():
		v = "alias " + a.Alias + ": follows the key the alias points to"
	case a.MultiRegion():
		v = "multi-region key " + a.KeyID
	}
	t.add(Check{Name: CheckKeyARN, Status: Pass, Value: a.String(), Reason: fmt.Sprintf("well-formed KMS ARN in account %s, region %s; %s", a.Account, a.Region, v)})
}

func (t *tester) checkSettings() {
	cfg := t.cfg
	cfg.KeyARN = "" // reported by key-arn
	if err := cfg.Validate(); err != nil {
		t.add(Check{Name: CheckSettings, Status: Fail, Reason: err.Error(), Remedy: "correct the settings named above in the key's configuration"})
		return
	}
	if t.status[CheckKeyARN] == Pass {
		cfg.KeyARN = t.cfg.KeyARN
	}
	p, err := New(cfg)
	if err != nil {
		t.add(Check{Name: CheckSettings, Status: Fail, Reason: err.Error(),
			Remedy: "give the platform AWS credentials (the operator's configuration: an IAM role of its host, or access keys)"})
		return
	}
	t.p = p
	v := "access as the platform's own principal, through the key policy"
	if cfg.RoleARN != "" {
		v = fmt.Sprintf("access by assuming %s with the tenant's external id (session %s)", cfg.RoleARN, cfg.sessionName())
	}
	t.add(Check{Name: CheckSettings, Status: Pass, Value: v, Reason: "the settings are complete"})
}
