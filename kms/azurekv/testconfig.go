package azurekv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/openbyok/byok/kms"
)

// Status is the outcome of one check.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip" // not run: a check it depends on did not pass
)

// The checks of a [Report], in the order they appear.
const (
	CheckKeyURI         = "key-uri"
	CheckSettings       = "settings"
	CheckDNS            = "dns"
	CheckTCP            = "tcp"
	CheckTLS            = "tls"
	CheckVaultTenant    = "vault-tenant"
	CheckAuthentication = "authentication"
	CheckCredentialLife = "credential-expiry"
	CheckKeyRead        = "key-read"
	CheckOwnership      = "ownership"
	CheckPermissions    = "permissions"
	CheckKeyType        = "key-type"
	CheckKeyOperations  = "key-operations"
	CheckKeyEnabled     = "key-enabled"
	CheckKeyValidity    = "key-validity"
	CheckSoftDelete     = "soft-delete"
	CheckRoundTrip      = "round-trip"
	CheckLatency        = "latency"
	CheckThrottle       = "throttle-headroom"
	CheckClockSkew      = "clock-skew"
)

// Check is one line of a report.
type Check struct {
	Name   string // one of the Check* constants
	Status Status
	Value  string // what was measured, e.g. "RSA-HSM 3072-bit"
	Reason string // plain-language why
	Remedy string // what to change, and where; empty when nothing is to do
}

// Report is the result of [TestConfiguration].
type Report struct {
	Checks []Check
	// Operations are the key operations the principal may use, from
	// wrapKey, unwrapKey, encrypt, decrypt (empty if not tested).
	Operations []string
	// SuggestedMode is the mode the principal's rights allow, when the
	// configured one is not allowed and the other is; "" otherwise.
	SuggestedMode Mode
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

// Latency and clock-skew thresholds of the report.
const (
	latencyWarn   = time.Second
	skewWarn      = time.Minute
	skewFail      = 5 * time.Minute
	expiryWarn    = 30 * 24 * time.Hour
	latencySample = 5
)

// TestConfiguration runs every check of a customer key configuration and
// reports each one: the key URI; the vault host's DNS, TCP and TLS; that
// the vault belongs to the configured tenant; authentication (Entra ID's
// AADSTS codes translated) and the expiry of the secret or certificate;
// read access to the key; with the [PlatformApp] credential, that the key
// carries the tag [OwnerTagName]=[Config.OwnerTag] (ownership: no wrap,
// unwrap, encrypt or decrypt is tried on a key without it); which of wrapKey, unwrapKey, encrypt and decrypt
// the principal may use; the key's type and size (RSA ≥ 2048 or RSA-HSM),
// permitted operations, enabled state and validity window; soft delete and
// purge protection (a fail without purge protection, as the Azure services
// that offer customer-managed keys require it); a wrap/unwrap round trip;
// latency p50/p95; the throttle headroom; and the clock skew with the
// vault. A check whose prerequisite did not pass is skipped with the
// reason. It never returns secrets in the report.
func TestConfiguration(ctx context.Context, cfg Config) Report {
	t := &tester{cfg: cfg}
	t.run(ctx)
	return t.report
}

type tester struct {
	cfg    Config
	report Report
	status map[string]Status
	// progress, if set, is called with each check as it is added
	// (see TestConfigurationProgress).
	progress func(Check)

	id        KeyID
	p         *Provider
	probe     probeResult
	info      keyDetails
	ops       map[string]opResult
	wrapped   kms.Wrapped
	throttled int
}

func (t *tester) add(c Check) Status {
	t.report.Checks = append(t.report.Checks, c)
	t.status[c.Name] = c.Status
	if t.progress != nil {
		t.progress(c)
	}
	return c.Status
}

// needs returns a skip check for name if any of deps did not pass or warn.
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
	t.status = map[string]Status{}
	t.checkKeyURI()
	t.checkSettings()
	if !t.checkIdentity() { // testidentity.go
		return
	}
	t.checkReachability(ctx)
	t.checkVaultTenant()
	t.checkAuthentication(ctx)
	t.checkTokenAudience(ctx) // testidentity.go
	t.checkCredentialLife()
	t.checkKeyRead(ctx)
	t.checkOwnership()
	t.probeOperations(ctx)
	t.checkPermissions()
	t.checkKeyType()
	t.checkKeyOperations()
	t.checkKeyEnabled()
	t.checkKeyValidity()
	t.checkSoftDelete()
	t.checkRoundTrip(ctx)
	t.checkLatency(ctx)
	t.checkThrottle()
	t.checkClockSkew()
}

func (t *tester) checkKeyURI() {
	id, err := ParseKeyID(t.cfg.KeyID)
	if err != nil {
		var ke *KeyIDError
		reason := err.Error()
		if errors.As(err, &ke) {
			reason = "the key identifier " + ke.Reason
		}
		t.add(Check{Name: CheckKeyURI, Status: Fail, Value: t.cfg.KeyID, Reason: reason,
			Remedy: "copy the Key Identifier from the vault's Keys blade > key > version (or the key's base identifier to follow new versions), e.g. " + keyIDExample})
		return
	}
	t.id = id
	v := "versionless: follows the key's current version"
	if id.Version != "" {
		v = "pinned to version " + id.Version
	}
	t.add(Check{Name: CheckKeyURI, Status: Pass, Value: id.String(), Reason: "well-formed key identifier, " + v})
}

func (t *tester) checkSettings() {
	cfg := t.cfg
	cfg.KeyID = "" // reported by key-uri
	if err := cfg.Validate(); err != nil {
		t.add(Check{Name: CheckSettings, Status: Fail, Reason: err.Error(),
			Remedy: "correct the settings named above in the key's configuration"})
		return
	}
	p, err := New(t.cfg)
	if err != nil {
		t.add(Check{Name: CheckSettings, Status: Fail, Reason: err.Error(), Remedy: "correct the key's configuration"})
		return
	}
	t.p = p
	t.add(Check{Name: CheckSettings, Status: Pass, Value: fmt.Sprintf("%v, tenant %s, %s in %s mode", cfg.Credential, cfg.TenantID, cfg.algorithm(), cfg.mode()),
		Reason: "the settings are complete"})
}

// probeResult is what an unauthenticated request to the vault told.
type probeResult struct {
	remote      string
	tlsState    *tls.ConnectionState
	status      int
	tenant      string // from the challenge's authorization URI
	resource    string
	date        time.Time
	receivedAt  time.Time
	roundTrip   time.Duration
	dnsFailed   error
	tcpFailed   error
	tlsFailed   error
	otherFailed error
}
