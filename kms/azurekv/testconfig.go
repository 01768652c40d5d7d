package azurekv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

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
	info      kms.KeyInfo
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

func (t *tester) checkReachability(ctx context.Context) {
	if !t.needs(CheckDNS, CheckKeyURI, CheckSettings) {
		t.add(Check{Name: CheckTCP, Status: Skip, Reason: "not run: the dns check did not pass"})
		t.add(Check{Name: CheckTLS, Status: Skip, Reason: "not run: the dns check did not pass"})
		return
	}
	t.probe = probe(ctx, t.cfg.Transport, t.id)
	pr := t.probe
	host := t.id.Host
	switch {
	case pr.dnsFailed != nil:
		remedy := "check the vault name in the key identifier; the vault may have been deleted"
		if t.id.PrivateLink {
			remedy = "the private-link name resolves only inside the vault's virtual network: link the privatelink.vaultcore.azure.net private DNS zone to the network the platform runs in, or use the vault's public name"
		}
		t.add(Check{Name: CheckDNS, Status: Fail, Value: host, Reason: "the host name does not resolve: " + pr.dnsFailed.Error(), Remedy: remedy})
		t.add(Check{Name: CheckTCP, Status: Skip, Reason: "not run: the dns check did not pass"})
		t.add(Check{Name: CheckTLS, Status: Skip, Reason: "not run: the dns check did not pass"})
		return
	}
	t.add(Check{Name: CheckDNS, Status: Pass, Value: host, Reason: "the host name resolves"})
	if pr.tcpFailed != nil {
		t.add(Check{Name: CheckTCP, Status: Fail, Value: host + ":443", Reason: "cannot connect: " + pr.tcpFailed.Error(),
			Remedy: "allow outbound HTTPS (TCP 443) from the platform to the vault; if the vault has a private endpoint, the platform must run in (or be peered with) its virtual network"})
		t.add(Check{Name: CheckTLS, Status: Skip, Reason: "not run: the tcp check did not pass"})
		return
	}
	t.add(Check{Name: CheckTCP, Status: Pass, Value: host + ":443", Reason: tcpReached(host, pr.remote)})
	if pr.tlsFailed != nil || pr.otherFailed != nil {
		err := pr.tlsFailed
		if err == nil {
			err = pr.otherFailed
		}
		t.add(Check{Name: CheckTLS, Status: Fail, Value: host, Reason: "the TLS handshake failed: " + err.Error(),
			Remedy: "a proxy or firewall is intercepting TLS to the vault, or the platform's trusted CA certificates are out of date: let HTTPS to *.vault.azure.net through unmodified"})
		return
	}
	v := "TLS"
	if s := pr.tlsState; s != nil {
		v = tls.VersionName(s.Version)
		if len(s.PeerCertificates) > 0 {
			leaf := s.PeerCertificates[0]
			v += fmt.Sprintf(", certificate %q issued by %q", leaf.Subject.CommonName, leaf.Issuer.CommonName)
		}
	}
	t.add(Check{Name: CheckTLS, Status: Pass, Value: v, Reason: "the vault's certificate is trusted"})
}

// tcpReached is the tcp check's reason: the vault's host and port are its
// value, so the address actually dialled (a private endpoint's, or a local
// emulator's on another port) is named only as the route taken.
func tcpReached(host, remote string) string {
	if remote == "" || remote == host+":443" {
		return "reached"
	}
	return "reached (via " + remote + ")"
}

// probe sends one unauthenticated request to the vault: Key Vault answers
// 401 with a challenge naming the vault's tenant, and a Date header.
func probe(ctx context.Context, tr policy.Transporter, id KeyID) probeResult {
	var pr probeResult
	if tr == nil {
		tr = http.DefaultClient
	}
	trace := &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) { pr.remote = ci.Conn.RemoteAddr().String() },
	}
	ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(ctx, trace), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id.VaultURL()+"/keys/"+id.Name+"/?api-version=2025-07-01", nil)
	if err != nil {
		pr.otherFailed = err
		return pr
	}
	start := time.Now()
	resp, err := tr.Do(req)
	pr.roundTrip = time.Since(start)
	if err != nil {
		var dnsErr *net.DNSError
		var opErr *net.OpError
		var certErr *tls.CertificateVerificationError
		var uaErr x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		var invErr x509.CertificateInvalidError
		var recErr tls.RecordHeaderError
		switch {
		case errors.As(err, &dnsErr):
			pr.dnsFailed = dnsErr
		case errors.As(err, &certErr) || errors.As(err, &uaErr) || errors.As(err, &hostErr) || errors.As(err, &invErr) || errors.As(err, &recErr):
			pr.tlsFailed = err
		case errors.As(err, &opErr) && opErr.Op == "dial":
			pr.tcpFailed = opErr
		case pr.remote == "":
			pr.tcpFailed = err
		default:
			pr.tlsFailed = err
		}
		return pr
	}
	defer resp.Body.Close()
	pr.receivedAt = time.Now()
	pr.status = resp.StatusCode
	pr.tlsState = resp.TLS
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		pr.date = d
	}
	pr.tenant, pr.resource = parseChallenge(resp.Header.Get("WWW-Authenticate"))
	return pr
}

