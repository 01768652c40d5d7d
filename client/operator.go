package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The routes an operator token may call: tenants, tokens, the platform
// key and the audit log of every chain.

// CreateTenant creates tenant id with policy ("grace", "strict", or ""
// for grace) and declares its scopes. It answers [ErrExists] if the id is
// taken.
func (c *Client) CreateTenant(ctx context.Context, id, policy string, scopes []string) (Tenant, error) {
	body := struct {
		ID     string   `json:"id"`
		Policy string   `json:"policy,omitempty"`
		Scopes []string `json:"scopes,omitempty"`
	}{id, policy, scopes}
	var t Tenant
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tenants"), body: body}, &t)
	return t, err
}

// Page selects a page of a list: up to Limit items (0: the server's
// default of 100, at most 1000) after the id After ("": from the start).
type Page struct {
	After string
	Limit int
}

func (pg Page) query() url.Values {
	q := url.Values{}
	if pg.After != "" {
		q.Set("after", pg.After)
	}
	if pg.Limit != 0 {
		q.Set("limit", strconv.Itoa(pg.Limit))
	}
	return q
}

// ListTenants lists tenants in id order.
func (c *Client) ListTenants(ctx context.Context, pg Page) ([]Tenant, error) {
	var out struct {
		Tenants []Tenant `json:"tenants"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tenants"), query: pg.query()}, &out)
	return out.Tenants, err
}

// Tenant returns tenant id; [ErrNotFound] if there is none.
func (c *Client) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tenants", id)}, &t)
	return t, err
}

// SetPolicy sets the tenant's outage policy: "grace" serves from cache
// while the vault is briefly unreachable, "strict" fails closed at once.
func (c *Client) SetPolicy(ctx context.Context, tenant, policy string) (Tenant, error) {
	body := struct {
		Policy string `json:"policy"`
	}{policy}
	var t Tenant
	err := c.do(ctx, request{method: http.MethodPut, path: p("v1", "tenants", tenant, "policy"), body: body}, &t)
	return t, err
}

// TokenRequest describes a token to issue.
type TokenRequest struct {
	// Kind is "operator", "tenant-admin" or "service".
	Kind string `json:"kind"`
	// Tenants are the tenants of the token: none for an operator token,
	// exactly one for a tenant-admin token, one or more for a service
	// token.
	Tenants []string `json:"tenants,omitempty"`
	// Name labels the token (at most 200 bytes).
	Name string `json:"name,omitempty"`
	// TTL is the token's lifetime; 0 means the server's default (720h).
	TTL time.Duration `json:"-"`
}

// CreateToken issues a token. The answer's Token field holds the token's
// text, which the server shows this once: hand it to its holder and do not
// log it.
func (c *Client) CreateToken(ctx context.Context, r TokenRequest) (Token, error) {
	body := struct {
		TokenRequest
		TTL string `json:"ttl,omitempty"`
	}{TokenRequest: r}
	if r.TTL != 0 {
		body.TTL = r.TTL.String()
	}
	var t Token
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tokens"), body: body}, &t)
	return t, err
}

// ListTokens lists token records (never their text) in id order.
func (c *Client) ListTokens(ctx context.Context, pg Page) ([]Token, error) {
	var out struct {
		Tokens []Token `json:"tokens"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tokens"), query: pg.query()}, &out)
	return out.Tokens, err
}

// Token returns the record of token id (the 32 hex digits after
// byok_<kind>_).
func (c *Client) Token(ctx context.Context, id string) (Token, error) {
	var t Token
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tokens", id)}, &t)
	return t, err
}

// RevokeToken revokes token id: the token fails from its next request on
// the server that answered, and within the server's token cache time
// (5 s by default) on its other replicas. Revoking a revoked token is not
// an error.
func (c *Client) RevokeToken(ctx context.Context, id string) (Token, error) {
	var t Token
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tokens", id, "revoke")}, &t)
	return t, err
}

// PlatformKey describes the platform root key.
func (c *Client) PlatformKey(ctx context.Context) (PlatformKey, error) {
	var k PlatformKey
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "platform-key")}, &k)
	return k, err
}

// PlatformInventory counts the shares under each version of the platform
// root key.
func (c *Client) PlatformInventory(ctx context.Context) (Inventory, error) {
	var inv Inventory
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "platform-key", "inventory")}, &inv)
	return inv, err
}

// PlatformRekey is the state of the platform re-key: what is left under
// older versions of the platform root key (the same on every replica) and
// the answering replica's latest run.
type PlatformRekey struct {
	// Current is the versioned id of the key's current version.
	Current string `json:"current"`
	// Remaining counts the shares and sealed credentials still under
	// older versions; 0 means every older version is safe to retire.
	Remaining int `json:"remaining"`
	// Run is the replica's latest run; nil if none ran there.
	Run *PlatformRun `json:"run,omitempty"`
}

