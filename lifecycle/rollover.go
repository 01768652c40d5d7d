package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/openbyok/byok/audit"
)

// The audit actions of a credential rollover.
const (
	actionRollover       = "key.certificate.rollover"
	actionRolloverFinish = "key.certificate.rollover.finish"
)

// Credential returns the public view of the tenant's credential from its
// connector's [CredentialRoller] (for Azure, the certificates of a
// certificate credential, never their keys), unsealing the stored secret.
// It fails with a [*FieldError] on credential if the credential cannot be
// rolled over.
func (s *Service) Credential(ctx context.Context, tenant string) (any, error) {
	_, settings, roller, err := s.rollable(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return roller.Rollover(settings)
}

// StartCredentialRollover adds the next credential of the tenant's
// credential and returns the credential's public view with it (for the
// console to offer, e.g., the next certificate for download). From then on
// byok signs in with the next credential as soon as the provider accepts
// it and with the current one until then, so nothing breaks before the
// customer registers the new one. It re-seals the credential and saves the
// record (compare-and-swap on its version), audited as
// key.certificate.rollover.
//
// It is a change of credential on the same key, so it is allowed in every
// state with settings, after the enforcement date too; it is refused with
// a [*StateError] before any key is configured and while a rotation or
// re-key runs, and with a [*FieldError] if the credential cannot be
// rolled over or a rollover is already in progress. The record's last
// Test no longer applies to the new credential: test again.
func (s *Service) StartCredentialRollover(ctx context.Context, actor audit.Actor, tenant string) (any, error) {
	rec, settings, roller, err := s.rollable(ctx, tenant)
	if err == nil {
		settings.Secret, err = roller.StartRollover(settings)
	}
	if err != nil {
		s.refused(ctx, actor, tenant, actionRollover, err)
		return nil, rolloverError("adding the next credential", tenant, err)
	}
	if err := s.saveCredential(ctx, actor, rec, roller, settings, actionRollover); err != nil {
		return nil, err
	}
	return roller.Rollover(settings)
}

// rolloverError returns err, wrapped unless it is a refusal ([*StateError]
// or [*FieldError]).
func rolloverError(doing, tenant string, err error) error {
	var se *StateError
	var fe *FieldError
	if errors.As(err, &se) || errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf("lifecycle: %s of tenant %q: %w", doing, tenant, err)
}

// FinishCredentialRollover makes the next credential of the rollover the
// only one. It first runs Test configuration with the next credential
// alone (audited as key.test): it finishes only if that test passes, which
// proves that the provider accepts the next credential, so that finishing
// can never lock byok out of the vault; the passing report becomes the
// record's last Test. A failing test returns its report with a
// [*FieldError] that names the failed checks, and changes nothing. The
// record is saved with compare-and-swap and the change audited as
// key.certificate.rollover.finish. Refused as
// [Service.StartCredentialRollover] is, and outside a rollover.
func (s *Service) FinishCredentialRollover(ctx context.Context, actor audit.Actor, tenant string) (Report, error) {
	rec, settings, roller, err := s.rollable(ctx, tenant)
	if err == nil {
		settings.Secret, err = roller.FinishRollover(settings)
	}
	if err != nil {
		s.refused(ctx, actor, tenant, actionRolloverFinish, err)
		return Report{}, rolloverError("finishing the credential rollover", tenant, err)
	}
	r, err := s.test(ctx, actor, tenant, settings)
	if err != nil {
		return Report{}, err
	}
	if !r.Passed() {
		return r, &FieldError{Field: "credential", Reason: "Test configuration with the next credential alone failed (" + failedChecks(r) +
			"); register the next credential with your provider (for Azure: upload the next certificate to the app registration), wait a minute, and finish again"}
	}
	rec.LastTest = &r
	if err := s.saveCredential(ctx, actor, rec, roller, settings, actionRolloverFinish); err != nil {
		return Report{}, err
	}
	return r, nil
}

// rollable loads the tenant's record, its settings with the secret and
// the roller of its connector, refusing as
// [Service.StartCredentialRollover] documents.
func (s *Service) rollable(ctx context.Context, tenant string) (Record, KeySettings, CredentialRoller, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Record{}, KeySettings{}, nil, err
	}
	if err := s.allowed(rec, OpCertificateRollover); err != nil {
		return Record{}, KeySettings{}, nil, err
	}
	conn, err := s.Connector(rec.Settings.Provider)
	if err != nil {
		return Record{}, KeySettings{}, nil, err
	}
	roller, ok := conn.(CredentialRoller)
	if !ok || rec.SealedSecret.KeyID == "" {
		return Record{}, KeySettings{}, nil, &FieldError{Field: "credential", Reason: "has no secret credential to roll over"}
	}
	settings, err := s.unseal(ctx, rec)
	if err != nil {
		return Record{}, KeySettings{}, nil, err
	}
	return rec, settings, roller, nil
}

// saveCredential seals the secret of settings as rec's credential, saves
// rec and audits the change as action.
func (s *Service) saveCredential(ctx context.Context, actor audit.Actor, rec Record, roller CredentialRoller, settings KeySettings, action string) error {
	before := rec
	var err error
	if rec.SealedSecret, err = s.seal(ctx, rec.Tenant, settings.Secret); err != nil {
		return err
	}
	rec.SettingsHash = settings.Hash()
	if rec.LastTest != nil && rec.LastTest.SettingsHash != rec.SettingsHash {
		rec.LastTest = nil
	}
	err = s.save(ctx, &rec)
	if err == nil {
		s.forget(rec.Tenant)
	}
	after, _ := json.Marshal(roller.Fingerprints(settings))
	s.audit(ctx, actor, rec.Tenant, action, rec.Settings.KeyID, recordView(before), after, err)
	return err
}
