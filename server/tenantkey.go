package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle"
)

// settingsRequest is a tenant admin's key settings: the provider, the
// key id, the write-only secret (never returned; leaving it out keeps the
// stored one while the settings need the same kind of secret), and the
// provider's own fields (for Azure: directory_id, client_id, credential),
// which go to its connector as the settings' Options, the object of every
// other field of the request.
type settingsRequest struct {
	Provider string
	KeyID    *string
	Secret   string
	Options  json.RawMessage
	// bad names a neutral field that is not a string; settings reports it.
	bad string
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *settingsRequest) UnmarshalJSON(b []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	*r = settingsRequest{}
	for name, dst := range map[string]*string{"provider": &r.Provider, "secret": &r.Secret} {
		if v, ok := fields[name]; ok {
			if json.Unmarshal(v, dst) != nil {
				r.bad = name
			}
			delete(fields, name)
		}
	}
	if v, ok := fields["key_id"]; ok {
		r.KeyID = new(string)
		if json.Unmarshal(v, r.KeyID) != nil {
			r.bad = "key_id"
		}
		delete(fields, "key_id")
	}
	if len(fields) > 0 {
		r.Options, _ = json.Marshal(fields) // raw values: never fails
	}
	return nil
}

func (r settingsRequest) settings(field string) (lifecycle.KeySettings, error) {
	if r.bad != "" {
		return lifecycle.KeySettings{}, &byok.InputError{Arg: field + r.bad, Reason: "must be a string"}
	}
	if err := required(field+"key_id", r.KeyID); err != nil {
		return lifecycle.KeySettings{}, err
	}
	return lifecycle.KeySettings{Provider: r.Provider, KeyID: *r.KeyID, Options: r.Options, Secret: lifecycle.NewSecret(r.Secret)}, nil
}

type coverageRequest struct {
	All     *bool    `json:"all"`
	Include []string `json:"include"`
	Exclude []string `json:"exclude"`
}

// coverage returns the coverage of r; All defaults to true when nothing is
// listed in Include, as a new key covers every scope by default.
func (r coverageRequest) coverage(field string) (lifecycle.Coverage, error) {
	for _, l := range []struct {
		name string
		ids  []string
	}{{"include", r.Include}, {"exclude", r.Exclude}} {
		for i, sc := range l.ids {
			if err := checkID(fmt.Sprintf("%s%s[%d]", field, l.name, i), sc); err != nil {
				return lifecycle.Coverage{}, err
			}
		}
	}
	all := len(r.Include) == 0
	if r.All != nil {
		all = *r.All
	}
	return lifecycle.Coverage{All: all, Include: r.Include, Exclude: r.Exclude}, nil
}

func (s *server) keyStatus(c *call) (any, error) {
	k, err := s.keys.Status(c.ctx, c.tenant())
	if err != nil {
		return nil, err
	}
	return viewKey(k), nil
}

func (s *server) configure(c *call) (any, error) {
	var req settingsRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	st, err := req.settings("")
	if err != nil {
		return nil, err
	}
	k, err := s.admin.Configure(c.ctx, c.actor(), c.tenant(), st)
	if err != nil {
		return nil, err
	}
	return viewKey(k), nil
}

// noBody reads an optional empty JSON object: routes without parameters
// take no body or {}, and refuse anything else.
func noBody(c *call) error {
	var req struct{}
	return decode(c, &req, true)
}

func (s *server) test(c *call) (any, error) {
	if err := noBody(c); err != nil {
		return nil, err
	}
	r, err := s.admin.Test(c.ctx, c.actor(), c.tenant())
	if err != nil {
		return nil, err
	}
	return viewReport(r), nil
}

type proceedRequest struct {
	EnforceAt *string          `json:"enforce_at"`
	Coverage  *coverageRequest `json:"coverage"`
}

