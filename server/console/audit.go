package console

import (
	"net/http"
	"net/url"
	"time"

	"github.com/openbyok/byok/audit"
)

// auditPrefixes are the action filters the audit page offers.
var auditPrefixes = []struct{ Value, Label string }{
	{"", "All events"}, {"key.", "Key changes (key.*)"}, {"vault.", "Vault calls (vault.*)"}, {"usage", "Usage counts"},
}

// auditQuery is the audit page's filter form.
type auditQuery struct {
	Action string
	Since  string // YYYY-MM-DD, UTC, inclusive
	Until  string // YYYY-MM-DD, UTC, inclusive
}

// filter turns q into an audit filter of tenant, or returns a message
// saying which field is wrong.
func (q auditQuery) filter(tenant string) (audit.Filter, string) {
	f := audit.Filter{Tenant: tenant, ActionPrefix: q.Action}
	if q.Since != "" {
		t, err := time.Parse(time.DateOnly, q.Since)
		if err != nil {
			return f, "From: " + q.Since + " is not a date (YYYY-MM-DD)"
		}
		f.Since = t
	}
	if q.Until != "" {
		t, err := time.Parse(time.DateOnly, q.Until)
		if err != nil {
			return f, "To: " + q.Until + " is not a date (YYYY-MM-DD)"
		}
		f.Until = t.Add(24 * time.Hour)
	}
	return f, ""
}

// encode returns q as a query string.
func (q auditQuery) encode() string {
	v := url.Values{}
	for k, s := range map[string]string{"action": q.Action, "since": q.Since, "until": q.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

func readAuditQuery(r *http.Request) auditQuery {
	qs := r.URL.Query()
	return auditQuery{Action: qs.Get("action"), Since: qs.Get("since"), Until: qs.Get("until")}
}

// auditPage lists the tenant's audit events, 100 a page, with filters.
func (c *console) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := readAuditQuery(r)
	f, msg := q.filter(s.tenant)
	p := c.basePage(s, "Audit log", "audit")
	data := map[string]any{"Query": q, "Prefixes": auditPrefixes, "Export": c.tenantURL(s.tenant, "audit/export?"+q.encode())}
	p.Data = data
	if msg != "" {
		p.Error = msg
		c.render(w, r, http.StatusBadRequest, "audit", p)
		return
	}
	events, next, err := c.cfg.Audit.List(r.Context(), f, r.URL.Query().Get("cursor"), 100)
	if err != nil {
		if m, user := userMessage(err); user {
			p.Error = m
			c.render(w, r, http.StatusBadRequest, "audit", p)
			return
		}
		c.internal(w, r, s, err)
		return
	}
	data["Events"] = events
	if next != "" {
		v, _ := url.ParseQuery(q.encode())
		v.Set("cursor", next)
		data["Next"] = c.tenantURL(s.tenant, "audit?"+v.Encode())
	}
	c.render(w, r, http.StatusOK, "audit", p)
}

// auditExport streams the filtered events as JSON lines (docs/audit.md).
func (c *console) auditExport(w http.ResponseWriter, r *http.Request, s *session) {
	f, msg := readAuditQuery(r).filter(s.tenant)
	if msg != "" {
		c.renderError(w, r, s, http.StatusBadRequest, msg)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="byok-audit-`+url.PathEscape(s.tenant)+`.jsonl"`)
	w.Header().Set("Cache-Control", "no-store")
	if _, err := c.cfg.Audit.Export(r.Context(), w, f); err != nil {
		// The status is sent; the log says why the file is short.
		c.log.ErrorContext(r.Context(), "console audit export failed", "tenant", s.tenant, "err", err)
	}
}
