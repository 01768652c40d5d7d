package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server/token"
)

// Page sizes of list routes.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// Token lifetimes the API accepts.
const (
	defaultTokenTTL = 30 * 24 * time.Hour
	maxTokenTTL     = 366 * 24 * time.Hour
)

// limit parses the query parameter limit (default defaultLimit).
func limit(c *call) (int, error) {
	s := c.r.URL.Query().Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, &byok.InputError{Arg: "limit", Reason: fmt.Sprintf("is %q; it must be a whole number from 1 to %d", s, maxLimit)}
	}
	return n, nil
}

// parsePolicy parses "grace" or "strict".
func parsePolicy(field, s string) (byok.Policy, error) {
	switch s {
	case "grace":
		return byok.Grace, nil
	case "strict":
		return byok.Strict, nil
	}
	return 0, &byok.InputError{Arg: field, Reason: fmt.Sprintf("is %q; it must be \"grace\" (serve from cache while the vault is briefly unreachable) or \"strict\" (fail closed at once)", s)}
}

type createTenantRequest struct {
	ID     *string  `json:"id"`
	Policy string   `json:"policy"`
	Scopes []string `json:"scopes"`
}

func (s *server) createTenant(c *call) (any, error) {
	var req createTenantRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	if err := required("id", req.ID); err != nil {
		return nil, err
	}
	if err := checkID("id", *req.ID); err != nil {
		return nil, err
	}
	if req.Policy == "" {
		req.Policy = "grace"
	}
	policy, err := parsePolicy("policy", req.Policy)
	if err != nil {
		return nil, err
	}
	for i, sc := range req.Scopes {
		if err := checkID(fmt.Sprintf("scopes[%d]", i), sc); err != nil {
			return nil, err
		}
	}
	if err := s.tenants.CreateTenant(c.ctx, c.actor(), *req.ID, policy, req.Scopes); err != nil {
		return nil, err
	}
	c.status = http.StatusCreated
	return s.tenantView(c, *req.ID)
}

func (s *server) tenantView(c *call, id string) (tenantView, error) {
	t, err := s.cfg.Store.Tenant(c.ctx, id)
	if err != nil {
		return tenantView{}, err
	}
	k, err := s.keys.Status(c.ctx, id)
	if err != nil {
		return tenantView{}, err
	}
	return tenantView{ID: t.ID, Policy: t.Policy.String(), Created: at(t.Created), State: k.State}, nil
}

func (s *server) listTenants(c *call) (any, error) {
	n, err := limit(c)
	if err != nil {
		return nil, err
	}
	ts, err := s.tenants.ListTenants(c.ctx, c.r.URL.Query().Get("after"), n)
	if err != nil {
		return nil, err
	}
	out := struct {
		Tenants []tenantView `json:"tenants"`
	}{Tenants: []tenantView{}}
	for _, t := range ts {
		out.Tenants = append(out.Tenants, tenantView{ID: t.ID, Policy: t.Policy.String(), Created: at(t.Created), State: t.State})
	}
	return out, nil
}

func (s *server) getTenant(c *call) (any, error) {
	return s.tenantView(c, c.tenant())
}

type policyRequest struct {
	Policy *string `json:"policy"`
}

func (s *server) setPolicy(c *call) (any, error) {
	var req policyRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	if err := required("policy", req.Policy); err != nil {
		return nil, err
	}
	p, err := parsePolicy("policy", *req.Policy)
	if err != nil {
		return nil, err
	}
	if err := s.tenants.SetPolicy(c.ctx, c.actor(), c.tenant(), p); err != nil {
		return nil, err
	}
	return s.tenantView(c, c.tenant())
}

type createTokenRequest struct {
	Kind    *string  `json:"kind"`
	Tenants []string `json:"tenants"`
	Name    string   `json:"name"`
	TTL     string   `json:"ttl"`
}

