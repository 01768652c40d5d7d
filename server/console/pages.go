package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/aws"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/lifecycle/gcp"
)

// actor is the audit actor of a session: its token, as the API names it.
func actor(s *session) audit.Actor {
	return audit.Actor{Kind: audit.ActorKind(s.kind), ID: s.subject}
}

// customerHealth returns the health of the tenant's newest
// customer-managed key in this process, or nil.
func customerHealth(k lifecycle.CustomerKey) *byok.KeyHealth {
	var h *byok.KeyHealth
	for i := range k.Health {
		if k.Health[i].Kind == byok.CustomerManaged && (h == nil || k.Health[i].Epoch > h.Epoch) {
			h = &k.Health[i]
		}
	}
	return h
}

// operatorRow is one tenant on the operator page.
type operatorRow struct {
	Tenant lifecycle.TenantSummary
	Key    lifecycle.CustomerKey
	Health *byok.KeyHealth
}

// operatorPage lists every tenant with its key state and health, 100 at
// a time from the "after" cursor.
func (c *console) operatorPage(w http.ResponseWriter, r *http.Request, s *session) {
	const pageSize = 100
	after := r.URL.Query().Get("after")
	ts, err := c.cfg.Lifecycle.ListTenants(r.Context(), after, pageSize)
	if err != nil {
		c.internal(w, r, s, err)
		return
	}
	rows := make([]operatorRow, 0, len(ts))
	counts := map[lifecycle.State]int{}
	for _, t := range ts {
		k, err := c.cfg.Lifecycle.Status(r.Context(), t.ID)
		if err != nil {
			c.internal(w, r, s, err)
			return
		}
		rows = append(rows, operatorRow{Tenant: t, Key: k, Health: customerHealth(k)})
		counts[k.State]++
	}
	next := ""
	if len(ts) == pageSize {
		next = ts[len(ts)-1].ID
	}
	p := c.basePage(s, "Tenants", "operator")
	p.Data = map[string]any{"Rows": rows, "Next": next, "Counts": counts, "States": lifecycle.States}
	c.render(w, r, http.StatusOK, "operator", p)
}

// statusView is the data of the status page.
type statusView struct {
	Key       lifecycle.CustomerKey
	Health    *byok.KeyHealth
	Allowed   map[string]error
	Timeline  []lifecycle.HealthEvent
	Inventory []lifecycle.VersionCount
	History   []audit.Event
	Chart     chart
	// Rollover is the tenant's certificate credential; nil unless the
	// credential is a certificate.
	Rollover *azure.CertificateCredential
}

// statusPage shows the tenant's key: state, versions, health, timeline,
// chart, inventory, jobs and the actions its state allows.
func (c *console) statusPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	k, err := c.cfg.Lifecycle.Status(ctx, s.tenant)
	if err != nil {
		c.internal(w, r, s, err)
		return
	}
	v := statusView{Key: k, Health: customerHealth(k), Allowed: allowedOps(k, c.cfg.Now())}
	v.Rollover = c.certificates(ctx, s, k)
	if v.Timeline, err = c.cfg.Lifecycle.Timeline(ctx, s.tenant, 20); err != nil {
		c.internal(w, r, s, err)
		return
	}
	if v.Inventory, err = c.cfg.Lifecycle.Inventory(ctx, s.tenant); err != nil {
		c.internal(w, r, s, err)
		return
	}
	now := c.cfg.Now()
	events, err := c.recentEvents(r, audit.Filter{Tenant: s.tenant, Since: now.Add(-chartWindow)}, 5000)
	if err != nil {
		c.internal(w, r, s, err)
		return
	}
	v.Chart = buildChart(events, now)
	keyEvents, err := c.recentEvents(r, audit.Filter{Tenant: s.tenant, ActionPrefix: "key."}, 5000)
	if err != nil {
		c.internal(w, r, s, err)
		return
	}
	for _, e := range slices.Backward(keyEvents) {
		switch e.Action {
		case "key.activate", "key.rotate", "key.rekey", "key.rekeyed", "key.disable", "key.revoked", "key.restored":
			v.History = append(v.History, e)
		}
		if len(v.History) == 20 {
			break
		}
	}
	p := c.basePage(s, "Enterprise Key", "status")
	p.Data = v
	c.render(w, r, http.StatusOK, "status", p)
}