// PlatformRun is one run of the platform re-key.
type PlatformRun struct {
	ID     string `json:"id"`
	Target string `json:"target"`
	// State is "running", "done" or "failed".
	State    string    `json:"state"`
	Total    int       `json:"total"`
	Done     int       `json:"done"`
	Failed   int       `json:"failed"`
	Error    string    `json:"error"`
	Actor    Actor     `json:"actor"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// Job returns the run as a [Job] of kind "platform-rekey", for progress
// displays.
func (r PlatformRun) Job() Job {
	return Job{ID: r.ID, Kind: "platform-rekey", State: r.State, Done: int64(r.Done), Total: int64(r.Total), Error: r.Error, Actor: r.Actor}
}

// StartPlatformRekey starts moving everything under older versions of the
// platform root key onto its current version, or returns the run already
// in progress on the answering replica.
func (c *Client) StartPlatformRekey(ctx context.Context) (PlatformRekey, error) {
	var r PlatformRekey
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "platform-key", "rekey")}, &r)
	return r, err
}

// PlatformRekey reads the state of the platform re-key.
func (c *Client) PlatformRekey(ctx context.Context) (PlatformRekey, error) {
	var r PlatformRekey
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "platform-key", "rekey")}, &r)
	return r, err
}

// WaitPlatformRekey reads the state of the platform re-key every interval,
// passing it to progress if not nil, until the run with id has finished
// (or, when the answering replica does not know it, nothing is left), and
// returns the last state.
func (c *Client) WaitPlatformRekey(ctx context.Context, id string, interval time.Duration, progress func(PlatformRekey)) (PlatformRekey, error) {
	if interval <= 0 {
		return PlatformRekey{}, fmt.Errorf("client: WaitPlatformRekey's interval is %s; give a positive one, such as 1s", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r, err := c.PlatformRekey(ctx)
		if err != nil {
			return r, err
		}
		if progress != nil {
			progress(r)
		}
		mine := r.Run != nil && r.Run.ID == id
		if (mine && r.Run.State != "running") || (!mine && r.Remaining == 0) {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-t.C:
		}
	}
}

// AuditQuery selects audit events. The zero value selects every event of
// the chain the route reads.
type AuditQuery struct {
	// Tenant selects one tenant's chain; All every chain. Neither selects
	// the platform chain. They apply to the operator routes only (a tenant
	// admin reads its own chain).
	Tenant string
	All    bool
	// Since and Until bound the events' times; zero means unbounded.
	Since, Until time.Time
	// Action keeps the events whose action starts with it ("key.").
	Action string
	// Cursor continues a listing from AuditPage.NextCursor; Limit caps
	// the page (0: 100). Exports ignore both.
	Cursor string
	Limit  int
}

func (q AuditQuery) values(list bool) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("tenant", q.Tenant)
	if q.All {
		v.Set("all", "true")
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	set("action", q.Action)
	if list {
		set("cursor", q.Cursor)
		if q.Limit != 0 {
			v.Set("limit", strconv.Itoa(q.Limit))
		}
	}
	return v
}

// Audit lists a page of the audit log with an operator token: the
// platform chain, q.Tenant's, or every chain (q.All).
func (c *Client) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	var pg AuditPage
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "audit"), query: q.values(true)}, &pg)
	return pg, err
}

// AuditExport writes the selected events to w as JSON lines (the format of
// docs/audit.md, which `byok audit verify` checks) with an operator token,
// and returns the bytes written.
func (c *Client) AuditExport(ctx context.Context, q AuditQuery, w io.Writer) (int64, error) {
	return c.export(ctx, p("v1", "audit", "export"), q.values(false), w)
}

// TenantAudit lists a page of the tenant's own audit chain with a
// tenant-admin token; q.Tenant and q.All are not sent.
func (c *Client) TenantAudit(ctx context.Context, tenant string, q AuditQuery) (AuditPage, error) {
	q.Tenant, q.All = "", false
	var pg AuditPage
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tenants", tenant, "audit"), query: q.values(true)}, &pg)
	return pg, err
}

// TenantAuditExport writes the tenant's own audit chain to w as JSON lines
// with a tenant-admin token, and returns the bytes written.
func (c *Client) TenantAuditExport(ctx context.Context, tenant string, q AuditQuery, w io.Writer) (int64, error) {
	q.Tenant, q.All = "", false
	return c.export(ctx, p("v1", "tenants", tenant, "audit", "export"), q.values(false), w)
}

func (c *Client) export(ctx context.Context, path string, q url.Values, w io.Writer) (int64, error) {
	res, err := c.send(ctx, request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	return io.Copy(w, res.Body)
}
