package lifecycle

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/openbyok/byok/audit"
)

// auditChange records an admin action that changed a record.
func (s *Service) auditChange(ctx context.Context, actor audit.Actor, action string, before, after Record, err error) {
	s.audit(ctx, actor, after.Tenant, action, after.Settings.KeyID, recordView(before), recordView(after), err)
	if before.State != after.State {
		s.notify(ctx, after.Tenant, "key.state", map[string]string{"from": string(before.State), "to": string(after.State)})
	}
}

// audit records an admin action with its outcome.
func (s *Service) audit(ctx context.Context, actor audit.Actor, tenant, action, target string, before, after json.RawMessage, err error) {
	e := audit.Event{Tenant: tenant, Actor: actor, Action: action, Target: target, Before: before, After: after, Outcome: audit.Success}
	if err != nil {
		e.Outcome, e.Reason = audit.Failure, err.Error()
	}
	s.record(ctx, e)
}

// refused records a refusal of action (a [*StateError] or [*FieldError])
// as denied, the one audit record of a refusal; other errors (an unknown tenant, a store failure) are not
// decisions about the tenant's key and are only returned.
func (s *Service) refused(ctx context.Context, actor audit.Actor, tenant, action string, err error) {
	var se *StateError
	var fe *FieldError
	if errors.As(err, &se) || errors.As(err, &fe) {
		s.record(ctx, audit.Event{Tenant: tenant, Actor: actor, Action: action, Outcome: audit.Denied, Reason: err.Error()})
	}
}

// action is the audit action of op: "key.<op>".
func (op Op) action() string { return "key." + string(op) }
