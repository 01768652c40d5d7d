package console

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// pageNames are the templates/*.html files that are pages; each is parsed
// with layout.html.
var pageNames = []string{"signin", "error", "operator", "status", "setup", "confirm", "audit", "testrun", "keys", "oidc"}

// page is what every template gets.
type page struct {
	Title  string
	Prefix string
	// Who is the signed-in user ("tenant admin of contoso"); "" when
	// signed out.
	Who    string
	Tenant string
	// Nav names the current tab: "status", "setup", "audit", "operator".
	Nav   string
	CSRF  string
	Flash *flash
	Error string
	Data  any
}

var funcs = template.FuncMap{
	"when":      when,
	"jobpct":    jobPercent,
	"jobcount":  jobCount,
	"lastcheck": lastCheck,
	"version":   keyVersion,
	"badge":     badge,
	"ms":        func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) },
	"lower":     strings.ToLower,
	"thumb":     thumb,
	"azure":     azureOptions,
	"provider":  providerLabel,
	"awsaccess": awsAccess,
}

// azureOptions are the Azure options of settings (zero when they are not
// Azure's), for the pages that show them.
func azureOptions(s lifecycle.KeySettings) azure.Options {
	o, _ := azure.OptionsOf(s)
	return o
}

// thumb is the short SHA-256 thumbprint of a certificate, as Test
// configuration shows it; the portal shows the full one.
func thumb(c *x509.Certificate) string {
	return (&azurekv.Certificate{Cert: c}).ThumbprintSHA256()[:16]
}

// pageParts are the further templates/*.html files a page is parsed with:
// the setup page's provider forms.
var pageParts = map[string][]string{"setup": {"templates/setup_aws.html", "templates/setup_gcp.html"}}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		files := append([]string{"templates/layout.html", "templates/" + name + ".html"}, pageParts[name]...)
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return nil, fmt.Errorf("console: parsing template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page with status. The template runs into a buffer
// first, so a template error becomes a clean 500.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Prefix = c.cfg.Prefix
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		c.log.ErrorContext(r.Context(), "console template failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// basePage fills the fields of p that come from the session.
func (c *console) basePage(s *session, title, nav string) page {
	p := page{Title: title, Nav: nav}
	if s != nil {
		p.CSRF = s.csrf
		p.Tenant = s.tenant
		p.Flash = c.sessions.takeFlash(s)
		p.Who = "operator"
		if s.tenant != "" {
			p.Who = "tenant admin of " + s.tenant
		}
		if s.name != "" {
			p.Who = s.name + ", " + p.Who
		}
	}
	return p
}

// renderError writes the error page with status and msg; s may be nil.
func (c *console) renderError(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	p := c.basePage(s, http.StatusText(status), "")
	p.Error = msg
	p.Data = status
	c.render(w, r, status, "error", p)
}

// internal logs err with an id and shows the id, never err's text.
func (c *console) internal(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	c.log.ErrorContext(r.Context(), "console internal error", "error_id", id, "path", r.URL.Path, "err", err)
	c.renderError(w, r, s, http.StatusInternalServerError, "Something went wrong on the server. Quote error id "+id+" to your operator.")
}

// done ends an action: a refusal the user can act on goes back to to
// with its text, anything else is internal; success goes to to with ok.
func (c *console) done(w http.ResponseWriter, r *http.Request, s *session, err error, to, ok string) {
	if err != nil {
		msg, user := userMessage(err)
		if !user {
			c.internal(w, r, s, err)
			return
		}
		c.sessions.setFlash(s, false, msg)
	} else {
		c.sessions.setFlash(s, true, ok)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// when formats a time for people, in UTC; "—" for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// lastCheck says how the last check of the key went and when: after a
// revocation the last check failed, and its time is when the refusal was
// detected, not the last success (which may be none in this replica).
func lastCheck(h *byok.KeyHealth) string {
	if h == nil {
		return "—"
	}
	since := "; last success " + when(h.LastSuccess)
	if h.LastSuccess.IsZero() {
		since = "; no success since this replica started"
	}
	switch h.State {
	case byok.StateRevoked:
		return "failed: access to the key was refused, detected " + when(h.DetectedAt) + since
	case byok.StateHealthy:
		return "passed " + when(h.LastSuccess)
	case byok.StateDegraded, byok.StateUnavailable:
		reason := string(h.Reason)
		if reason == "" {
			reason = "no answer"
		}
		return "failing (" + reason + ")" + since
	}
	return "not checked yet in this replica"
}

// pct is done/total as a whole percentage, 100 when total is 0 or less.
func pct(done, total int64) int64 {
	if total <= 0 || done >= total {
		return 100
	}
	return done * 100 / total
}

// keyVersion returns the version part of an Azure key id
// (…/keys/<name>/<version>), or "" if it has none.
func keyVersion(keyID string) string {
	_, rest, ok := strings.Cut(keyID, "/keys/")
	if !ok {
		return ""
	}
	_, v, _ := strings.Cut(rest, "/")
	return v
}

// badge returns the CSS class of a badge for a state, outcome or health
// word: ok, warn, bad or neutral.
func badge(v any) string {
	switch strings.ToLower(fmt.Sprint(v)) {
	case "pass", "active", "healthy", "success", "done", "restored", "true":
		return "ok"
	case "warn", "scheduled", "rotating", "running", "pending", "unavailable", "stale", "draft":
		return "warn"
	case "fail", "revoked", "failure", "failed", "denied", "false":
		return "bad"
	}
	return "neutral"
}

// allowedOps returns, for each operation, nil if the rules allow it now
// or the lifecycle's refusal, from [lifecycle.Allowed].
// Keys are the operations' names, as templates spell them.
func allowedOps(k lifecycle.CustomerKey, now time.Time) map[string]error {
	enforced := !k.EnforceAt.IsZero() && !now.Before(k.EnforceAt)
	m := map[string]error{}
	for _, op := range lifecycle.Ops {
		m[string(op)] = lifecycle.Allowed(k.Tenant, k.State, enforced, op)
	}
	return m
}