// parseChallenge reads the tenant and resource of a Key Vault challenge:
// Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="https://vault.azure.net".
func parseChallenge(h string) (tenant, resource string) {
	h = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(h), "Bearer"))
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch strings.ToLower(k) {
		case "authorization", "authorization_uri":
			if i := strings.Index(v, "://"); i >= 0 {
				segs := strings.Split(v[i+3:], "/")
				if len(segs) > 1 {
					tenant = segs[1]
				}
			}
		case "resource":
			resource = v
		case "scope":
			if resource == "" {
				resource = strings.TrimSuffix(v, "/.default")
			}
		}
	}
	return tenant, resource
}

func (t *tester) checkVaultTenant() {
	if !t.needs(CheckVaultTenant, CheckTLS) {
		return
	}
	pr := t.probe
	switch {
	case pr.status != http.StatusUnauthorized || pr.tenant == "":
		t.add(Check{Name: CheckVaultTenant, Status: Warn, Value: fmt.Sprintf("HTTP %d", pr.status),
			Reason: "the host did not answer an unauthenticated request with Key Vault's challenge, so its tenant is unknown",
			Remedy: "make sure the key identifier names a Key Vault and that no proxy answers in its place"})
	case !isGUID(t.cfg.TenantID):
		t.add(Check{Name: CheckVaultTenant, Status: Warn, Value: pr.tenant,
			Reason: fmt.Sprintf("the vault belongs to tenant %s; the configured tenant is the domain %s, which cannot be compared", pr.tenant, t.cfg.TenantID),
			Remedy: "enter the Directory (tenant) ID " + pr.tenant + " instead of the domain name"})
	case !strings.EqualFold(pr.tenant, t.cfg.TenantID):
		t.add(Check{Name: CheckVaultTenant, Status: Fail, Value: pr.tenant,
			Reason: fmt.Sprintf("the vault %s belongs to tenant %s, not to the configured tenant %s", t.id.Vault, pr.tenant, t.cfg.TenantID),
			Remedy: "set the Directory (tenant) ID to " + pr.tenant + " (Microsoft Entra ID > Overview of the vault's directory), or use a key in a vault of tenant " + t.cfg.TenantID})
	default:
		t.add(Check{Name: CheckVaultTenant, Status: Pass, Value: pr.tenant, Reason: "the vault belongs to the configured tenant"})
	}
}

// vaultScope returns the token scope of the vault: the challenge's resource,
// else the cloud's Key Vault or Managed HSM resource.
func (t *tester) vaultScope() string {
	if r := t.probe.resource; r != "" {
		return strings.TrimSuffix(r, "/") + "/.default"
	}
	r := "https://vault.azure.net"
	switch {
	case t.id.ManagedHSM:
		r = "https://managedhsm.azure.net"
	case t.id.Cloud == CloudChina:
		r = "https://vault.azure.cn"
	case t.id.Cloud == CloudGovernment:
		r = "https://vault.usgovcloudapi.net"
	}
	return r + "/.default"
}

func (t *tester) checkAuthentication(ctx context.Context) {
	if !t.needs(CheckAuthentication, CheckVaultTenant) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.timeout())
	defer cancel()
	tok, err := t.p.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{t.vaultScope()}, TenantID: t.cfg.TenantID, EnableCAE: true})
	if err != nil {
		reason, remedy := t.explainAuth(err)
		t.add(Check{Name: CheckAuthentication, Status: Fail, Value: t.cfg.Credential.String(), Reason: reason, Remedy: remedy})
		return
	}
	v := fmt.Sprintf("%v signed in to tenant %s; token valid until %s", t.cfg.Credential, t.cfg.TenantID, tok.ExpiresOn.UTC().Format(time.RFC3339))
	t.add(Check{Name: CheckAuthentication, Status: Pass, Value: v, Reason: "Entra ID issued a Key Vault token"})
}