func (s *server) createToken(c *call) (any, error) {
	var req createTokenRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	if err := required("kind", req.Kind); err != nil {
		return nil, err
	}
	kind := token.Kind(*req.Kind)
	if !kind.Valid() {
		return nil, &byok.InputError{Arg: "kind", Reason: fmt.Sprintf("is %q; it must be %q, %q or %q", kind, token.Operator, token.TenantAdmin, token.Service)}
	}
	for i, t := range req.Tenants {
		if err := checkID(fmt.Sprintf("tenants[%d]", i), t); err != nil {
			return nil, err
		}
	}
	if len(req.Name) > 200 {
		return nil, &byok.InputError{Arg: "name", Reason: fmt.Sprintf("is %d bytes, the limit is 200", len(req.Name))}
	}
	ttl := defaultTokenTTL
	if req.TTL != "" {
		var err error
		if ttl, err = parseDuration("ttl", req.TTL); err != nil {
			return nil, err
		}
		if ttl <= 0 || ttl > maxTokenTTL {
			return nil, &byok.InputError{Arg: "ttl", Reason: fmt.Sprintf("is %s; it must be positive and at most %s", ttl, maxTokenTTL)}
		}
	}
	text, rec, err := issueToken(c.ctx, s.cfg.Store, kind, req.Tenants, req.Name, ttl, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	after, _ := json.Marshal(map[string]any{"kind": rec.Kind, "tenants": rec.Tenants, "name": rec.Name, "expires": rec.Expires})
	s.record(c, audit.Event{Actor: c.actor(), Action: "token.create", Target: rec.ID, After: after, Outcome: audit.Success})
	v := viewToken(rec)
	v.Token = text
	c.status = http.StatusCreated
	return v, nil
}

func (s *server) listTokens(c *call) (any, error) {
	n, err := limit(c)
	if err != nil {
		return nil, err
	}
	rs, err := s.cfg.Store.ListTokens(c.ctx, c.r.URL.Query().Get("after"), n)
	if err != nil {
		return nil, err
	}
	out := struct {
		Tokens []tokenView `json:"tokens"`
	}{Tokens: []tokenView{}}
	for _, r := range rs {
		out.Tokens = append(out.Tokens, viewToken(r))
	}
	return out, nil
}

// tokenID returns the validated {id} of a token route.
func tokenID(c *call) (string, error) {
	id := c.r.PathValue("id")
	if !token.ValidID(id) {
		return "", &byok.InputError{Arg: "id", Reason: fmt.Sprintf("is not a token id (%d lowercase hex digits, the part after byok_<kind>_)", token.IDLen)}
	}
	return id, nil
}

func (s *server) getToken(c *call) (any, error) {
	id, err := tokenID(c)
	if err != nil {
		return nil, err
	}
	r, err := s.cfg.Store.Token(c.ctx, id)
	if err != nil {
		return nil, err
	}
	return viewToken(r), nil
}

func (s *server) revokeToken(c *call) (any, error) {
	id, err := tokenID(c)
	if err != nil {
		return nil, err
	}
	var req struct{}
	if err := decode(c, &req, true); err != nil {
		return nil, err
	}
	if err := s.tokens.RevokeToken(c.ctx, id, s.cfg.Now()); err != nil {
		return nil, err
	}
	r, err := s.tokens.Token(c.ctx, id)
	if err != nil {
		return nil, err
	}
	s.record(c, audit.Event{Actor: c.actor(), Action: "token.revoke", Target: id, Outcome: audit.Success})
	return viewToken(r), nil
}

// record appends e to the audit log; a failure is logged, since the
// action it records has happened.
func (s *server) record(c *call, e audit.Event) {
	if _, err := s.cfg.Audit.Record(c.ctx, e); err != nil {
		s.log.ErrorContext(c.ctx, "audit record failed", "action", e.Action, "target", e.Target, "err", err)
	}
}

type platformKeyView struct {
	KeyID         string     `json:"key_id"`
	Version       string     `json:"version"`
	Type          string     `json:"type"`
	Size          int        `json:"size,omitempty"`
	Enabled       bool       `json:"enabled"`
	NotBefore     *time.Time `json:"not_before,omitempty"`
	Expires       *time.Time `json:"expires,omitempty"`
	RecoveryLevel string     `json:"recovery_level,omitempty"`
	Shares        int        `json:"shares"`
}

// recoveryReporter is the optional interface of a platform key provider
// that reports how its keys survive deletion: azurekv's Provider gives Key
// Vault's recovery level ("Recoverable" is soft delete with purge
// protection), which GET /v1/platform-key shows as recovery_level. The
// instrumented provider of [Metrics.InstrumentProvider] has it too, and
// returns "" when the provider it wraps does not.
type recoveryReporter interface {
	RecoveryLevel(ctx context.Context, keyID string) (string, error)
}

func (s *server) platformKey(c *call) (any, error) {
	info, err := s.cfg.PlatformKMS.Describe(c.ctx, s.cfg.PlatformKeyID)
	if err != nil {
		return nil, platformKeyError(err)
	}
	var level string
	if r, ok := s.cfg.PlatformKMS.(recoveryReporter); ok {
		if level, err = r.RecoveryLevel(c.ctx, s.cfg.PlatformKeyID); err != nil {
			return nil, platformKeyError(err)
		}
	}
	inv, err := s.platformVersions(c)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, v := range inv {
		n += v.Shares
	}
	return platformKeyView{KeyID: s.cfg.PlatformKeyID, Version: info.KeyID, Type: info.Type, Size: info.Size, Enabled: info.Enabled,
		NotBefore: at(info.NotBefore), Expires: at(info.Expires), RecoveryLevel: level, Shares: n}, nil
}

func (s *server) platformInventory(c *call) (any, error) {
	inv, err := s.platformVersions(c)
	if err != nil {
		return nil, err
	}
	return inventoryView{Versions: inv}, nil
}

// platformVersions lists the versions of the platform root key with the
// shares and sealed credentials under each; a version nothing depends on
// is safe to retire.
func (s *server) platformVersions(c *call) ([]versionView, error) {
	inv, err := s.platform.PlatformInventory(c.ctx)
	if err != nil {
		var ke *kms.Error
		if errors.As(err, &ke) {
			return nil, platformKeyError(err)
		}
		return nil, err
	}
	vs := make([]versionView, len(inv))
	for i, v := range inv {
		vs[i] = versionView{KeyID: v.KeyID, Shares: v.Shares, Current: v.Current, SafeToRetire: v.SafeToRetire}
	}
	return vs, nil
}

// platformRekeyView is the state of the platform re-key: this replica's
// latest run, if any, and what is left under older versions, which every
// replica reads alike from the store.
type platformRekeyView struct {
	Run       *platformRunView `json:"run,omitempty"`
	Current   string           `json:"current"`
	Remaining int              `json:"remaining"`
}

type platformRunView struct {
	ID       string             `json:"id"`
	Target   string             `json:"target"`
	State    lifecycle.JobState `json:"state"`
	Total    int                `json:"total"`
	Done     int                `json:"done"`
	Failed   int                `json:"failed"`
	Error    string             `json:"error,omitempty"`
	Actor    audit.Actor        `json:"actor"`
	Started  *time.Time         `json:"started,omitempty"`
	Finished *time.Time         `json:"finished,omitempty"`
}

func (s *server) startPlatformRekey(c *call) (any, error) {
	if err := noBody(c); err != nil {
		return nil, err
	}
	run, err := s.platform.StartPlatformRekey(c.ctx, c.actor())
	if err != nil {
		return nil, platformKeyError(err)
	}
	c.status = http.StatusAccepted
	return s.platformRekeyState(c, &run)
}

func (s *server) platformRekey(c *call) (any, error) {
	run, err := s.platform.PlatformRekeyStatus("")
	switch {
	case errors.Is(err, byok.ErrNotFound):
		return s.platformRekeyState(c, nil)
	case err != nil:
		return nil, err
	}
	return s.platformRekeyState(c, &run)
}

// platformRekeyState answers with run and the shares left under versions
// other than the current one.
func (s *server) platformRekeyState(c *call, run *lifecycle.PlatformRekey) (any, error) {
	vs, err := s.platformVersions(c)
	if err != nil {
		return nil, err
	}
	v := platformRekeyView{}
	for _, ver := range vs {
		if ver.Current {
			v.Current = ver.KeyID
		} else {
			v.Remaining += ver.Shares
		}
	}
	if run != nil {
		v.Run = &platformRunView{ID: run.ID, Target: run.Target, State: run.State, Total: run.Total, Done: run.Done, Failed: run.Failed,
			Error: run.Error, Actor: run.Actor, Started: at(run.Started), Finished: at(run.Finished)}
	}
	return v, nil
}

// platformKeyError reports a failure of the platform root key as 503: the
// whole service depends on it.
func platformKeyError(err error) error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, RetryAfter: 5 * time.Second,
		Message: "the platform root key cannot be described: " + err.Error() + "; check the platform key provider"}
}