// recentEvents returns the last max events matching f, oldest first.
func (c *console) recentEvents(r *http.Request, f audit.Filter, max int) ([]audit.Event, error) {
	var all []audit.Event
	cursor := ""
	for {
		evs, next, err := c.cfg.Audit.List(r.Context(), f, cursor, audit.MaxListLimit)
		if err != nil {
			return nil, err
		}
		all = append(all, evs...)
		if len(all) > max {
			all = all[len(all)-max:]
		}
		if next == "" {
			return all, nil
		}
		cursor = next
	}
}

// setupView is the data of the setup page.
type setupView struct {
	Key           lifecycle.CustomerKey
	Allowed       map[string]error
	PlatformAppID string
	ConsentURL    string
	SPCommand     string
	// OwnerTag is the tenant's id: with the platform's app, managed
	// identity or workload identity its key must carry the tag
	// byok-tenant=OwnerTag (azurekv.OwnerTagName).
	OwnerTag    string
	Certificate *azurekv.Certificate
	// PickedKeyID is a key identifier picked in the vault's key list
	// (the key_id query parameter); it fills the key identifier field.
	PickedKeyID string
	// Vault is the URL of the saved key's vault, for the key picker.
	Vault string
	// EnforceMin is the earliest enforcement date the form offers, in
	// the datetime-local input's format (UTC).
	EnforceMin     string
	EnforceDefault string
	// Rollover is the tenant's certificate credential; nil unless the
	// saved credential is a certificate.
	Rollover *azure.CertificateCredential
	// Identities are the platform's own identities offered to tenants
	// (managed identity, workload identity); RoleCommand gives the managed
	// identity its role on the saved key (placeholders before one is
	// saved), FederatedCommand adds the federated credential to the
	// tenant's app.
	Identities       azure.PlatformIdentities
	RoleCommand      string
	FederatedCommand string
	// MINotOffered and WINotOffered say why a mode is not offered.
	MINotOffered, WINotOffered string
	providerView
}

// identitySteps fills v's platform identities and their commands for the
// tenant's saved settings.
func (c *console) identitySteps(ctx context.Context, v *setupView) {
	v.Identities = azure.IdentitiesOf(ctx, c.cfg.Lifecycle)
	v.MINotOffered = v.Identities.NotOffered[azure.CredentialManagedIdentity]
	v.WINotOffered = v.Identities.NotOffered[azure.CredentialWorkloadIdentity]
	v.RoleCommand, v.FederatedCommand = v.Identities.SetupCommands(v.Key.Settings)
}

// setupPage shows Create key, Test configuration, the enforcement date,
// the scope selection and Proceed.
func (c *console) setupPage(w http.ResponseWriter, r *http.Request, s *session) {
	k, err := c.cfg.Lifecycle.Status(r.Context(), s.tenant)
	if err != nil {
		c.internal(w, r, s, err)
		return
	}
	now := c.cfg.Now().UTC()
	v := setupView{Key: k, Allowed: allowedOps(k, now), PlatformAppID: c.cfg.PlatformAppID,
		Certificate: c.sessions.certificate(s), PickedKeyID: strings.TrimSpace(r.URL.Query().Get("key_id")),
		EnforceMin: now.Add(time.Minute).Format(dateTimeLocal), EnforceDefault: now.Add(7 * 24 * time.Hour).Format(dateTimeLocal)}
	if id, err := azurekv.ParseVaultURL(k.Settings.KeyID); err == nil {
		v.Vault = id.VaultURL()
	}
	v.Rollover = c.certificates(r.Context(), s, k)
	v.OwnerTag = s.tenant
	c.identitySteps(r.Context(), &v)
	c.providerSteps(r, s, &v)
	if c.cfg.PlatformAppID != "" {
		dir := azureOptions(k.Settings).DirectoryID
		if dir == "" {
			dir = "<your-directory-id>"
		}
		v.ConsentURL = azurekv.AdminConsentURL(dir, c.cfg.PlatformAppID)
		v.SPCommand = azurekv.CreateServicePrincipalCommand(c.cfg.PlatformAppID)
	}
	p := c.basePage(s, "Set up your key", "setup")
	p.Data = v
	c.render(w, r, http.StatusOK, "setup", p)
}