// explainAuth translates an authentication failure.
func (t *tester) explainAuth(err error) (reason, remedy string) {
	if reason, remedy, ok := t.explainPlatformFederated(err); ok { // platformfed.go
		return reason, remedy
	}
	if reason, remedy, ok := t.explainIdentity(err); ok { // testidentity.go
		return reason, remedy
	}
	ke := Classify("authenticate", t.cfg.KeyID, err)
	if ke.Class == kms.Transient {
		return "could not reach Entra ID: " + ke.Err.Error(),
			"allow outbound HTTPS from the platform to login.microsoftonline.com (and, for a managed identity, to the host's identity endpoint), then test again"
	}
	if errors.Is(err, errNoValidCertificate) {
		return "every certificate byok generated for the app has expired", "generate a new certificate in the console and upload it to the app's Certificates & secrets blade"
	}
	cred := t.cfg.Credential
	app, tenant := cred.AppID(), t.cfg.TenantID
	var afe *azidentity.AuthenticationFailedError
	code := 0
	if errors.As(err, &afe) {
		code, _ = authCode(afe)
	}
	reason = ke.Err.Error()
	blade := fmt.Sprintf("Microsoft Entra ID > App registrations > %s > Certificates & secrets", app)
	switch code {
	case 7000215:
		return fmt.Sprintf("AADSTS7000215: the client secret of app %s is wrong", app),
			"create a new client secret on " + blade + " and paste its Value (not its Secret ID)"
	case 7000222:
		return fmt.Sprintf("AADSTS7000222: the client secret of app %s has expired", app),
			"create a new client secret on " + blade + " and paste its Value"
	case 700016:
		if _, ok := cred.(PlatformApp); ok {
			return fmt.Sprintf("AADSTS700016: the app %s is not consented in tenant %s", app, tenant),
				fmt.Sprintf("open %s as a Global Administrator or Privileged Role Administrator of tenant %s, or run `%s`", AdminConsentURL(tenant, app), tenant, CreateServicePrincipalCommand(app))
		}
		return fmt.Sprintf("AADSTS700016: no app %s in tenant %s", app, tenant),
			"check the Application (client) ID and the Directory (tenant) ID on the app's Overview blade (Microsoft Entra ID > App registrations)"
	case 90002:
		return fmt.Sprintf("AADSTS90002: tenant %s does not exist", tenant),
			"enter the Directory (tenant) ID from Microsoft Entra ID > Overview"
	case 700027:
		return fmt.Sprintf("AADSTS700027: Entra ID does not accept the certificate of app %s (not uploaded to the app, removed, or expired)", app),
			"download byok's certificate (PEM or CER) from the console and upload it on " + blade + " > Certificates > Upload certificate"
	case 70021:
		return fmt.Sprintf("AADSTS70021: no federated credential of app %s matches the workload's token", app),
			"add a federated credential with the workload's issuer and subject on " + blade + " > Federated credentials"
	case 7000112:
		return fmt.Sprintf("AADSTS7000112: app %s is disabled", app), "enable the app's service principal (Enterprise applications > Properties > Enabled for users to sign-in)"
	}
	if _, ok := cred.(ManagedIdentity); ok {
		return reason, "assign the managed identity to the platform's host (the resource's Identity blade), and use its client id"
	}
	return reason, "check the app's client id, tenant and credential on " + blade
}

