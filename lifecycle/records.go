package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle/record"
)

// The lifecycle's stored types live in the leaf package record, which the
// stores implement without importing the lifecycle; these aliases are
// their names here.
type (
	State           = record.State
	Coverage        = record.Coverage
	Outcome         = record.Outcome
	Check           = record.Check
	Report          = record.Report
	JobKind         = record.JobKind
	JobState        = record.JobState
	Job             = record.Job
	JobRecord       = record.JobRecord
	HealthEventKind = record.HealthEventKind
	HealthEvent     = record.HealthEvent
	Record          = record.Record
	Store           = record.Store
)

// The states, outcomes, job kinds and states, and health event kinds of
// package record.
const (
	StateNone      = record.StateNone
	StateDraft     = record.StateDraft
	StateScheduled = record.StateScheduled
	StateActive    = record.StateActive
	StateRotating  = record.StateRotating
	StateRevoked   = record.StateRevoked
	StateDisabled  = record.StateDisabled

	Pass = record.Pass
	Warn = record.Warn
	Fail = record.Fail

	JobActivate = record.JobActivate
	JobRotate   = record.JobRotate
	JobRekey    = record.JobRekey
	JobScopes   = record.JobScopes
	JobDisable  = record.JobDisable

	JobPending = record.JobPending
	JobRunning = record.JobRunning
	JobDone    = record.JobDone
	JobFailed  = record.JobFailed

	HealthRevoked     = record.HealthRevoked
	HealthUnavailable = record.HealthUnavailable
	HealthRestored    = record.HealthRestored
)

// States lists every state, in lifecycle order.
var States = record.States

// AllScopes is the default coverage: every scope, present and future,
// except the platform-only ones.
var AllScopes = record.AllScopes

// load returns the tenant's record; a record of state none (Version 0)
// if it never configured a key.
func (s *Service) load(ctx context.Context, tenant string) (Record, error) {
	rec, err := s.cfg.Store.KeyRecord(ctx, tenant)
	if err == nil {
		return rec, nil
	}
	if !errors.Is(err, byok.ErrNotFound) {
		return Record{}, fmt.Errorf("lifecycle: reading the key record of tenant %q: %w", tenant, err)
	}
	if _, err := s.tenant(ctx, tenant); err != nil {
		return Record{}, err
	}
	return Record{Tenant: tenant, State: StateNone, Coverage: AllScopes}, nil
}

// save writes rec with the next version (compare-and-swap).
func (s *Service) save(ctx context.Context, rec *Record) error {
	next := *rec
	next.Version++
	next.Updated = s.cfg.Now()
	if err := s.cfg.Store.PutKeyRecord(ctx, next); err != nil {
		return fmt.Errorf("lifecycle: saving the key record of tenant %q: %w", rec.Tenant, err)
	}
	*rec = next
	return nil
}

// allowed applies the transition rules to rec at the service's now.
func (s *Service) allowed(rec Record, op Op) error {
	enforced := !rec.EnforceAt.IsZero() && !s.cfg.Now().Before(rec.EnforceAt)
	return Allowed(rec.Tenant, rec.State, enforced, op)
}

// recordView is what the audit log shows of a record: no secret, no
// sealed secret; the provider's options beside the key id, as their own
// fields.
func recordView(r Record) json.RawMessage {
	if r.Version == 0 {
		return nil
	}
	view := map[string]any{}
	var options map[string]json.RawMessage
	if json.Unmarshal(r.Settings.Options, &options) == nil {
		for k, v := range options {
			view[k] = v
		}
	}
	for k, v := range map[string]any{"state": r.State, "provider": r.Settings.Provider, "key_id": r.Settings.KeyID,
		"secret_set": r.SealedSecret.KeyID != "", "enforce_at": r.EnforceAt, "coverage": r.Coverage} {
		view[k] = v
	}
	b, _ := json.Marshal(view)
	return b
}
