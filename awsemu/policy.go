package awsemu

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
)

// policy is an IAM policy document: a key policy or a role's trust policy.
// Only the parts awsemu evaluates are decoded; see docs/awsemu.md.
type policy struct {
	Version   string     `json:"Version"`
	ID        string     `json:"Id,omitempty"`
	Statement statements `json:"Statement"`
}

type statement struct {
	Sid       string                           `json:"Sid,omitempty"`
	Effect    string                           `json:"Effect"`
	Principal *principals                      `json:"Principal,omitempty"`
	Action    stringList                       `json:"Action,omitempty"`
	NotAction stringList                       `json:"NotAction,omitempty"`
	Resource  stringList                       `json:"Resource,omitempty"`
	Condition map[string]map[string]stringList `json:"Condition,omitempty"`
}

// statements accepts one statement object or an array of them.
type statements []statement

func (s *statements) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var one statement
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = statements{one}
		return nil
	}
	var many []statement
	err := json.Unmarshal(b, &many)
	*s = many
	return err
}

// stringList accepts a string or an array of strings.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = stringList{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(b, &many)
	*s = many
	return err
}

// principals is a statement's Principal: "*" or {"AWS": …, "Service": …}.
type principals struct {
	Any     bool
	AWS     []string
	Service []string
}

func (p *principals) UnmarshalJSON(b []byte) error {
	var star string
	if json.Unmarshal(b, &star) == nil {
		if star != "*" {
			return fmt.Errorf("Principal %q is neither \"*\" nor an object", star)
		}
		p.Any = true
		return nil
	}
	var m map[string]stringList
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for k, v := range m {
		switch k {
		case "AWS":
			p.AWS = v
		case "Service":
			p.Service = v
		case "Federated", "CanonicalUser":
		default:
			return fmt.Errorf("unknown principal type %q", k)
		}
	}
	return nil
}

func (p principals) MarshalJSON() ([]byte, error) {
	if p.Any {
		return json.Marshal("*")
	}
	m := map[string][]string{}
	if len(p.AWS) > 0 {
		m["AWS"] = p.AWS
	}
	if len(p.Service) > 0 {
		m["Service"] = p.Service
	}
	return json.Marshal(m)
}

// parsePolicy decodes a policy document. It refuses what AWS refuses as a
// MalformedPolicyDocumentException: invalid JSON, no statement, a
// statement without Effect Allow or Deny, or without Action.
func parsePolicy(doc string) (*policy, error) {
	var p policy
	dec := json.NewDecoder(strings.NewReader(doc))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("the policy is not valid JSON: %v", err)
	}
	if len(p.Statement) == 0 {
		return nil, fmt.Errorf("the policy has no Statement")
	}
	for i, s := range p.Statement {
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return nil, fmt.Errorf("statement %d has Effect %q; want Allow or Deny", i+1, s.Effect)
		}
		if len(s.Action) == 0 && len(s.NotAction) == 0 {
			return nil, fmt.Errorf("statement %d has no Action", i+1)
		}
	}
	return &p, nil
}

// request is what a policy is evaluated against.
type request struct {
	caller   *identity
	action   string            // e.g. "kms:Decrypt"
	resource string            // the key's or role's ARN
	context  map[string]string // condition keys, e.g. "kms:EncryptionContext:tenant", "sts:ExternalId"
}

// decision is the outcome of evaluating a policy.
type decision int

const (
	implicitDeny decision = iota
	allowed
	explicitDeny
)

// evaluate returns the policy's decision for r: an explicit deny wins over
// an allow; no matching statement is an implicit deny.
func (p *policy) evaluate(r request) decision {
	d := implicitDeny
	for _, s := range p.Statement {
		if !s.matches(r) {
			continue
		}
		if s.Effect == "Deny" {
			return explicitDeny
		}
		d = allowed
	}
	return d
}

func (s statement) matches(r request) bool {
	if s.Principal == nil || !s.Principal.match(r.caller) {
		return false
	}
	if len(s.Action) > 0 && !anyGlob(s.Action, r.action) {
		return false
	}
	if len(s.NotAction) > 0 && anyGlob(s.NotAction, r.action) {
		return false
	}
	if len(s.Resource) > 0 && !anyGlob(s.Resource, r.resource) {
		return false
	}
	for op, conds := range s.Condition {
		for key, values := range conds {
			if !condition(op, key, values, r.context) {
				return false
			}
		}
	}
	return true
}

// match reports whether the caller is one of the principals: "*"; an
// account (its root ARN or its bare id: every principal of the account,
// whose own IAM policies awsemu takes to allow everything); a user's or
// role's ARN (a role matches every session of it); or a session's ARN.
func (p principals) match(c *identity) bool {
	if p.Any {
		return true
	}
	for _, a := range p.AWS {
		switch {
		case a == "*":
			return true
		case a == c.account || a == "arn:aws:iam::"+c.account+":root":
			return true
		case a == c.arn || (c.roleARN != "" && a == c.roleARN):
			return true
		}
	}
	return false
}

// condition evaluates one condition operator on one key. Missing keys
// fail the positive operators and pass the negated ones, as in IAM; an
// unknown operator never matches.
func condition(op, key string, values []string, ctx map[string]string) bool {
	ifExists := strings.HasSuffix(op, "IfExists")
	op = strings.TrimSuffix(op, "IfExists")
	v, ok := lookup(ctx, key)
	if !ok && ifExists {
		return true
	}
	switch op {
	case "StringEquals":
		return ok && contains(values, v, false)
	case "StringEqualsIgnoreCase":
		return ok && contains(values, v, true)
	case "StringNotEquals":
		return !ok || !contains(values, v, false)
	case "StringLike":
		return ok && anyGlob(values, v)
	case "StringNotLike":
		return !ok || !anyGlob(values, v)
	case "Null":
		return len(values) == 1 && (values[0] == "true") == !ok
	}
	return false
}

// lookup finds a condition key; key names are case-insensitive, as in IAM.
func lookup(ctx map[string]string, key string) (string, bool) {
	if v, ok := ctx[key]; ok {
		return v, true
	}
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

func contains(values []string, v string, fold bool) bool {
	for _, x := range values {
		if x == v || (fold && strings.EqualFold(x, v)) {
			return true
		}
	}
	return false
}

// anyGlob reports whether s matches one of the patterns (* and ?
// wildcards). Actions compare case-insensitively, as in IAM.
func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if p == "*" || glob(p, s) {
			return true
		}
	}
	return false
}

func glob(pattern, s string) bool {
	if strings.HasPrefix(strings.ToLower(pattern), "kms:") || strings.HasPrefix(strings.ToLower(pattern), "sts:") {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	// path.Match treats '/' specially; ARNs contain it, so escape nothing
	// but compare segment-free by replacing '/' with a byte ARNs lack.
	ok, err := path.Match(strings.ReplaceAll(pattern, "/", "\x00"), strings.ReplaceAll(s, "/", "\x00"))
	return err == nil && ok
}