func (t *tester) checkCredentialLife() {
	if !t.needs(CheckCredentialLife, CheckAuthentication) {
		return
	}
	now := time.Now()
	days := func(d time.Duration) int { return int(d.Hours() / 24) }
	var set *CertificateSet
	switch c := t.cfg.Credential.(type) {
	case ClientSecret:
		if c.ExpiresAt.IsZero() {
			t.add(Check{Name: CheckCredentialLife, Status: Warn, Value: "unknown",
				Reason: "the client secret's expiry date was not entered, so byok cannot warn before it expires",
				Remedy: "enter the secret's Expires date from the app's Certificates & secrets blade, or switch to a certificate generated by byok"})
			return
		}
		left := c.ExpiresAt.Sub(now)
		v := fmt.Sprintf("client secret expires %s (%d days left)", c.ExpiresAt.UTC().Format(time.DateOnly), days(left))
		if left < expiryWarn {
			t.add(Check{Name: CheckCredentialLife, Status: Warn, Value: v, Reason: "the client secret expires within 30 days",
				Remedy: "create a new client secret on the app's Certificates & secrets blade and update it here before " + c.ExpiresAt.UTC().Format(time.DateOnly)})
			return
		}
		t.add(Check{Name: CheckCredentialLife, Status: Pass, Value: v, Reason: "the client secret is valid for more than 30 days"})
		return
	case ClientCertificate:
		set = &c.Certificates
	case PlatformApp:
		set = c.Certificates
	}
	if set == nil {
		t.add(Check{Name: CheckCredentialLife, Status: Pass, Value: "no expiring credential", Reason: fmt.Sprintf("%s credentials are rotated by Azure or by the platform", t.cfg.Credential.Kind())})
		return
	}
	cur := set.Current.Cert.NotAfter
	v := fmt.Sprintf("certificate %s expires %s (%d days left)", set.Current.ThumbprintSHA256()[:16], cur.UTC().Format(time.DateOnly), days(cur.Sub(now)))
	if set.Next != nil {
		state := "not yet accepted by Entra ID"
		if cc, ok := t.p.cred.(*certCredential); ok && cc.inUse() == set.Next {
			state = "in use"
		}
		v += fmt.Sprintf("; next certificate %s %s", set.Next.ThumbprintSHA256()[:16], state)
		if state != "in use" {
			t.add(Check{Name: CheckCredentialLife, Status: Warn, Value: v, Reason: "a certificate rollover is in progress and the next certificate is not uploaded yet",
				Remedy: "upload the next certificate (PEM or CER from the console) on the app's Certificates & secrets blade before " + cur.UTC().Format(time.DateOnly)})
			return
		}
	} else if cur.Sub(now) < expiryWarn {
		t.add(Check{Name: CheckCredentialLife, Status: Warn, Value: v, Reason: "the certificate expires within 30 days",
			Remedy: "start a certificate rollover in the console and upload the new certificate to the app"})
		return
	}
	t.add(Check{Name: CheckCredentialLife, Status: Pass, Value: v, Reason: "the certificate is valid for more than 30 days"})
}

// remedyFor403 names what to change for a 403 of the vault on op
// ("get", "wrapKey", …).
func (t *tester) remedyFor403(err error, op string) (reason, remedy string) {
	var re *azcore.ResponseError
	inner := ""
	if errors.As(err, &re) {
		_, inner, _ = responseCodes(re)
	}
	principal := t.cfg.Credential.String()
	switch inner {
	case "ForbiddenByFirewall":
		return "the vault's firewall refuses the platform's address",
			"on the vault's Networking blade, allow the platform's egress IP addresses, or give the platform a private endpoint (Networking > Private endpoint connections)"
	case "ForbiddenByPolicy":
		return "an Azure Policy on the vault refuses the call", "ask the vault's owner which Azure Policy denies Key Vault data actions for " + principal
	case "AccessDenied":
		return fmt.Sprintf("the vault's access policies do not give %s the %s permission", principal, op),
			fmt.Sprintf("on the vault's Access policies blade, give %s the key permissions Get, Wrap Key and Unwrap Key (or move the vault to Azure RBAC and assign Key Vault Crypto Service Encryption User)", principal)
	}
	action := map[string]string{"get": "keys/read", "wrapKey": "keys/wrap/action", "unwrapKey": "keys/unwrap/action",
		"encrypt": "keys/encrypt/action", "decrypt": "keys/decrypt/action"}[op]
	return fmt.Sprintf("%s has no role on the vault or key that allows Microsoft.KeyVault/vaults/%s", principal, action),
		fmt.Sprintf("on the vault's Access control (IAM) blade, assign %s the role Key Vault Crypto Service Encryption User (or Key Vault Crypto User, or a custom role with the data actions Microsoft.KeyVault/vaults/keys/read, Microsoft.KeyVault/vaults/keys/wrap/action and Microsoft.KeyVault/vaults/keys/unwrap/action)", principal)
}

func (t *tester) checkKeyRead(ctx context.Context) {
	if !t.needs(CheckKeyRead, CheckAuthentication) {
		return
	}
	info, err := t.p.Describe(ctx, t.id.String())
	if err == nil {
		t.info = info
		t.add(Check{Name: CheckKeyRead, Status: Pass, Value: info.KeyID, Reason: "the principal can read the key (get)"})
		return
	}
	t.countThrottled(err)
	c := Check{Name: CheckKeyRead, Status: Fail, Value: string(kms.ReasonOf(err))}
	switch kms.ReasonOf(err) {
	case kms.ReasonDenied:
		c.Reason, c.Remedy = t.remedyFor403(err, "get")
	case kms.ReasonNotFound:
		c.Reason = fmt.Sprintf("the vault %s has no key %s", t.id.Vault, t.id.Name)
		if t.id.Version != "" {
			c.Reason = fmt.Sprintf("the key %s has no version %s", t.id.Name, t.id.Version)
		}
		c.Remedy = "check the key identifier on the vault's Keys blade; a deleted key can be recovered under Keys > Manage deleted keys (az keyvault key recover)"
	case kms.ReasonUnauthenticated:
		c.Reason = "the vault refused the token: " + errors.Unwrap(err).Error()
		c.Remedy = "make sure the vault and the app are in tenant " + t.cfg.TenantID
	default:
		c.Reason = "reading the key failed: " + errors.Unwrap(err).Error()
		c.Remedy = "test again; if it persists, check the vault's health in the Azure portal"
	}
	t.add(c)
}

