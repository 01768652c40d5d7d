package server

import (
	"encoding/json"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server/token"
)

// The JSON shapes of the API's answers: snake_case, times in RFC 3339 (UTC),
// absent zero times. They are documented in docs/openapi.yaml.

// at returns t in UTC, or nil for the zero time.
func at(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

type tokenView struct {
	ID      string     `json:"id"`
	Kind    token.Kind `json:"kind"`
	Tenants []string   `json:"tenants"`
	Name    string     `json:"name"`
	Created *time.Time `json:"created,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
	Revoked *time.Time `json:"revoked,omitempty"`
	// Token is the token's text, in the answer that creates it only.
	Token string `json:"token,omitempty"`
}

func viewToken(r token.Record) tokenView {
	ts := r.Tenants
	if ts == nil {
		ts = []string{}
	}
	return tokenView{ID: r.ID, Kind: r.Kind, Tenants: ts, Name: r.Name, Created: at(r.Created), Expires: at(r.Expires), Revoked: at(r.Revoked)}
}

type tenantView struct {
	ID      string          `json:"id"`
	Policy  string          `json:"policy"`
	Created *time.Time      `json:"created,omitempty"`
	State   lifecycle.State `json:"state"`
}

// settingsView shows saved settings: the provider's own fields (its
// Options, empty ones left out) beside the provider, the key id and
// whether a secret is set.
type settingsView struct {
	Provider  string          `json:"provider"`
	KeyID     string          `json:"key_id"`
	Options   json.RawMessage `json:"-"`
	SecretSet bool            `json:"secret_set"`
}

// MarshalJSON implements json.Marshaler.
func (v settingsView) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	var options map[string]any
	if json.Unmarshal(v.Options, &options) == nil {
		for k, o := range options {
			if o != nil && o != "" {
				m[k] = o
			}
		}
	}
	m["provider"], m["key_id"], m["secret_set"] = v.Provider, v.KeyID, v.SecretSet
	return json.Marshal(m)
}

type coverageView struct {
	All     bool     `json:"all"`
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

func viewCoverage(c lifecycle.Coverage) coverageView {
	return coverageView{All: c.All, Include: c.Include, Exclude: c.Exclude}
}

type scopeView struct {
	Scope        string `json:"scope"`
	Kind         string `json:"kind"`
	Covered      bool   `json:"covered"`
	PlatformOnly bool   `json:"platform_only"`
}

type healthView struct {
	Kind        string     `json:"kind"`
	Epoch       uint32     `json:"epoch"`
	State       string     `json:"state"`
	Policy      string     `json:"policy"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	DetectedAt  *time.Time `json:"detected_at,omitempty"`
}

type checkView struct {
	Name       string            `json:"name"`
	Outcome    lifecycle.Outcome `json:"outcome"`
	Detail     string            `json:"detail"`
	Remedy     string            `json:"remedy,omitempty"`
	DurationMS float64           `json:"duration_ms"`
}

type reportView struct {
	Passed bool        `json:"passed"`
	KeyID  string      `json:"key_id,omitempty"`
	Checks []checkView `json:"checks"`
	At     *time.Time  `json:"at,omitempty"`
}

func viewReport(r lifecycle.Report) reportView {
	v := reportView{Passed: r.Passed(), KeyID: r.KeyID, Checks: []checkView{}, At: at(r.At)}
	for _, c := range r.Checks {
		v.Checks = append(v.Checks, checkView{Name: c.Name, Outcome: c.Outcome, Detail: c.Detail, Remedy: c.Remedy,
			DurationMS: float64(c.Duration) / float64(time.Millisecond)})
	}
	return v
}

type jobView struct {
	ID       string             `json:"id"`
	Tenant   string             `json:"tenant"`
	Kind     lifecycle.JobKind  `json:"kind"`
	State    lifecycle.JobState `json:"state"`
	Done     int64              `json:"done"`
	Total    int64              `json:"total"`
	Attempts int                `json:"attempts"`
	Error    string             `json:"error,omitempty"`
	Actor    audit.Actor        `json:"actor"`
	Created  *time.Time         `json:"created,omitempty"`
	Updated  *time.Time         `json:"updated,omitempty"`
}

func viewJob(j lifecycle.Job) jobView {
	return jobView{ID: j.ID, Tenant: j.Tenant, Kind: j.Kind, State: j.State, Done: j.Done, Total: j.Total,
		Attempts: j.Attempts, Error: j.Error, Actor: j.Actor, Created: at(j.Created), Updated: at(j.Updated)}
}

type keyView struct {
	Tenant       string          `json:"tenant"`
	State        lifecycle.State `json:"state"`
	Settings     settingsView    `json:"settings"`
	EnforceAt    *time.Time      `json:"enforce_at,omitempty"`
	ActivatedAt  *time.Time      `json:"activated_at,omitempty"`
	Coverage     coverageView    `json:"coverage"`
	Scopes       []scopeView     `json:"scopes"`
	LastTest     *reportView     `json:"last_test,omitempty"`
	CurrentKeyID string          `json:"current_key_id,omitempty"`
	Epoch        uint32          `json:"epoch,omitempty"`
	Health       []healthView    `json:"health"`
	Job          *jobView        `json:"job,omitempty"`
	Updated      *time.Time      `json:"updated,omitempty"`
}

func viewKey(k lifecycle.CustomerKey) keyView {
	v := keyView{
		Tenant: k.Tenant, State: k.State,
		Settings:  settingsView{Provider: k.Settings.Provider, KeyID: k.Settings.KeyID, Options: k.Settings.Options, SecretSet: k.SecretSet},
		EnforceAt: at(k.EnforceAt), ActivatedAt: at(k.ActivatedAt), Coverage: viewCoverage(k.Coverage),
		Scopes: []scopeView{}, CurrentKeyID: k.CurrentKeyID, Epoch: k.Epoch, Health: []healthView{}, Updated: at(k.Updated),
	}
	for _, s := range k.Scopes {
		v.Scopes = append(v.Scopes, scopeView{Scope: s.Scope, Kind: s.Kind.String(), Covered: s.Covered, PlatformOnly: s.PlatformOnly})
	}
	if k.LastTest != nil {
		r := viewReport(*k.LastTest)
		v.LastTest = &r
	}
	for _, h := range k.Health {
		v.Health = append(v.Health, viewHealth(h))
	}
	if k.Job != nil {
		j := viewJob(*k.Job)
		v.Job = &j
	}
	return v
}

func viewHealth(h byok.KeyHealth) healthView {
	return healthView{Kind: h.Kind.String(), Epoch: h.Epoch, State: string(h.State), Policy: h.Policy.String(),
		LastSuccess: at(h.LastSuccess), Reason: string(h.Reason), DetectedAt: at(h.DetectedAt)}
}

type versionView struct {
	KeyID        string `json:"key_id"`
	Shares       int    `json:"shares"`
	Current      bool   `json:"current"`
	SafeToRetire bool   `json:"safe_to_retire"`
}

type inventoryView struct {
	Versions []versionView `json:"versions"`
}

type timelineEntry struct {
	Kind       lifecycle.HealthEventKind `json:"kind"`
	Reason     string                    `json:"reason,omitempty"`
	DetectedAt *time.Time                `json:"detected_at,omitempty"`
	EnforcedAt *time.Time                `json:"enforced_at,omitempty"`
	Replica    string                    `json:"replica,omitempty"`
}

type auditPage struct {
	Events     []audit.Event `json:"events"`
	NextCursor string        `json:"next_cursor,omitempty"`
}