// auditFilter reads the query parameters since, until and action.
func auditFilter(c *call, f audit.Filter) (audit.Filter, error) {
	q := c.r.URL.Query()
	var err error
	if v := q.Get("since"); v != "" {
		if f.Since, err = parseTime("since", v); err != nil {
			return f, err
		}
	}
	if v := q.Get("until"); v != "" {
		if f.Until, err = parseTime("until", v); err != nil {
			return f, err
		}
	}
	f.ActionPrefix = q.Get("action")
	return f, nil
}

// operatorChains selects the chains of an operator's audit read: the
// query parameter tenant, or all=true, or the platform chain.
func operatorChains(c *call) (audit.Filter, error) {
	q := c.r.URL.Query()
	t, all := q.Get("tenant"), q.Get("all")
	switch {
	case all != "" && all != "true" && all != "false":
		return audit.Filter{}, &byok.InputError{Arg: "all", Reason: fmt.Sprintf("is %q; it must be true or false", all)}
	case t != "" && all == "true":
		return audit.Filter{}, &byok.InputError{Arg: "tenant", Reason: "and all=true select different chains; give one of them"}
	case t != "":
		if err := checkID("tenant", t); err != nil {
			return audit.Filter{}, err
		}
		return audit.Filter{Tenant: t}, nil
	case all == "true":
		return audit.Filter{All: true}, nil
	}
	return audit.Filter{Platform: true}, nil
}