// checkOwnership runs with a shared identity only (PlatformApp, or
// Config.SharedIdentity): the key read must carry the owner tag, since the
// platform's own identities reach the vaults of other tenants too.
func (t *tester) checkOwnership() {
	if !t.cfg.sharedIdentity() {
		t.add(Check{Name: CheckOwnership, Status: Skip,
			Reason: "not needed: byok signs in with the customer's own credential, which proves control of the directory"})
		return
	}
	if !t.needs(CheckOwnership, CheckKeyRead) {
		return
	}
	tag := OwnerTagName + "=" + t.cfg.OwnerTag
	if t.cfg.owns(t.info) {
		t.add(Check{Name: CheckOwnership, Status: Pass, Value: tag, Reason: "the key carries the tag that proves this byok tenant owns it"})
		return
	}
	t.add(Check{Name: CheckOwnership, Status: Fail, Value: "no tag " + tag,
		Reason: t.cfg.sharedWhy() + ", so the key must prove that this tenant owns it: its version " +
			versionOf(t.info.KeyID) + " does not carry the tag " + tag + " (only someone allowed to change the key can set it); no operation was tried on the key",
		Remedy: t.cfg.ownerRemedy(t.id)})
}

// owned reports whether operations may be tried on the key: with the
// customer's own credential always, with PlatformApp once ownership passed.
func (t *tester) owned() bool {
	return !t.cfg.sharedIdentity() || t.status[CheckOwnership] == Pass
}

// versionOf returns the version of a versioned key id, or the id itself.
func versionOf(keyID string) string {
	if id, err := ParseKeyID(keyID); err == nil && id.Version != "" {
		return id.Version
	}
	return keyID
}

// opResult is the outcome of one probed operation.
type opResult struct {
	allowed bool
	err     error // nil when allowed
}

// probeOperations tries wrapKey, encrypt, unwrapKey and decrypt. The
// unwrap probes use a real ciphertext when a wrap succeeded, else random
// bytes: the vault checks rights before it decrypts, so 400 means allowed.
func (t *tester) probeOperations(ctx context.Context) {
	if t.status[CheckAuthentication] != Pass || !t.owned() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.timeout())
	defer cancel()
	c, err := t.p.client(t.id)
	if err != nil {
		return
	}
	alg := to.Ptr(azkeys.EncryptionAlgorithm(t.cfg.algorithm()))
	pt := make([]byte, 32)
	rand.Read(pt)
	t.ops = map[string]opResult{}
	var ct []byte
	record := func(op string, err error) {
		t.countThrottled(err)
		if err == nil {
			t.ops[op] = opResult{allowed: true}
			return
		}
		ke := Classify(op, t.id.String(), err)
		if ke.Class == kms.Invalid { // got past the rights check
			t.ops[op] = opResult{allowed: true}
			return
		}
		t.ops[op] = opResult{err: ke}
	}
	w, err := c.WrapKey(ctx, t.id.Name, t.id.Version, azkeys.KeyOperationParameters{Algorithm: alg, Value: pt}, nil)
	record("wrapKey", err)
	if err == nil {
		ct = w.Result
	}
	e, err := c.Encrypt(ctx, t.id.Name, t.id.Version, azkeys.KeyOperationParameters{Algorithm: alg, Value: pt}, nil)
	record("encrypt", err)
	if err == nil && ct == nil {
		ct = e.Result
	}
	version := t.id.Version
	if ct == nil {
		ct = make([]byte, 256)
		rand.Read(ct)
	} else if w.KID != nil {
		version = w.KID.Version()
	} else if e.KID != nil {
		version = e.KID.Version()
	}
	_, err = c.UnwrapKey(ctx, t.id.Name, version, azkeys.KeyOperationParameters{Algorithm: alg, Value: ct}, nil)
	record("unwrapKey", err)
	_, err = c.Decrypt(ctx, t.id.Name, version, azkeys.KeyOperationParameters{Algorithm: alg, Value: ct}, nil)
	record("decrypt", err)
	for _, op := range []string{"wrapKey", "unwrapKey", "encrypt", "decrypt"} {
		if t.ops[op].allowed {
			t.report.Operations = append(t.report.Operations, op)
		}
	}
}

func (t *tester) countThrottled(err error) {
	if err != nil && Classify("", "", err).Reason == kms.ReasonThrottled {
		t.throttled++
	}
}

