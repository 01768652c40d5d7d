package azurekv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

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