// dateTimeLocal is the value format of <input type="datetime-local">.
const dateTimeLocal = "2006-01-02T15:04"

// configure saves the Create key form through Lifecycle.Configure: the
// AWS form (provider aws-kms) by configureAWS, the GCP form (gcp-kms)
// by configureGCP, else the Azure one. With
// the certificate credential and no pasted PEM, the certificate generated
// in this session is used.
func (c *console) configure(w http.ResponseWriter, r *http.Request, s *session) {
	if r.PostFormValue("provider") == aws.Provider {
		c.configureAWS(w, r, s)
		return
	}
	if r.PostFormValue("provider") == gcp.Provider {
		c.configureGCP(w, r, s)
		return
	}
	o := azure.Options{DirectoryID: strings.TrimSpace(r.PostFormValue("directory_id")),
		ClientID: strings.TrimSpace(r.PostFormValue("client_id")), Credential: azure.CredentialMode(r.PostFormValue("credential"))}
	var secret lifecycle.Secret
	switch o.Credential {
	case azure.CredentialPlatformApp:
		o.ClientID = c.cfg.PlatformAppID
	case azure.CredentialManagedIdentity:
		o.ClientID = "" // the identity is the platform's
	case azure.CredentialClientSecret:
		secret = lifecycle.NewSecret(r.PostFormValue("secret"))
	case azure.CredentialCertificate:
		if cert := c.sessions.certificate(s); cert != nil {
			sec, err := azure.CertificateSecret(cert)
			if err != nil {
				c.internal(w, r, s, err)
				return
			}
			secret = sec
		}
	}
	settings := azure.Settings(strings.TrimSpace(r.PostFormValue("key_id")), o, secret)
	_, err := c.cfg.Lifecycle.Configure(r.Context(), actor(s), s.tenant, settings)
	c.done(w, r, s, err, c.tenantURL(s.tenant, "setup"), "Settings saved. Run Test configuration next.")
}

// coverageOf reads the scope checkboxes: every selectable scope checked
// means all scopes, present and future.
func coverageOf(r *http.Request, k lifecycle.CustomerKey) lifecycle.Coverage {
	chosen := r.PostForm["scope"]
	var include []string
	all := true
	for _, sc := range k.Scopes {
		if sc.PlatformOnly {
			continue
		}
		if slices.Contains(chosen, sc.Scope) {
			include = append(include, sc.Scope)
		} else {
			all = false
		}
	}
	if all {
		return lifecycle.AllScopes
	}
	return lifecycle.Coverage{Include: include}
}

// proceed shows a summary to confirm, then calls Lifecycle.Proceed.
func (c *console) proceed(w http.ResponseWriter, r *http.Request, s *session) {
	k, err := c.cfg.Lifecycle.Status(r.Context(), s.tenant)
	if err != nil {
		c.internal(w, r, s, err)
		return
	}
	raw := r.PostFormValue("enforce_at")
	at, perr := time.ParseInLocation(dateTimeLocal, raw, time.UTC)
	if perr != nil {
		c.sessions.setFlash(s, false, "enforce_at: "+raw+" is not a date and time; pick one in the form (UTC)")
		http.Redirect(w, r, c.tenantURL(s.tenant, "setup")+"#proceed", http.StatusSeeOther)
		return
	}
	cov := coverageOf(r, k)
	if r.PostFormValue("confirm") != "yes" {
		p := c.basePage(s, "Confirm: proceed", "setup")
		p.Data = confirmView{Action: "proceed", Key: k, EnforceAt: at, Coverage: cov, RawEnforceAt: raw, Scopes: r.PostForm["scope"]}
		c.render(w, r, http.StatusOK, "confirm", p)
		return
	}
	_, err = c.cfg.Lifecycle.Proceed(r.Context(), actor(s), s.tenant, at, &cov)
	c.done(w, r, s, err, c.tenantURL(s.tenant, ""), "Scheduled: your key protects your data from "+when(at)+".")
}