func (t *tester) checkPermissions() {
	if !t.needs(CheckPermissions, CheckAuthentication) {
		return
	}
	if !t.owned() {
		t.add(Check{Name: CheckPermissions, Status: Skip, Reason: "not run: the ownership check did not pass"})
		return
	}
	var allowed, denied []string
	for _, op := range []string{"wrapKey", "unwrapKey", "encrypt", "decrypt"} {
		if t.ops[op].allowed {
			allowed = append(allowed, op)
		} else if kms.ReasonOf(t.ops[op].err) == kms.ReasonDenied {
			denied = append(denied, op)
		}
	}
	v := fmt.Sprintf("allowed: %s; denied: %s", list(allowed), list(denied))
	want := []string{"wrapKey", "unwrapKey"}
	other, otherMode := []string{"encrypt", "decrypt"}, ModeEncrypt
	if t.cfg.mode() == ModeEncrypt {
		want, other, otherMode = other, want, ModeWrap
	}
	has := func(ops []string) bool { return slices.Contains(allowed, ops[0]) && slices.Contains(allowed, ops[1]) }
	var deniedWant, undetermined []string
	var firstDenied error
	for _, op := range want {
		r := t.ops[op]
		switch {
		case r.allowed:
		case kms.ReasonOf(r.err) == kms.ReasonDenied:
			deniedWant = append(deniedWant, op)
			if firstDenied == nil {
				firstDenied = r.err
			}
		default:
			undetermined = append(undetermined, op+" ("+string(kms.ReasonOf(r.err))+")")
		}
	}
	switch {
	case has(want):
		t.add(Check{Name: CheckPermissions, Status: Pass, Value: v, Reason: fmt.Sprintf("the principal may use %s and %s, as the %s mode needs", want[0], want[1], t.cfg.mode())})
	case has(other):
		t.report.SuggestedMode = otherMode
		t.add(Check{Name: CheckPermissions, Status: Fail, Value: v,
			Reason: fmt.Sprintf("the principal's role grants %s and %s but not %s and %s, which the %s mode uses", other[0], other[1], want[0], want[1], t.cfg.mode()),
			Remedy: fmt.Sprintf("switch the key's mode to %q (byok then uses %s/%s), or add the data actions %s to the role", otherMode, other[0], other[1], dataActions(want))})
	case firstDenied == nil:
		t.add(Check{Name: CheckPermissions, Status: Skip, Value: v + "; not determined: " + strings.Join(undetermined, ", "),
			Reason: "the key's state prevents testing the principal's rights; see the key checks below"})
	default:
		reason, remedy := t.remedyFor403(firstDenied, deniedWant[0])
		t.add(Check{Name: CheckPermissions, Status: Fail, Value: v, Reason: fmt.Sprintf("%s may not use %s: %s", t.cfg.Credential, list(deniedWant), reason), Remedy: remedy})
	}
}

func missingOps(want, allowed []string) []string {
	var out []string
	for _, op := range want {
		if !slices.Contains(allowed, op) {
			out = append(out, op)
		}
	}
	return out
}

