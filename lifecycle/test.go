package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
)

// Test runs Test configuration on the saved settings and stores the
// report with their hash. A failing check is in the report, not an error.
func (s *Service) Test(ctx context.Context, actor audit.Actor, tenant string) (Report, error) {
	return s.TestWithProgress(ctx, actor, tenant, nil)
}

// TestWithProgress is [Service.Test] that calls progress (if not nil)
// with each check as soon as it is decided, in report order, before the
// next check starts, when the connector is a [ProgressTester], and with
// every check once the test ends otherwise. The report is stored and
// audited exactly as Test does; progress must not block for long, since
// the test waits for it.
func (s *Service) TestWithProgress(ctx context.Context, actor audit.Actor, tenant string, progress func(Check)) (Report, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Report{}, err
	}
	if err := s.allowed(rec, OpTest); err != nil {
		s.refused(ctx, actor, tenant, OpTest.action(), err)
		return Report{}, err
	}
	settings, err := s.unseal(ctx, rec)
	if err != nil {
		return Report{}, err
	}
	r, err := s.testProgress(ctx, actor, tenant, settings, progress)
	if err != nil {
		return Report{}, err
	}
	// The settings tested are the record's: its hash is theirs (a record
	// saved by an older byok keeps the hash of its version), and the save
	// is refused if the record changed meanwhile.
	r.SettingsHash = rec.SettingsHash
	rec.LastTest = &r
	if err := s.save(ctx, &rec); err != nil {
		return Report{}, err
	}
	return r, nil
}

// test runs the connector's test of settings and audits it; the event id
// is the request id of the test's vault calls.
func (s *Service) test(ctx context.Context, actor audit.Actor, tenant string, settings KeySettings) (Report, error) {
	return s.testProgress(ctx, actor, tenant, settings, nil)
}

// testProgress is test with a progress callback (see TestWithProgress).
func (s *Service) testProgress(ctx context.Context, actor audit.Actor, tenant string, settings KeySettings, progress func(Check)) (Report, error) {
	id := audit.NewID()
	ctx = kms.WithOperationID(ctx, id)
	conn, err := s.Connector(settings.Provider)
	if err != nil {
		return Report{}, err
	}
	var r Report
	if pt, ok := conn.(ProgressTester); ok && progress != nil {
		r, err = pt.TestProgress(ctx, settings, progress)
	} else {
		r, err = conn.Test(ctx, settings)
		if err == nil && progress != nil {
			for _, c := range r.Checks {
				progress(c)
			}
		}
	}
	if err != nil {
		return Report{}, fmt.Errorf("lifecycle: testing the key of tenant %q: %w", tenant, err)
	}
	r.SettingsHash, r.At = settings.Hash(), s.cfg.Now()
	e := audit.Event{Tenant: tenant, ID: id, Actor: actor, Action: "key.test", Target: settings.KeyID, Outcome: audit.Success,
		Vault: &audit.VaultCall{Operation: "test", KeyID: r.KeyID, Purpose: audit.PurposeTest, RequestID: id}}
	if !r.Passed() {
		e.Outcome, e.Reason = audit.Failure, failedChecks(r)
	}
	e.After, _ = json.Marshal(r.Checks)
	s.record(ctx, e)
	return r, nil
}

func failedChecks(r Report) string {
	var names []string
	for _, c := range r.Checks {
		if c.Outcome == Fail {
			names = append(names, c.Name+": "+c.Detail)
		}
	}
	if len(names) == 0 {
		return "the test ran no check"
	}
	return "failed checks: " + strings.Join(names, "; ")
}

// UnusableSettings is a connector's report on settings it cannot even
// turn into a configuration: one failing check (named fieldCheck when err
// is a [*FieldError], else keyCheck) that says what is wrong, also given to
// progress when it is not nil.
func UnusableSettings(s KeySettings, err error, keyCheck, fieldCheck string, progress func(Check)) Report {
	ch := Check{Name: keyCheck, Outcome: Fail, Detail: err.Error(), Remedy: "fix the settings and test again"}
	if fe := (*FieldError)(nil); errors.As(err, &fe) {
		ch.Name = fieldCheck
	}
	if progress != nil {
		progress(ch)
	}
	return Report{KeyID: s.KeyID, Checks: []Check{ch}}
}
