package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The routes a tenant-admin token may call on its tenant's customer key.

// Settings are the customer-key settings a tenant admin saves.
type Settings struct {
	// Provider is "" or "azure-key-vault".
	Provider string `json:"provider,omitempty"`
	// KeyID is the key identifier,
	// https://<vault>.vault.azure.net/keys/<name>[/<version>]. A
	// versionless id follows the key's current version.
	KeyID string `json:"key_id"`
	// DirectoryID is the directory (tenant) id of the key's vault; with
	// "managed-identity" the platform's own, which "" also means.
	DirectoryID string `json:"directory_id,omitempty"`
	// ClientID is the app byok signs in as: the platform's app with
	// "platform-app", the customer's own with "client-secret",
	// "certificate" and "workload-identity", "" with "managed-identity".
	ClientID string `json:"client_id,omitempty"`
	// Credential is "platform-app", "client-secret", "certificate",
	// "managed-identity" (the platform's managed identity, vaults of the
	// platform's directory only) or "workload-identity" (the customer's
	// app trusts the platform's workload). The server refuses a mode its
	// operator has not configured, as a field error on "credential".
	Credential string `json:"credential,omitempty"`
	// Secret is the client secret, or the PEM key and certificate chain;
	// empty with the other modes. It is write-only: leaving it empty keeps
	// the stored one while the credential mode is unchanged.
	Secret string `json:"secret,omitempty"`
}

// Key returns the status of the tenant's customer key.
func (c *Client) Key(ctx context.Context, tenant string) (Key, error) {
	var k Key
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tenants", tenant, "key")}, &k)
	return k, err
}

// Configure saves the tenant's key settings. The key goes (back) to draft:
// it must pass Test and Proceed again. After the enforcement date the
// server refuses with [ErrInvalidState]: rotate instead.
func (c *Client) Configure(ctx context.Context, tenant string, s Settings) (Key, error) {
	var k Key
	err := c.do(ctx, request{method: http.MethodPut, path: p("v1", "tenants", tenant, "key"), body: s}, &k)
	return k, err
}

// Test runs Test configuration on the saved settings. A failed check is in
// the report (Passed false), not an error.
func (c *Client) Test(ctx context.Context, tenant string) (Report, error) {
	var r Report
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tenants", tenant, "key", "test")}, &r)
	return r, err
}

// Proceed schedules activation of the tested settings at enforceAt, with
// coverage (nil: every scope but the platform-only ones). It needs a
// passing test of exactly the saved settings, or answers
// [ErrInvalidState].
func (c *Client) Proceed(ctx context.Context, tenant string, enforceAt time.Time, coverage *Coverage) (Key, error) {
	body := struct {
		EnforceAt string    `json:"enforce_at"`
		Coverage  *Coverage `json:"coverage,omitempty"`
	}{enforceAt.UTC().Format(time.RFC3339Nano), coverage}
	var k Key
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tenants", tenant, "key", "proceed"), body: body}, &k)
	return k, err
}

// SetScopes changes which scopes the customer key covers. Once the key is
// active, the answer's Job moves the scopes' DEKs.
func (c *Client) SetScopes(ctx context.Context, tenant string, coverage Coverage) (Key, error) {
	var k Key
	err := c.do(ctx, request{method: http.MethodPut, path: p("v1", "tenants", tenant, "key", "scopes"), body: coverage}, &k)
	return k, err
}

// Rotation asks for a rotation: KeyID for a new version of the same key,
// Settings for another key or vault (tested first), neither for the key's
// current version. Giving both is refused.
type Rotation struct {
	KeyID    string    `json:"key_id,omitempty"`
	Settings *Settings `json:"settings,omitempty"`
}

// Rotate re-wraps the tenant's customer share under the new key version
// (at most 2 vault calls) and returns the finished job.
func (c *Client) Rotate(ctx context.Context, tenant string, r Rotation) (Job, error) {
	var j Job
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tenants", tenant, "key", "rotate"), body: r}, &j)
	return j, err
}

// Rekey starts a new tenant-key epoch and returns its job, which re-wraps
// every DEK in the background: poll it with [Client.Job] or
// [Client.WaitJob].
func (c *Client) Rekey(ctx context.Context, tenant string) (Job, error) {
	var j Job
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tenants", tenant, "key", "rekey")}, &j)
	return j, err
}

// Disable turns BYOK off: the customer share goes back under the platform
// key and the scopes move back, in the returned job. It is refused with
// [ErrInvalidState] when the customer key is already unreachable (disable
// must come before revoke).
func (c *Client) Disable(ctx context.Context, tenant string) (Job, error) {
	var j Job
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tenants", tenant, "key", "disable")}, &j)
	return j, err
}

// Inventory counts the shares under each version of the tenant's customer
// key and marks the versions safe to retire.
func (c *Client) Inventory(ctx context.Context, tenant string) (Inventory, error) {
	var inv Inventory
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tenants", tenant, "key", "inventory")}, &inv)
	return inv, err
}

// Timeline returns up to limit (0: 100) revocations, unavailabilities and
// restorations of the tenant's key.
func (c *Client) Timeline(ctx context.Context, tenant string, limit int) ([]TimelineEvent, error) {
	var q url.Values
	if limit != 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out struct {
		Events []TimelineEvent `json:"events"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tenants", tenant, "key", "timeline"), query: q}, &out)
	return out.Events, err
}

// Job returns job id of the tenant.
func (c *Client) Job(ctx context.Context, tenant, id string) (Job, error) {
	var j Job
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tenants", tenant, "key", "jobs", id)}, &j)
	return j, err
}

// WaitJob polls job id every interval until it is finished, calling
// progress (if not nil) with each state read, the first at once. It
// returns the finished job, or the error of a poll, or ctx's error. A job
// that finished as failed is returned without error: check its State. The
// interval must be positive.
func (c *Client) WaitJob(ctx context.Context, tenant, id string, interval time.Duration, progress func(Job)) (Job, error) {
	if interval <= 0 {
		return Job{}, fmt.Errorf("client: WaitJob's interval is %s; give a positive one, such as 1s", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		j, err := c.Job(ctx, tenant, id)
		if err != nil {
			return j, err
		}
		if progress != nil {
			progress(j)
		}
		if j.Finished() {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-t.C:
		}
	}
}

// Identities returns the platform's identities the tenant may let reach
// its key (credentials "managed-identity" and "workload-identity"), with
// the setup commands for the saved key.
func (c *Client) Identities(ctx context.Context, tenant string) (Identities, error) {
	var ids Identities
	err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "tenants", tenant, "key", "identities")}, &ids)
	return ids, err
}