func (s *server) proceed(c *call) (any, error) {
	var req proceedRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	if err := required("enforce_at", req.EnforceAt); err != nil {
		return nil, err
	}
	when, err := parseTime("enforce_at", *req.EnforceAt)
	if err != nil {
		return nil, err
	}
	var cov *lifecycle.Coverage
	if req.Coverage != nil {
		v, err := req.Coverage.coverage("coverage.")
		if err != nil {
			return nil, err
		}
		cov = &v
	}
	k, err := s.admin.Proceed(c.ctx, c.actor(), c.tenant(), when, cov)
	if err != nil {
		return nil, err
	}
	return viewKey(k), nil
}

func (s *server) setScopes(c *call) (any, error) {
	var req coverageRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	cov, err := req.coverage("")
	if err != nil {
		return nil, err
	}
	k, err := s.admin.SetScopes(c.ctx, c.actor(), c.tenant(), cov)
	if err != nil {
		return nil, err
	}
	return viewKey(k), nil
}

type rotateRequest struct {
	KeyID    string           `json:"key_id"`
	Settings *settingsRequest `json:"settings"`
}

func (s *server) rotate(c *call) (any, error) {
	var req rotateRequest
	if err := decode(c, &req, true); err != nil {
		return nil, err
	}
	if req.KeyID != "" && req.Settings != nil {
		return nil, &byok.InputError{Arg: "key_id", Reason: "and settings are both given; give key_id for a new version of the same key, or settings for another key"}
	}
	rr := lifecycle.RotateRequest{KeyID: req.KeyID}
	if req.Settings != nil {
		st, err := req.Settings.settings("settings.")
		if err != nil {
			return nil, err
		}
		rr.Settings = &st
	}
	j, err := s.admin.Rotate(c.ctx, c.actor(), c.tenant(), rr)
	if err != nil {
		return nil, err
	}
	return viewJob(j), nil
}

func (s *server) rekey(c *call) (any, error) {
	if err := noBody(c); err != nil {
		return nil, err
	}
	j, err := s.admin.Rekey(c.ctx, c.actor(), c.tenant())
	if err != nil {
		return nil, err
	}
	c.status = http.StatusAccepted
	return viewJob(j), nil
}

func (s *server) disable(c *call) (any, error) {
	if err := noBody(c); err != nil {
		return nil, err
	}
	j, err := s.admin.Disable(c.ctx, c.actor(), c.tenant())
	if err != nil {
		return nil, err
	}
	c.status = http.StatusAccepted
	return viewJob(j), nil
}

func (s *server) inventory(c *call) (any, error) {
	vs, err := s.keys.Inventory(c.ctx, c.tenant())
	if err != nil {
		return nil, err
	}
	out := inventoryView{Versions: []versionView{}}
	for _, v := range vs {
		out.Versions = append(out.Versions, versionView{KeyID: v.KeyID, Shares: v.Shares, Current: v.Current, SafeToRetire: v.SafeToRetire})
	}
	return out, nil
}

func (s *server) timeline(c *call) (any, error) {
	n, err := limit(c)
	if err != nil {
		return nil, err
	}
	es, err := s.keys.Timeline(c.ctx, c.tenant(), n)
	if err != nil {
		return nil, err
	}
	out := struct {
		Events []timelineEntry `json:"events"`
	}{Events: []timelineEntry{}}
	for _, e := range es {
		out.Events = append(out.Events, timelineEntry{Kind: e.Kind, Reason: string(e.Reason), DetectedAt: at(e.DetectedAt),
			EnforcedAt: at(e.EnforcedAt), Replica: e.Replica})
	}
	return out, nil
}

func (s *server) job(c *call) (any, error) {
	id := c.r.PathValue("job")
	if err := checkID("job", id); err != nil {
		return nil, err
	}
	j, err := s.keys.Job(c.ctx, c.tenant(), id)
	if err != nil {
		return nil, err
	}
	return viewJob(j), nil
}
