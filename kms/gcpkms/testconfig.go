package gcpkms

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/kms/apiv1/kmspb"
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
	CheckKeyName     = "key-name"
	CheckSettings    = "settings"
	CheckEndpoint    = "endpoint" // DNS and TCP
	CheckTLS         = "tls"
	CheckCredentials = "credentials"
	CheckPermissions = "permissions"
	CheckKeyRead     = "key-read"
	CheckPurpose     = "key-purpose"
	CheckVersion     = "key-version" // the primary (or pinned) version's state
	CheckProtection  = "protection-level"
	CheckRotation    = "rotation"
	CheckRoundTrip   = "round-trip"
	CheckTenantBound = "tenant-binding"
)

// Check is one line of a report.
type Check struct {
	Name   string // one of the Check* constants
	Status Status
	Value  string // what was found, e.g. "HSM"
	Reason string // plain-language why
	Remedy string // what to change, and where; empty when nothing is to do
}

// Report is the result of [TestConfiguration].
type Report struct {
	Checks []Check
	// ServiceAccount is the platform's service account the checks ran as
	// ("" if unknown), which the gcloud lines name.
	ServiceAccount string
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
// reports each one, in order: the resource name's form; the settings and
// credentials' form; the endpoint (DNS, TCP) and its TLS certificate; the
// platform's credentials, by an authenticated TestIamPermissions (missing,
// malformed, refused key, disabled service account); the use permissions
// (the gcloud line granting roles/cloudkms.cryptoKeyEncrypterDecrypter);
// GetCryptoKey (roles/cloudkms.viewer); purpose ENCRYPT_DECRYPT; the primary
// (or pinned) version enabled, not scheduled for destruction; the
// protection level (shown); the rotation period (a warning when none); a
// round trip with the tenant's AAD; and that another tenant's AAD is
// refused. A check whose prerequisite did not pass is skipped with the
// reason. Remedies name the console page or the gcloud command, ready to
// paste. It never reports secrets, and changes nothing in the customer's
// project.
func TestConfiguration(ctx context.Context, cfg Config) Report {
	t := &tester{cfg: cfg, status: map[string]Status{}}
	t.report.ServiceAccount = cfg.serviceAccount()
	t.run(ctx)
	if t.p != nil {
		t.p.Close()
	}
	return t.report
}

type tester struct {
	cfg    Config
	report Report
	status map[string]Status

	name KeyName
	p    *Provider
	key  *kmspb.CryptoKey
	ver  *kmspb.CryptoKeyVersion // the version Wrap uses
}

func (t *tester) add(c Check) Status {
	t.report.Checks = append(t.report.Checks, c)
	t.status[c.Name] = c.Status
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
	t.checkKeyName()
	t.checkSettings(ctx)
	t.checkEndpoint(ctx)
	t.checkCredentials(ctx) // testauth.go
	t.checkKeyRead(ctx)     // testkey.go
	t.checkPurpose()
	t.checkVersion()
	t.checkProtection()
	t.checkRotation()
	t.checkRoundTrip(ctx)
}

// gcloud returns the flags that name the key in gcloud kms commands.
func (t *tester) gcloud() string {
	n := t.name
	return fmt.Sprintf("--keyring %s --location %s --project %s", n.KeyRing, n.Location, n.Project)
}

func (t *tester) checkKeyName() {
	n, err := ParseKeyName(t.cfg.KeyName)
	if err != nil {
		reason := err.Error()
		var ne *NameError
		if errors.As(err, &ne) {
			reason = "the key name is not a Cloud KMS resource name: " + ne.Reason
		}
		t.add(Check{Name: CheckKeyName, Status: Fail, Value: t.cfg.KeyName, Reason: reason,
			Remedy: "copy the resource name in the Google Cloud console (Security > Key Management > the key ring > the key > ⋮ > Copy resource name), " +
				"or run `gcloud kms keys describe KEY --keyring RING --location LOCATION --format 'value(name)'`; it looks like projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY"})
		return
	}
	t.name = n
	if n.Version != 0 {
		t.add(Check{Name: CheckKeyName, Status: Warn, Value: n.String(),
			Reason: fmt.Sprintf("the name pins version %d: byok keeps wrapping under it after the key rotates", n.Version),
			Remedy: "enter the key's name without /cryptoKeyVersions/N (" + n.Key() + ") so that byok follows the primary version"})
		return
	}
	t.add(Check{Name: CheckKeyName, Status: Pass, Value: n.String(),
		Reason: fmt.Sprintf("a crypto key in project %s, location %s, key ring %s; byok follows its primary version", n.Project, n.Location, n.KeyRing)})
}

func (t *tester) checkSettings(ctx context.Context) {
	cfg := t.cfg
	cfg.KeyName = "" // reported by key-name
	if err := cfg.Validate(); err != nil {
		remedy := "correct the settings named above"
		if cfg.CredentialsJSON != nil {
			if _, kerr := parseKeyFile(cfg.CredentialsJSON); kerr != nil {
				remedy = "give the platform a service account key file: IAM & Admin > Service accounts > the platform's account > Keys > Add key > Create new key > JSON, " +
					"or `gcloud iam service-accounts keys create key.json --iam-account SERVICE_ACCOUNT`; paste the whole file"
			}
		}
		t.add(Check{Name: CheckSettings, Status: Fail, Reason: err.Error(), Remedy: remedy})
		return
	}
	if cfg.CredentialsJSON == nil && !hasCredentialsOption(cfg) {
		if _, err := credentials.DetectDefault(&credentials.DetectOptions{Scopes: []string{"https://www.googleapis.com/auth/cloudkms"}}); err != nil {
			t.add(Check{Name: CheckSettings, Status: Fail, Reason: "no credentials: no key file is configured and Application Default Credentials were not found: " + firstLine(err.Error()),
				Remedy: "configure the platform's service account key file (IAM & Admin > Service accounts > Keys > Add key > JSON), set GOOGLE_APPLICATION_CREDENTIALS to its path, " +
					"or run the platform on Google Cloud with that service account attached"})
			return
		}
	}
	p, err := New(ctx, cfg)
	if err != nil {
		t.add(Check{Name: CheckSettings, Status: Fail, Reason: err.Error(), Remedy: "check the platform's Cloud KMS settings (credentials, endpoint)"})
		return
	}
	t.p = p
	t.add(Check{Name: CheckSettings, Status: Pass, Value: credentialsSource(cfg), Reason: "the settings are complete"})
}

// hasCredentialsOption reports whether the connector passed its own
// client options, which may carry credentials this package cannot see.
func hasCredentialsOption(cfg Config) bool { return len(cfg.ClientOptions) > 0 }

func (t *tester) checkEndpoint(ctx context.Context) {
	if !t.needs(CheckEndpoint, CheckSettings) {
		t.add(Check{Name: CheckTLS, Status: Skip, Reason: "not run: the endpoint check did not pass"})
		return
	}
	ep := t.cfg.endpoint()
	host, _, _ := net.SplitHostPort(ep)
	ctx, cancel := context.WithTimeout(ctx, t.cfg.timeout())
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", ep)
	if err != nil {
		var dns *net.DNSError
		reason, remedy := "cannot connect to "+ep+": "+err.Error(),
			"allow outbound HTTPS (TCP 443) from the platform to "+host+" (a firewall or egress proxy rule), or configure the Private Service Connect endpoint the platform uses"
		if errors.As(err, &dns) {
			reason = "the endpoint " + host + " does not resolve: " + err.Error()
			remedy = "check the platform's DNS; with Private Google Access or Private Service Connect, " + host + " must resolve to its private address"
		}
		t.add(Check{Name: CheckEndpoint, Status: Fail, Value: ep, Reason: reason, Remedy: remedy})
		t.add(Check{Name: CheckTLS, Status: Skip, Reason: "not run: the endpoint check did not pass"})
		return
	}
	t.add(Check{Name: CheckEndpoint, Status: Pass, Value: ep, Reason: "connected to " + conn.RemoteAddr().String()})
	tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: t.cfg.RootCAs, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	defer tc.Close()
	if err := tc.HandshakeContext(ctx); err != nil {
		var unknown x509.UnknownAuthorityError
		remedy := "check that " + ep + " is the Cloud KMS endpoint"
		if errors.As(err, &unknown) {
			remedy = "the certificate is not from a trusted authority: a TLS-inspecting proxy sits between the platform and Google; exempt " + host +
				" from inspection, or give the platform that proxy's CA (the RootCAs setting)"
		}
		t.add(Check{Name: CheckTLS, Status: Fail, Value: host, Reason: "the TLS handshake failed: " + err.Error(), Remedy: remedy})
		return
	}
	st := tc.ConnectionState()
	v := tls.VersionName(st.Version)
	if len(st.PeerCertificates) > 0 {
		v += ", certificate issued by " + st.PeerCertificates[0].Issuer.CommonName
	}
	t.add(Check{Name: CheckTLS, Status: Pass, Value: v, Reason: "the endpoint's certificate is valid for " + host})
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// elapsed formats a duration for a check's value.
func elapsed(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