func (s *server) operatorAudit(c *call) (any, error) {
	f, err := operatorChains(c)
	if err != nil {
		return nil, err
	}
	return s.auditList(c, f)
}

func (s *server) operatorAuditExport(c *call) (any, error) {
	f, err := operatorChains(c)
	if err != nil {
		return nil, err
	}
	return s.auditExport(c, f)
}

func (s *server) tenantAudit(c *call) (any, error) {
	return s.auditList(c, audit.Filter{Tenant: c.tenant()})
}

func (s *server) tenantAuditExport(c *call) (any, error) {
	return s.auditExport(c, audit.Filter{Tenant: c.tenant()})
}

func (s *server) auditList(c *call, f audit.Filter) (any, error) {
	f, err := auditFilter(c, f)
	if err != nil {
		return nil, err
	}
	n, err := limit(c)
	if err != nil {
		return nil, err
	}
	es, next, err := s.cfg.Audit.List(c.ctx, f, c.r.URL.Query().Get("cursor"), n)
	if err != nil {
		return nil, err
	}
	if es == nil {
		es = []audit.Event{}
	}
	return auditPage{Events: es, NextCursor: next}, nil
}

// auditExport streams the events as JSON lines. An error before the first
// byte is an error response; after it, the stream is cut short and the
// error logged: a client that verifies the exported chain sees the gap.
func (s *server) auditExport(c *call, f audit.Filter) (any, error) {
	f, err := auditFilter(c, f)
	if err != nil {
		return nil, err
	}
	w := &firstWrite{w: c.w}
	if _, err := s.cfg.Audit.Export(c.ctx, w, f); err != nil {
		if !w.started {
			return nil, err
		}
		s.log.ErrorContext(c.ctx, "audit export cut short", "err", err)
	}
	if !w.started { // no events: an empty, successful export
		w.start()
	}
	c.wrote = true
	return nil, nil
}

// firstWrite sets the headers of a JSON lines response on its first write.
type firstWrite struct {
	w       http.ResponseWriter
	started bool
}

func (f *firstWrite) start() {
	f.started = true
	f.w.Header().Set("Content-Type", "application/x-ndjson")
	f.w.Header().Set("Cache-Control", "no-store")
	f.w.WriteHeader(http.StatusOK)
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.started {
		f.start()
	}
	return f.w.Write(p)
}
