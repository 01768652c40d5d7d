package vault

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

func (s *Service) rotateKey(req *request) (result, *apiError) {
	if aerr := checkKeyName(req.key); aerr != nil {
		return result{}, aerr
	}
	s.mu.Lock()
	k, _, aerr := s.lookup(req)
	var seed rotationSeed
	if aerr == nil {
		seed = k.seed()
	}
	s.mu.Unlock()
	if aerr != nil {
		return result{}, aerr
	}
	kv, err := seed.generate(s.now()) // outside the lock: an RSA-4096 key takes a while
	if err != nil {
		return result{}, &apiError{status: http.StatusInternalServerError, code: "InternalServerError", msg: "kvemu could not generate the new key version."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, aerr = req.vault.addVersion(req.key, kv, s.now())
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.bundle(k, kv)}, nil
}

// jsonPolicy is a rotation policy on the wire.
type jsonPolicy struct {
	ID              string                `json:"id,omitempty"`
	LifetimeActions []jsonLifetimeAction  `json:"lifetimeActions"`
	Attributes      *jsonPolicyAttributes `json:"attributes,omitempty"`
}

type jsonLifetimeAction struct {
	Trigger struct {
		TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
		TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
	} `json:"trigger"`
	Action struct {
		Type string `json:"type"`
	} `json:"action"`
}

type jsonPolicyAttributes struct {
	ExpiryTime string `json:"expiryTime,omitempty"`
	Created    *int64 `json:"created,omitempty"`
	Updated    *int64 `json:"updated,omitempty"`
}

func (req *request) policyJSON(k *keyState) jsonPolicy {
	p := k.policy
	if p == nil {
		p = &rotationPolicy{LifetimeActions: []lifetimeAction{{TimeBeforeExpiry: "P30D", Action: "Notify"}}}
	}
	out := jsonPolicy{ID: req.base + "/keys/" + k.name + "/rotationpolicy", LifetimeActions: []jsonLifetimeAction{},
		Attributes: &jsonPolicyAttributes{ExpiryTime: p.ExpiryTime, Created: unix(p.Created), Updated: unix(p.Updated)}}
	for _, a := range p.LifetimeActions {
		var ja jsonLifetimeAction
		ja.Trigger.TimeAfterCreate, ja.Trigger.TimeBeforeExpiry, ja.Action.Type = a.TimeAfterCreate, a.TimeBeforeExpiry, a.Action
		out.LifetimeActions = append(out.LifetimeActions, ja)
	}
	return out
}

func (s *Service) getRotationPolicy(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.policyJSON(k)}, nil
}

func (s *Service) updateRotationPolicy(req *request) (result, *apiError) {
	var in jsonPolicy
	if aerr := decodeJSON(req.body, &in); aerr != nil {
		return result{}, aerr
	}
	p := &rotationPolicy{}
	if in.Attributes != nil {
		p.ExpiryTime = in.Attributes.ExpiryTime
	}
	for _, a := range in.LifetimeActions {
		action := a.Action.Type
		if strings.EqualFold(action, "rotate") {
			action = "Rotate"
		} else if strings.EqualFold(action, "notify") {
			action = "Notify"
		}
		p.LifetimeActions = append(p.LifetimeActions, lifetimeAction{
			TimeAfterCreate: a.Trigger.TimeAfterCreate, TimeBeforeExpiry: a.Trigger.TimeBeforeExpiry, Action: action})
	}
	if aerr := p.validate(); aerr != nil {
		return result{}, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	now := s.now()
	p.Created, p.Updated = now, now
	if k.policy != nil {
		p.Created = k.policy.Created
	}
	k.policy = p
	return result{body: req.policyJSON(k)}, nil
}

// backupPrefix marks kvemu backup blobs; they are readable only by kvemu.
const backupPrefix = "kvemu-key-backup-v1:"

func (s *Service) backupKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	ks := keySnapshot{Name: k.name, Policy: k.policy}
	for _, kv := range k.versions {
		vs, err := kv.snapshot()
		if err != nil {
			return result{}, &apiError{status: http.StatusInternalServerError, code: "InternalServerError", msg: "kvemu could not encode the key backup."}
		}
		ks.Versions = append(ks.Versions, vs)
	}
	b, _ := json.Marshal(ks)
	return result{body: map[string]string{"value": b64(append([]byte(backupPrefix), b...))}}, nil
}

func (s *Service) restoreKey(req *request) (result, *apiError) {
	var p struct {
		Value *string `json:"value"`
	}
	if aerr := decodeJSON(req.body, &p); aerr != nil {
		return result{}, aerr
	}
	if p.Value == nil {
		return result{}, badParameter("Property 'value' is required.")
	}
	raw, aerr := decodeB64("value", *p.Value)
	if aerr != nil {
		return result{}, aerr
	}
	blob, ok := strings.CutPrefix(string(raw), backupPrefix)
	var ks keySnapshot
	if !ok || json.Unmarshal([]byte(blob), &ks) != nil || !keyNameRE.MatchString(ks.Name) || len(ks.Versions) == 0 {
		return result{}, badParameter("Backup blob contains invalid or corrupt version.")
	}
	k := &keyState{name: ks.Name, policy: ks.Policy}
	for _, vs := range ks.Versions {
		kv, err := vs.restore()
		if err != nil {
			return result{}, badParameter("Backup blob contains invalid or corrupt version.")
		}
		k.versions = append(k.versions, kv)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := req.vault
	v.purgeExpired(s.now())
	lname := strings.ToLower(k.name)
	if v.keys[lname] != nil || v.deleted[lname] != nil {
		return result{}, &apiError{status: http.StatusConflict, code: "Conflict", msg: fmt.Sprintf(
			"Key %s already exists (or is deleted but recoverable); restore needs a free name.", k.name)}
	}
	v.keys[lname] = k
	return result{body: req.bundle(k, k.latest())}, nil
}

func (s *Service) randomBytes(req *request) (result, *apiError) {
	var p struct {
		Count *int `json:"count"`
	}
	if aerr := decodeJSON(req.body, &p); aerr != nil {
		return result{}, aerr
	}
	if p.Count == nil || *p.Count < 1 || *p.Count > 128 {
		return result{}, badParameter("Property 'count' is required and must be between 1 and 128.")
	}
	b := make([]byte, *p.Count)
	_, _ = rand.Read(b)
	return result{body: map[string]string{"value": b64(b)}}, nil
}