func dataActions(ops []string) string {
	var out []string
	for _, op := range ops {
		out = append(out, "Microsoft.KeyVault/vaults/keys/"+map[string]string{"wrapKey": "wrap", "unwrapKey": "unwrap", "encrypt": "encrypt", "decrypt": "decrypt"}[op]+"/action")
	}
	return strings.Join(out, " and ")
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (t *tester) checkKeyType() {
	if !t.needs(CheckKeyType, CheckKeyRead) {
		return
	}
	i := t.info
	v := fmt.Sprintf("%s %d-bit", i.Type, i.Size)
	switch {
	case i.Type != "RSA" && i.Type != "RSA-HSM":
		t.add(Check{Name: CheckKeyType, Status: Fail, Value: i.Type, Reason: fmt.Sprintf("the key is %s; byok wraps with RSA-OAEP and needs an RSA or RSA-HSM key", i.Type),
			Remedy: "create an RSA key of 2048, 3072 or 4096 bits (Keys > Generate/Import, Key type RSA; az keyvault key create --kty RSA --size 3072)"})
	case i.Size < 2048:
		t.add(Check{Name: CheckKeyType, Status: Fail, Value: v, Reason: "RSA keys under 2048 bits are too weak",
			Remedy: "create an RSA key of 2048, 3072 or 4096 bits"})
	default:
		t.add(Check{Name: CheckKeyType, Status: Pass, Value: v, Reason: "an RSA key of a supported size"})
	}
}

func (t *tester) checkKeyOperations() {
	if !t.needs(CheckKeyOperations, CheckKeyRead) {
		return
	}
	want := []string{"wrapKey", "unwrapKey"}
	if t.cfg.mode() == ModeEncrypt {
		want = []string{"encrypt", "decrypt"}
	}
	v := list(t.info.Ops)
	if miss := missingOps(want, t.info.Ops); len(miss) > 0 {
		t.add(Check{Name: CheckKeyOperations, Status: Fail, Value: v, Reason: fmt.Sprintf("the key's permitted operations exclude %s", list(miss)),
			Remedy: fmt.Sprintf("enable %s under the key version's Permitted operations (az keyvault key set-attributes --ops %s ...)", list(want), strings.Join(append(want, t.info.Ops...), " "))})
		return
	}
	t.add(Check{Name: CheckKeyOperations, Status: Pass, Value: v, Reason: fmt.Sprintf("the key permits %s", list(want))})
}

func (t *tester) checkKeyEnabled() {
	if !t.needs(CheckKeyEnabled, CheckKeyRead) {
		return
	}
	if !t.info.Enabled {
		t.add(Check{Name: CheckKeyEnabled, Status: Fail, Value: "disabled", Reason: "the key version is disabled: every wrap and unwrap is refused",
			Remedy: "set Enabled to Yes on the key version (Keys > key > version; az keyvault key set-attributes --enabled true)"})
		return
	}
	t.add(Check{Name: CheckKeyEnabled, Status: Pass, Value: "enabled", Reason: "the key version is enabled"})
}

func (t *tester) checkKeyValidity() {
	if !t.needs(CheckKeyValidity, CheckKeyRead) {
		return
	}
	now := time.Now()
	i := t.info
	v := "no activation or expiration date"
	if !i.NotBefore.IsZero() || !i.Expires.IsZero() {
		v = fmt.Sprintf("activation %s, expiration %s", dateOr(i.NotBefore, "none"), dateOr(i.Expires, "none"))
	}
	switch {
	case !i.NotBefore.IsZero() && now.Before(i.NotBefore):
		t.add(Check{Name: CheckKeyValidity, Status: Fail, Value: v, Reason: "the key is not active yet: wrapping is refused until its activation date",
			Remedy: "clear or move back the key version's Activation date (az keyvault key set-attributes --not-before)"})
	case !i.Expires.IsZero() && !now.Before(i.Expires):
		t.add(Check{Name: CheckKeyValidity, Status: Fail, Value: v, Reason: "the key has expired: wrapping is refused",
			Remedy: "rotate to a new key version, or extend the version's Expiration date (az keyvault key set-attributes --expires)"})
	case !i.Expires.IsZero() && i.Expires.Sub(now) < expiryWarn:
		t.add(Check{Name: CheckKeyValidity, Status: Warn, Value: v, Reason: "the key expires within 30 days; after that byok cannot wrap new shares with it",
			Remedy: "rotate the key (new version) or extend its Expiration date before " + dateOr(i.Expires, "")})
	default:
		t.add(Check{Name: CheckKeyValidity, Status: Pass, Value: v, Reason: "the key is within its validity window"})
	}
}

func dateOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func (t *tester) checkSoftDelete() {
	if !t.needs(CheckSoftDelete, CheckKeyRead) {
		return
	}
	lvl := t.info.RecoveryLevel
	v := fmt.Sprintf("recoveryLevel %s, %d days", lvl, t.info.RecoverableDays)
	switch {
	case lvl == "" || lvl == "Purgeable":
		t.add(Check{Name: CheckSoftDelete, Status: Fail, Value: v, Reason: "the vault has no soft delete: a deleted key is gone at once, and with it the tenant's data",
			Remedy: "enable soft delete and purge protection on the vault's Properties blade (az keyvault update --enable-purge-protection true)"})
	case strings.Contains(lvl, "Purgeable"):
		t.add(Check{Name: CheckSoftDelete, Status: Fail, Value: v, Reason: "the vault has soft delete but no purge protection: anyone with purge rights can destroy the key, and with it the tenant's data, before the retention period ends",
			Remedy: "enable purge protection on the vault's Properties blade (az keyvault update --name " + t.id.Vault + " --enable-purge-protection true); it cannot be turned off again"})
	default:
		t.add(Check{Name: CheckSoftDelete, Status: Pass, Value: v, Reason: "soft delete and purge protection are on"})
	}
}

func (t *tester) checkRoundTrip(ctx context.Context) {
	if !t.needs(CheckRoundTrip, CheckPermissions, CheckKeyEnabled, CheckKeyValidity, CheckKeyOperations) {
		return
	}
	pt := make([]byte, 32)
	rand.Read(pt)
	w, err := t.p.Wrap(ctx, t.id.String(), pt)
	if err == nil {
		var got []byte
		got, err = t.p.Unwrap(ctx, w)
		if err == nil && string(got) != string(pt) {
			err = errors.New("the unwrapped value differs from the wrapped one")
		}
	}
	if err != nil {
		t.countThrottled(err)
		t.add(Check{Name: CheckRoundTrip, Status: Fail, Value: string(kms.ReasonOf(err)), Reason: "a wrap/unwrap round trip failed: " + err.Error(),
			Remedy: "fix the failures above and test again; if none, retry later (the vault may be throttling or unavailable)"})
		return
	}
	t.wrapped = w
	t.add(Check{Name: CheckRoundTrip, Status: Pass, Value: w.KeyID + " " + w.Algorithm, Reason: "a 32-byte share wrapped and unwrapped; byok records the exact key version"})
}

func (t *tester) checkLatency(ctx context.Context) {
	if !t.needs(CheckLatency, CheckRoundTrip) {
		return
	}
	var d []time.Duration
	for range latencySample {
		start := time.Now()
		if _, err := t.p.Unwrap(ctx, t.wrapped); err != nil {
			t.countThrottled(err)
			t.add(Check{Name: CheckLatency, Status: Warn, Value: fmt.Sprintf("%d of %d calls done", len(d), latencySample),
				Reason: "an unwrap failed while measuring latency: " + err.Error(), Remedy: "test again; if it persists, check the vault's health in the Azure portal"})
			return
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	p50, p95 := d[len(d)/2], d[(len(d)*95+99)/100-1]
	v := fmt.Sprintf("unwrap p50 %v, p95 %v over %d calls", p50.Round(time.Millisecond), p95.Round(time.Millisecond), len(d))
	if p95 > latencyWarn {
		t.add(Check{Name: CheckLatency, Status: Warn, Value: v, Reason: "the vault answers slowly; byok's periodic key checks and cold starts will be slow",
			Remedy: "use a vault in (or near) the platform's region, or a private endpoint"})
		return
	}
	t.add(Check{Name: CheckLatency, Status: Pass, Value: v, Reason: "the vault answers promptly"})
}

func (t *tester) checkThrottle() {
	if !t.needs(CheckThrottle, CheckKeyType) {
		return
	}
	limit := documentedLimit(t.info.Type, t.info.Size)
	v := fmt.Sprintf("Key Vault allows %d operations per 10 s on %s %d-bit keys per vault; byok's budget for %s has %.0f of %d left; %d throttled answers during this test",
		limit, t.info.Type, t.info.Size, t.id.Host, budgetFor(t.id.Host).available()/opCost(t.info.Type, t.info.Size), limit, t.throttled)
	if t.id.ManagedHSM {
		v = "Managed HSM does not throttle crypto operations per vault"
	}
	if t.throttled > 0 {
		t.add(Check{Name: CheckThrottle, Status: Warn, Value: v, Reason: "the vault throttled byok's test calls (429): other clients use most of its budget",
			Remedy: "give byok's key its own vault, or reduce the other load on this vault"})
		return
	}
	t.add(Check{Name: CheckThrottle, Status: Pass, Value: v, Reason: "no throttling seen; byok needs about one unwrap per tenant key per check interval"})
}

func (t *tester) checkClockSkew() {
	if !t.needs(CheckClockSkew, CheckTLS) {
		return
	}
	if t.probe.date.IsZero() {
		t.add(Check{Name: CheckClockSkew, Status: Warn, Value: "unknown", Reason: "the vault's answer had no Date header"})
		return
	}
	// The Date header has one-second resolution and was set during the
	// round trip.
	skew := t.probe.receivedAt.Sub(t.probe.date)
	abs := skew.Abs() - t.probe.roundTrip - time.Second
	v := fmt.Sprintf("local clock %+v from the vault's", skew.Round(time.Second))
	switch {
	case abs > skewFail:
		t.add(Check{Name: CheckClockSkew, Status: Fail, Value: v, Reason: "the platform's clock is more than 5 minutes off: tokens and key validity dates are judged wrongly",
			Remedy: "synchronise the platform host's clock (NTP, e.g. chrony or systemd-timesyncd)"})
	case abs > skewWarn:
		t.add(Check{Name: CheckClockSkew, Status: Warn, Value: v, Reason: "the platform's clock is more than a minute off",
			Remedy: "synchronise the platform host's clock (NTP)"})
	default:
		t.add(Check{Name: CheckClockSkew, Status: Pass, Value: v, Reason: "the clocks agree"})
	}
}
