package awskms

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"time"
)

// endpoint returns the KMS endpoint of the key's region: the configured
// Endpoint, else https://kms.<region>.amazonaws.com (.com.cn in aws-cn).
func (t *tester) endpoint() string {
	if t.cfg.Endpoint != "" {
		return strings.TrimSuffix(t.cfg.Endpoint, "/") + "/"
	}
	suffix := "amazonaws.com"
	if t.arn.Partition == "aws-cn" {
		suffix = "amazonaws.com.cn"
	}
	return "https://kms." + t.arn.Region + "." + suffix + "/"
}

// probeResult is what an unauthenticated request to KMS told.
type probeResult struct {
	remote   string
	tlsState *tls.ConnectionState
	status   int
	dnsErr   error
	tcpErr   error
	tlsErr   error
}

func (t *tester) checkReachability(ctx context.Context) {
	if !t.needs(CheckDNS, CheckKeyARN, CheckSettings) {
		t.add(Check{Name: CheckTCP, Status: Skip, Reason: "not run: the dns check did not pass"})
		t.add(Check{Name: CheckTLS, Status: Skip, Reason: "not run: the dns check did not pass"})
		return
	}
	ep := t.endpoint()
	u, _ := url.Parse(ep)
	host := u.Host
	pr := probe(ctx, t.cfg.HTTPClient, ep)
	if pr.dnsErr != nil {
		t.add(Check{Name: CheckDNS, Status: Fail, Value: host, Reason: "the KMS endpoint of the key's region does not resolve: " + pr.dnsErr.Error(),
			Remedy: fmt.Sprintf("check the region %q in the key ARN (the region shown at the top right of the KMS console when the key is open); if the platform uses a VPC endpoint for KMS, its private DNS must be enabled", t.arn.Region)})
		t.add(Check{Name: CheckTCP, Status: Skip, Reason: "not run: the dns check did not pass"})
		t.add(Check{Name: CheckTLS, Status: Skip, Reason: "not run: the dns check did not pass"})
		return
	}
	t.add(Check{Name: CheckDNS, Status: Pass, Value: host, Reason: "the KMS endpoint of the key's region resolves"})
	if pr.tcpErr != nil {
		t.add(Check{Name: CheckTCP, Status: Fail, Value: host, Reason: "cannot connect: " + pr.tcpErr.Error(),
			Remedy: "allow outbound HTTPS (TCP 443) from the platform to " + host + ", or give the platform a VPC interface endpoint for KMS in the key's region"})
		t.add(Check{Name: CheckTLS, Status: Skip, Reason: "not run: the tcp check did not pass"})
		return
	}
	reached := "reached"
	if pr.remote != "" && pr.remote != host && pr.remote != host+":443" {
		reached += " (via " + pr.remote + ")"
	}
	t.add(Check{Name: CheckTCP, Status: Pass, Value: host, Reason: reached})
	if pr.tlsErr != nil {
		t.add(Check{Name: CheckTLS, Status: Fail, Value: host, Reason: "the TLS handshake failed: " + pr.tlsErr.Error(),
			Remedy: "a proxy or firewall is intercepting TLS to AWS, or the platform's trusted CA certificates are out of date: let HTTPS to *.amazonaws.com through unmodified"})
		return
	}
	v := "TLS"
	if s := pr.tlsState; s != nil {
		v = tls.VersionName(s.Version)
		if len(s.PeerCertificates) > 0 {
			v += fmt.Sprintf(", certificate issued by %q", s.PeerCertificates[0].Issuer.CommonName)
		}
	}
	t.add(Check{Name: CheckTLS, Status: Pass, Value: v, Reason: fmt.Sprintf("KMS's certificate is trusted (an unsigned request got HTTP %d)", pr.status)})
}

// probe sends one unsigned request to KMS, which answers 400.
func probe(ctx context.Context, c interface {
	Do(*http.Request) (*http.Response, error)
}, endpoint string) probeResult {
	var pr probeResult
	if c == nil {
		c = http.DefaultClient
	}
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { pr.remote = ci.Conn.RemoteAddr().String() }}
	ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(ctx, trace), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader("{}"))
	if err != nil {
		pr.tcpErr = err
		return pr
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
	resp, err := c.Do(req)
	if err != nil {
		var dnsErr *net.DNSError
		var opErr *net.OpError
		var certErr *tls.CertificateVerificationError
		var uaErr x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		var recErr tls.RecordHeaderError
		switch {
		case errors.As(err, &dnsErr):
			pr.dnsErr = dnsErr
		case errors.As(err, &certErr) || errors.As(err, &uaErr) || errors.As(err, &hostErr) || errors.As(err, &recErr):
			pr.tlsErr = err
		case errors.As(err, &opErr) && opErr.Op == "dial", pr.remote == "":
			pr.tcpErr = err
		default:
			pr.tlsErr = err
		}
		return pr
	}
	resp.Body.Close()
	pr.status, pr.tlsState = resp.StatusCode, resp.TLS
	return pr
}