// setScopes changes which scopes the key covers.
func (c *console) setScopes(w http.ResponseWriter, r *http.Request, s *session) {
	k, err := c.cfg.Lifecycle.Status(r.Context(), s.tenant)
	if err != nil {
		c.internal(w, r, s, err)
		return
	}
	_, err = c.cfg.Lifecycle.SetScopes(r.Context(), actor(s), s.tenant, coverageOf(r, k))
	c.done(w, r, s, err, c.tenantURL(s.tenant, ""), "Covered apps and bots saved.")
}

// confirmView is the data of a confirmation page.
type confirmView struct {
	Action       string
	Key          lifecycle.CustomerKey
	EnforceAt    time.Time
	RawEnforceAt string
	Coverage     lifecycle.Coverage
	Scopes       []string
}

// confirmPage explains what action will do and asks for confirmation.
func (c *console) confirmPage(action string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		k, err := c.cfg.Lifecycle.Status(r.Context(), s.tenant)
		if err != nil {
			c.internal(w, r, s, err)
			return
		}
		p := c.basePage(s, "Confirm: "+action, "status")
		p.Data = confirmView{Action: action, Key: k}
		c.render(w, r, http.StatusOK, "confirm", p)
	}
}

// rotate calls Lifecycle.Rotate: to the typed key version, or to the
// configured key's current version.
func (c *console) rotate(w http.ResponseWriter, r *http.Request, s *session) {
	job, err := c.cfg.Lifecycle.Rotate(r.Context(), actor(s), s.tenant, lifecycle.RotateRequest{KeyID: strings.TrimSpace(r.PostFormValue("key_id"))})
	c.done(w, r, s, err, c.tenantURL(s.tenant, "")+"#jobs", "Rotation "+string(job.State)+".")
}

// rekey calls Lifecycle.Rekey; the job runs in the background.
func (c *console) rekey(w http.ResponseWriter, r *http.Request, s *session) {
	_, err := c.cfg.Lifecycle.Rekey(r.Context(), actor(s), s.tenant)
	c.done(w, r, s, err, c.tenantURL(s.tenant, "")+"#jobs", "Re-key started; the progress bar follows it.")
}

// disable calls Lifecycle.Disable.
func (c *console) disable(w http.ResponseWriter, r *http.Request, s *session) {
	_, err := c.cfg.Lifecycle.Disable(r.Context(), actor(s), s.tenant)
	c.done(w, r, s, err, c.tenantURL(s.tenant, ""), "BYOK disabled: your data is going back to platform-managed keys.")
}

// jobView is the JSON the progress bar polls.
type jobView struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Done     int64  `json:"done"`
	Total    int64  `json:"total"`
	Percent  int64  `json:"percent"`
	Count    string `json:"count"` // "3 of 10", or what a job with nothing to move did
	Finished bool   `json:"finished"`
	Error    string `json:"error,omitempty"`
}

// jobJSON answers a job's progress as JSON.
func (c *console) jobJSON(w http.ResponseWriter, r *http.Request, s *session) {
	j, err := c.cfg.Lifecycle.Job(r.Context(), s.tenant, r.PathValue("job"))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		msg, user := userMessage(err)
		if !user {
			c.log.ErrorContext(r.Context(), "console job read failed", "err", err)
			w.WriteHeader(http.StatusInternalServerError)
			msg = "internal error"
		} else {
			w.WriteHeader(http.StatusNotFound)
		}
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	json.NewEncoder(w).Encode(jobView{ID: j.ID, Kind: string(j.Kind), State: string(j.State), Done: j.Done, Total: j.Total,
		Percent: jobPercent(j), Count: jobCount(j), Finished: j.Finished(), Error: j.Error})
}

// jobCount is a job's progress in items, "3 of 10"; a job with nothing to
// move (a tenant with no data under the key yet) says so instead of
// "0 of 0".
func jobCount(j lifecycle.Job) string {
	if j.Total == 0 {
		switch j.State {
		case lifecycle.JobDone:
			return "done: no data to move yet"
		case lifecycle.JobFailed:
			return "failed before moving any data"
		}
		return "counting the data to move…"
	}
	return fmt.Sprintf("%d of %d", j.Done, j.Total)
}

// jobPercent is a job's progress: 100 once it is done.
func jobPercent(j lifecycle.Job) int64 {
	if j.State == lifecycle.JobDone {
		return 100
	}
	p := pct(j.Done, j.Total)
	if p == 100 {
		return 99 // not done until the job says so
	}
	return p
}
