package console

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// generateCertificate makes a certificate for the tenant's app
// registration and keeps it in the session until the settings are saved.
func (c *console) generateCertificate(w http.ResponseWriter, r *http.Request, s *session) {
	cert, err := azurekv.GenerateCertificate(s.tenant, 365*24*time.Hour)
	if err != nil {
		c.internal(w, r, s, err)
		return
	}
	c.sessions.setCert(s, cert)
	c.sessions.setFlash(s, true, "Certificate generated. Download it, upload it to your app registration, then save the settings with the certificate credential.")
	http.Redirect(w, r, c.tenantURL(s.tenant, "setup")+"#credential", http.StatusSeeOther)
}

// downloadCertificate serves a certificate (never its key) as PEM or
// CER: the one generated in this session, or with ?which=current or
// ?which=next the saved credential's current certificate or the next one
// of its rollover.
func (c *console) downloadCertificate(w http.ResponseWriter, r *http.Request, s *session) {
	cert, name := c.sessions.certificate(s), "byok-"+s.tenant
	switch which := r.URL.Query().Get("which"); which {
	case "":
		if cert == nil {
			c.renderError(w, r, s, http.StatusNotFound, "No certificate was generated in this session. Generate one on the setup page first.")
			return
		}
	case "current", "next":
		cc, err := c.savedCertificates(r.Context(), s)
		if err != nil {
			if msg, user := userMessage(err); user {
				c.renderError(w, r, s, http.StatusNotFound, msg)
			} else {
				c.internal(w, r, s, err)
			}
			return
		}
		x := cc.Current
		if which == "next" {
			x = cc.Next
		}
		if x == nil {
			c.renderError(w, r, s, http.StatusNotFound, "No certificate rollover is in progress. Start one on the status page first.")
			return
		}
		cert, name = &azurekv.Certificate{Cert: x}, name+"-"+which
	default:
		c.renderError(w, r, s, http.StatusNotFound, "which is current or next (or absent, for the certificate generated in this session).")
		return
	}
	var body []byte
	switch f := r.PathValue("format"); f {
	case "pem":
		body = cert.PEM()
		w.Header().Set("Content-Type", "application/x-pem-file")
	case "cer":
		body = cert.CER()
		w.Header().Set("Content-Type", "application/pkix-cert")
	default:
		c.renderError(w, r, s, http.StatusNotFound, "Certificates download as certificate/pem or certificate/cer.")
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+url.PathEscape(name)+"."+r.PathValue("format")+`"`)
	w.Write(body)
}

// certificateRoller is what the console needs of the lifecycle for a
// certificate rollover; *lifecycle.Service has it. A Lifecycle without
// it shows no rollover.
type certificateRoller interface {
	Credential(ctx context.Context, tenant string) (any, error)
	StartCredentialRollover(ctx context.Context, actor audit.Actor, tenant string) (any, error)
	FinishCredentialRollover(ctx context.Context, actor audit.Actor, tenant string) (lifecycle.Report, error)
}

// certificatesOf returns the certificates of the tenant's credential.
func certificatesOf(ctx context.Context, cr certificateRoller, tenant string) (azure.CertificateCredential, error) {
	v, err := cr.Credential(ctx, tenant)
	if err != nil {
		return azure.CertificateCredential{}, err
	}
	cc, ok := v.(azure.CertificateCredential)
	if !ok {
		return azure.CertificateCredential{}, &lifecycle.FieldError{Field: "credential", Reason: "is not a certificate credential"}
	}
	return cc, nil
}

// errNoRollover is the refusal of a rollover by a Lifecycle that has none.
var errNoRollover = &lifecycle.FieldError{Field: "credential", Reason: "this deployment cannot roll certificates over; ask your operator"}

// roller returns the console's Lifecycle as a certificateRoller.
func (c *console) roller() (certificateRoller, error) {
	cr, ok := c.cfg.Lifecycle.(certificateRoller)
	if !ok {
		return nil, errNoRollover
	}
	return cr, nil
}

// savedCertificates returns the certificates of the tenant's saved
// credential.
func (c *console) savedCertificates(ctx context.Context, s *session) (azure.CertificateCredential, error) {
	cr, err := c.roller()
	if err != nil {
		return azure.CertificateCredential{}, err
	}
	return certificatesOf(ctx, cr, s.tenant)
}

// certificates returns the certificates of k's credential for its page;
// nil when k has no saved certificate credential, when the Lifecycle
// cannot roll it over, or when it cannot be read (logged: the page still
// shows, and Test configuration names what is wrong with the credential).
func (c *console) certificates(ctx context.Context, s *session, k lifecycle.CustomerKey) *azure.CertificateCredential {
	cr, ok := c.cfg.Lifecycle.(certificateRoller)
	if !ok || azureOptions(k.Settings).Credential != azure.CredentialCertificate || !k.SecretSet || k.State == lifecycle.StateRotating {
		return nil
	}
	cc, err := certificatesOf(ctx, cr, s.tenant)
	if err != nil {
		c.log.WarnContext(ctx, "console: reading the certificate credential", "tenant", s.tenant, "err", err)
		return nil
	}
	return &cc
}

// startRollover generates the next certificate of the tenant's
// certificate credential (Lifecycle.StartCredentialRollover); the page
// then offers it for download.
func (c *console) startRollover(w http.ResponseWriter, r *http.Request, s *session) {
	cr, err := c.roller()
	if err == nil {
		_, err = cr.StartCredentialRollover(r.Context(), actor(s), s.tenant)
	}
	c.done(w, r, s, err, c.tenantURL(s.tenant, "")+"#certificate",
		"Next certificate generated. Download it, upload it to your app registration (Certificates & secrets › Certificates › Upload), then finish the rollover. Both certificates are accepted until you finish.")
}

// finishRollover makes the next certificate the current one once Test
// configuration passes with it alone (Lifecycle.FinishCredentialRollover).
func (c *console) finishRollover(w http.ResponseWriter, r *http.Request, s *session) {
	cr, err := c.roller()
	if err == nil {
		_, err = cr.FinishCredentialRollover(r.Context(), actor(s), s.tenant)
	}
	c.done(w, r, s, err, c.tenantURL(s.tenant, "")+"#certificate",
		"Rollover finished: byok signs in with the new certificate only. You may delete the old certificate from your app registration.")
}
