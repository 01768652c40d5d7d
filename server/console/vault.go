package console

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/lifecycle"
)

// progressTester is the part of [lifecycle.Service] that streams Test
// configuration; a Config.Lifecycle without it gets the report when the
// test ends.
type progressTester interface {
	TestWithProgress(ctx context.Context, actor audit.Actor, tenant string, progress func(lifecycle.Check)) (lifecycle.Report, error)
}

// keyLister is the part of [lifecycle.Service] that lists a vault's keys
// for the key picker; without it the picker says to type the identifier.
type keyLister interface {
	ListVaultKeys(ctx context.Context, actor audit.Actor, tenant, vaultURL string) ([]lifecycle.VaultKey, error)
}

// Markers in the testrun page where the streamed rows and the result go
// (elements, not comments: html/template drops comments). They are cut
// out of the page.
const (
	rowsMarker   = `<tr hidden data-stream="rows"></tr>`
	resultMarker = `<div hidden data-stream="result"></div>`
)

// testrunView is the data of the streamed Test configuration page.
type testrunView struct {
	Report *lifecycle.Report // set for the result part only
	Error  string
}

// test runs Test configuration on the saved settings and streams the
// report: the page up to the table is sent at once, then one row per check
// as soon as the lifecycle reports it (each flushed), then the result.
// The report is stored by the lifecycle exactly as Test stores it. A
// refusal before any check ran (state, unknown tenant) goes back to the
// setup page with its text, as before.
func (c *console) test(w http.ResponseWriter, r *http.Request, s *session) {
	pt, ok := c.cfg.Lifecycle.(progressTester)
	if !ok {
		c.testWhole(w, r, s)
		return
	}
	p := c.basePage(s, "Test configuration", "setup")
	p.Prefix = c.cfg.Prefix
	p.Data = testrunView{}
	var buf bytes.Buffer
	if err := c.pages["testrun"].ExecuteTemplate(&buf, "layout", p); err != nil {
		c.internal(w, r, s, err)
		return
	}
	head, rest, ok1 := strings.Cut(buf.String(), rowsMarker)
	middle, tail, ok2 := strings.Cut(rest, resultMarker)
	if !ok1 || !ok2 {
		c.internal(w, r, s, errors.New("console: the testrun template lacks its stream markers"))
		return
	}

	// Nothing is sent until the first check, so that a refusal can still
	// redirect.
	flusher := http.NewResponseController(w)
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no") // reverse proxies: do not buffer the stream
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(head))
	}
	row := func(ch lifecycle.Check) {
		start()
		if err := c.pages["testrun"].ExecuteTemplate(w, "check-row", ch); err != nil {
			c.log.ErrorContext(r.Context(), "console template failed", "page", "testrun", "err", err)
		}
		flusher.Flush()
	}
	rep, err := pt.TestWithProgress(r.Context(), actor(s), s.tenant, row)
	if err != nil && !started {
		c.done(w, r, s, err, c.tenantURL(s.tenant, "setup")+"#report", "")
		return
	}
	start()
	w.Write([]byte(middle))
	res := testrunView{Report: &rep}
	if err != nil {
		msg, user := userMessage(err)
		if !user {
			c.log.ErrorContext(r.Context(), "console test failed", "err", err)
			msg = "the test stopped before its end; run it again"
		}
		res = testrunView{Error: msg}
	}
	p.Data = res
	if err := c.pages["testrun"].ExecuteTemplate(w, "result", p); err != nil {
		c.log.ErrorContext(r.Context(), "console template failed", "page", "testrun", "err", err)
	}
	w.Write([]byte(tail))
}

// testWhole runs Test configuration and shows the report on the setup
// page when it ends.
func (c *console) testWhole(w http.ResponseWriter, r *http.Request, s *session) {
	rep, err := c.cfg.Lifecycle.Test(r.Context(), actor(s), s.tenant)
	if err == nil && !rep.Passed() {
		c.sessions.setFlash(s, false, "Test configuration failed. Fix what the report says and test again.")
		http.Redirect(w, r, c.tenantURL(s.tenant, "setup")+"#report", http.StatusSeeOther)
		return
	}
	c.done(w, r, s, err, c.tenantURL(s.tenant, "setup")+"#report", "Test configuration passed: every check passed or warned.")
}

// keysView is the data of the key picker.
type keysView struct {
	Vault string
	Keys  []lifecycle.VaultKey
	// Error is why the vault could not be listed, in words the admin can
	// act on.
	Error string
}

// keysPage lists the keys and versions of a vault with the saved
// credential: each key links back to the setup page with its versionless
// identifier (follows rotation) and each version with its versioned one
// (pinned). The listing is a vault call, audited by the lifecycle.
func (c *console) keysPage(w http.ResponseWriter, r *http.Request, s *session) {
	vault := strings.TrimSpace(r.URL.Query().Get("vault"))
	v := keysView{Vault: vault}
	kl, ok := c.cfg.Lifecycle.(keyLister)
	switch {
	case !ok:
		v.Error = "this platform cannot list a vault's keys; type the key identifier on the setup page"
	case vault == "":
		v.Error = "enter the vault's URL, e.g. https://contoso.vault.azure.net"
	default:
		if id, err := azurekv.ParseVaultURL(vault); err == nil {
			v.Vault = id.VaultURL()
		}
		keys, err := kl.ListVaultKeys(r.Context(), actor(s), s.tenant, v.Vault)
		if err != nil {
			msg, user := vaultMessage(err)
			if !user {
				c.internal(w, r, s, err)
				return
			}
			v.Error = msg
		}
		v.Keys = keys
	}
	p := c.basePage(s, "Keys in your vault", "setup")
	p.Data = v
	c.render(w, r, http.StatusOK, "keys", p)
}

// vaultMessage is userMessage for errors of a vault listing: the vault's
// classified refusal and an unsupported connector are shown too.
func vaultMessage(err error) (string, bool) {
	if msg, ok := userMessage(err); ok {
		return msg, true
	}
	var ke *kms.Error
	switch {
	case errors.As(err, &ke) && ke.Class == kms.Authoritative:
		return "the vault refused to list its keys (" + string(ke.Reason) + "): " + err.Error() +
			"; save a credential that works (Test configuration tells what is missing) and give it a role with keys/read, such as Key Vault Crypto User", true
	case errors.As(err, &ke):
		return "the vault could not be reached (" + string(ke.Reason) + "): " + err.Error() + "; retry later", true
	case errors.Is(err, errors.ErrUnsupported):
		return err.Error(), true
	}
	return "", false
}
