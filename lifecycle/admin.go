package lifecycle

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/azurekv"
)

// Limits on settings fields.
const (
	maxFieldLen  = 1024
	maxSecretLen = kms.MaxPlaintext // a client secret (Azure makes them 40 characters)
	// maxCertificateSecretLen bounds a certificate credential's key and
	// certificate (CertificateSecret), sealed in an envelope.
	maxCertificateSecretLen = 16 << 10
)

// CreateTenant registers a tenant with a platform-managed key and
// declares its scopes (more appear when data is first written to them).
// Operator action.
func (s *Service) CreateTenant(ctx context.Context, actor audit.Actor, tenant string, policy byok.Policy, scopes []string) error {
	for i, sc := range scopes {
		if err := checkScopeID(sc); err != nil {
			return &FieldError{Field: fmt.Sprintf("scopes[%d]", i), Reason: err.Error()}
		}
	}
	err := s.kr.CreateTenant(ctx, tenant, policy)
	if err == nil {
		for _, sc := range scopes {
			if err = s.cfg.Store.PutScope(ctx, byok.ScopeRecord{Tenant: tenant, Scope: sc, Kind: byok.PlatformManaged}); err != nil {
				err = fmt.Errorf("lifecycle: declaring scope %q of tenant %q: %w", sc, tenant, err)
				break
			}
		}
	}
	after, _ := json.Marshal(map[string]any{"policy": policy.String(), "scopes": scopes})
	s.audit(ctx, actor, tenant, "tenant.create", tenant, nil, after, err)
	return err
}

// ListTenants lists tenants with their key state, ordered by id, after
// the exclusive cursor, at most limit. Operator action.
func (s *Service) ListTenants(ctx context.Context, after string, limit int) ([]TenantSummary, error) {
	ts, err := s.cfg.Store.ListTenants(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: listing tenants: %w", err)
	}
	out := make([]TenantSummary, len(ts))
	for i, t := range ts {
		out[i] = TenantSummary{ID: t.ID, Policy: t.Policy, Created: t.Created, State: StateNone}
		rec, err := s.cfg.Store.KeyRecord(ctx, t.ID)
		switch {
		case err == nil:
			out[i].State = rec.State
		case !errors.Is(err, byok.ErrNotFound):
			return nil, fmt.Errorf("lifecycle: listing tenants: %w", err)
		}
	}
	return out, nil
}

// SetPolicy sets a tenant's staleness policy ([byok.Grace] or
// [byok.Strict]). Operator or tenant-admin action; audited.
func (s *Service) SetPolicy(ctx context.Context, actor audit.Actor, tenant string, policy byok.Policy) error {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	err = s.kr.SetPolicy(ctx, tenant, policy)
	if err == nil && s.cfg.Changed != nil {
		s.cfg.Changed(tenant) // the other replicas reload it with the new policy
	}
	before, _ := json.Marshal(map[string]string{"policy": t.Policy.String()})
	after, _ := json.Marshal(map[string]string{"policy": policy.String()})
	s.audit(ctx, actor, tenant, "tenant.policy", tenant, before, after, err)
	return err
}

// Configure saves the settings of a tenant's customer key. Allowed in
// states none, draft, scheduled (back to draft: test and proceed again)
// and disabled (a new draft); refused with a [*StateError] once the
// enforcement date has passed. An unset Secret keeps the stored one if
// the credential mode is unchanged. Invalid settings fail with a
// [*FieldError] and change nothing.
func (s *Service) Configure(ctx context.Context, actor audit.Actor, tenant string, settings KeySettings) (CustomerKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	before := rec
	if err := s.allowed(rec, OpConfigure); err != nil {
		s.denied(ctx, actor, tenant, OpConfigure, err)
		return CustomerKey{}, err
	}
	keepSecret := !settings.Secret.IsSet() && rec.Version > 0 && rec.Settings.Credential == settings.Credential && rec.SealedSecret.KeyID != ""
	if settings.Provider == "" {
		settings.Provider = ProviderAzure
	}
	settings.Tenant = tenant
	settings = s.withIdentityDefaults(ctx, settings)
	if err := s.checkSettings(ctx, settings, keepSecret); err != nil {
		return CustomerKey{}, err
	}
	full := settings
	if keepSecret {
		stored, err := s.unseal(ctx, rec)
		if err != nil {
			return CustomerKey{}, err
		}
		full.Secret = stored.Secret
	}
	if _, err := s.cfg.Connector.Provider(ctx, full); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return CustomerKey{}, fe
		}
		return CustomerKey{}, &FieldError{Field: "key_id", Reason: err.Error()}
	}
	if settings.Secret.IsSet() {
		if rec.SealedSecret, err = s.seal(ctx, tenant, settings.Secret); err != nil {
			return CustomerKey{}, err
		}
	} else if !keepSecret {
		rec.SealedSecret = kms.Wrapped{}
	}
	settings.Secret, settings.Tenant = Secret{}, "" // neither is stored in the record's settings
	rec.Settings, rec.SettingsHash, rec.LastTest = settings, full.Hash(), nil
	rec.State, rec.EnforceAt = StateDraft, time.Time{}
	if rec.Version == 0 {
		rec.Coverage = AllScopes
	}
	if err := s.save(ctx, &rec); err != nil {
		return CustomerKey{}, err
	}
	s.auditChange(ctx, actor, "key.configure", before, rec, nil)
	return s.Status(ctx, tenant)
}

// checkSettings reports the first invalid field of ks as a [*FieldError].
// keepSecret says that an unset secret keeps the stored one. A key id that
// names the platform root key (or a version of it) is refused: the
// customer's key must be the customer's. The managed-identity and
// workload-identity modes are checked by checkIdentity.
func (s *Service) checkSettings(ctx context.Context, ks KeySettings, keepSecret bool) error {
	if ks.Provider != ProviderAzure {
		return &FieldError{Field: "provider", Reason: fmt.Sprintf("is %q; the only provider is %q", ks.Provider, ProviderAzure)}
	}
	if s.namesPlatformKey(ks.KeyID) {
		return &FieldError{Field: "key_id", Reason: "names the platform's own root key; give the identifier of a key in your own vault"}
	}
	for _, f := range []struct{ name, v string }{{"key_id", ks.KeyID}, {"directory_id", ks.DirectoryID}, {"client_id", ks.ClientID}} {
		if f.v == "" && (f.name == "client_id" && ks.Credential == CredentialWorkloadIdentity || f.name != "key_id" && ks.Credential == CredentialManagedIdentity) {
			continue // checkIdentity says what these modes need
		}
		if f.v == "" {
			return &FieldError{Field: f.name, Reason: "is empty"}
		}
		if len(f.v) > maxFieldLen {
			return &FieldError{Field: f.name, Reason: fmt.Sprintf("is %d bytes, the limit is %d", len(f.v), maxFieldLen)}
		}
		if strings.ContainsFunc(f.v, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			return &FieldError{Field: f.name, Reason: "contains a space or control character"}
		}
	}
	switch ks.Credential {
	case CredentialPlatformApp:
		if ks.Secret.IsSet() {
			return &FieldError{Field: "secret", Reason: "must be empty with the platform-app credential: the platform signs in as its own app"}
		}
	case CredentialClientSecret, CredentialCertificate:
		if !ks.Secret.IsSet() && !keepSecret {
			return &FieldError{Field: "secret", Reason: fmt.Sprintf("is empty; the %s credential needs one", ks.Credential)}
		}
	case CredentialManagedIdentity, CredentialWorkloadIdentity:
		if err := s.checkIdentity(ctx, ks); err != nil {
			return err
		}
	default:
		return &FieldError{Field: "credential", Reason: fmt.Sprintf("is %q; use %q, %q, %q, %q or %q",
			ks.Credential, CredentialPlatformApp, CredentialClientSecret, CredentialCertificate, CredentialManagedIdentity, CredentialWorkloadIdentity)}
	}
	limit := maxSecretLen
	if ks.Credential == CredentialCertificate {
		limit = maxCertificateSecretLen
	}
	if n := ks.Secret.k.Len(); n > limit {
		return &FieldError{Field: "secret", Reason: fmt.Sprintf("is %d bytes, the limit is %d", n, limit)}
	}
	return nil
}

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
		s.denied(ctx, actor, tenant, OpTest, err)
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
	if r.SettingsHash == rec.SettingsHash {
		rec.LastTest = &r
		if err := s.save(ctx, &rec); err != nil {
			return Report{}, err
		}
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
	var r Report
	var err error
	if pt, ok := s.cfg.Connector.(ProgressTester); ok && progress != nil {
		r, err = pt.TestProgress(ctx, settings, progress)
	} else {
		r, err = s.cfg.Connector.Test(ctx, settings)
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

// ListVaultKeys lists the keys and versions of the vault at vaultURL (a
// vault URL or any key identifier in it; "" for the vault of the saved
// key) with the tenant's saved credential, for picking the key. It needs
// saved settings ([*StateError] in state none) and a connector that is a
// [KeyLister] (else an error wrapping [errors.ErrUnsupported]). The call is
// audited as a vault call ("vault.listkeys", purpose tenant-request) whose
// event id is the request id sent to the vault; vault errors are
// classified [*kms.Error]s, a malformed vaultURL wraps
// [byok.ErrInvalidInput].
func (s *Service) ListVaultKeys(ctx context.Context, actor audit.Actor, tenant, vaultURL string) ([]VaultKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if rec.Version == 0 {
		return nil, &StateError{Tenant: tenant, State: rec.State, Op: "list-keys",
			Reason: "save the key settings (directory and credential) first: the vault is listed with them", Allowed: []Op{OpConfigure}}
	}
	kl, ok := s.cfg.Connector.(KeyLister)
	if !ok {
		return nil, fmt.Errorf("lifecycle: the %s connector cannot list a vault's keys; type the key identifier: %w", rec.Settings.Provider, errors.ErrUnsupported)
	}
	if vaultURL == "" {
		vaultURL = rec.Settings.KeyID
	}
	settings, err := s.unseal(ctx, rec)
	if err != nil {
		return nil, err
	}
	id := audit.NewID()
	keys, err := kl.ListKeys(kms.WithOperationID(ctx, id), settings, vaultURL)
	e := audit.Event{Tenant: tenant, ID: id, Actor: actor, Action: "vault.listkeys", Target: vaultURL, Outcome: audit.Success,
		Vault: &audit.VaultCall{Operation: "listKeys", KeyID: vaultURL, Purpose: audit.PurposeTenantRequest, RequestID: id}}
	if err != nil {
		e.Outcome, e.Reason = audit.Failure, string(kms.ReasonOf(err))+": "+err.Error()
	}
	s.record(context.WithoutCancel(ctx), e)
	if err != nil {
		if kms.ClassOf(err) == kms.Invalid {
			return nil, fmt.Errorf("lifecycle: listing the keys of %s: %w: %w", vaultURL, byok.ErrInvalidInput, err)
		}
		return nil, fmt.Errorf("lifecycle: listing the keys of %s: %w", vaultURL, err)
	}
	return keys, nil
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

// Proceed schedules activation at enforceAt, which must be in the future,
// with coverage (nil: every scope). It requires a passing Test of exactly
// the saved settings. Allowed in draft and scheduled (a new date).
func (s *Service) Proceed(ctx context.Context, actor audit.Actor, tenant string, enforceAt time.Time, coverage *Coverage) (CustomerKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	before := rec
	if err := s.allowed(rec, OpProceed); err != nil {
		s.denied(ctx, actor, tenant, OpProceed, err)
		return CustomerKey{}, err
	}
	now := s.cfg.Now()
	if enforceAt.IsZero() {
		return CustomerKey{}, &FieldError{Field: "enforce_at", Reason: "is missing; give the date BYOK takes effect, in the future"}
	}
	if !enforceAt.After(now) {
		return CustomerKey{}, &FieldError{Field: "enforce_at", Reason: fmt.Sprintf("is %s, not in the future (now is %s); give a later date",
			enforceAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	cov := rec.Coverage
	if coverage != nil {
		if cov, err = s.checkCoverage(ctx, tenant, *coverage); err != nil {
			return CustomerKey{}, err
		}
	}
	switch {
	case rec.LastTest == nil || rec.LastTest.SettingsHash != rec.SettingsHash:
		err = &StateError{Tenant: tenant, State: rec.State, Op: OpProceed, Allowed: []Op{OpConfigure, OpTest},
			Reason: "the saved settings have not been tested; run Test configuration, then proceed"}
	case !rec.LastTest.Passed():
		err = &StateError{Tenant: tenant, State: rec.State, Op: OpProceed, Allowed: []Op{OpConfigure, OpTest},
			Reason: "the last Test configuration of the saved settings failed (" + failedChecks(*rec.LastTest) + "); fix them and test again"}
	}
	if err != nil {
		s.denied(ctx, actor, tenant, OpProceed, err)
		return CustomerKey{}, err
	}
	rec.State, rec.EnforceAt, rec.Coverage = StateScheduled, enforceAt.UTC(), cov
	if err := s.save(ctx, &rec); err != nil {
		return CustomerKey{}, err
	}
	s.auditChange(ctx, actor, "key.proceed", before, rec, nil)
	return s.Status(ctx, tenant)
}

// SetScopes changes which scopes the customer's key covers. Before
// activation it only records the choice; when active it starts a scopes
// job (shown in CustomerKey.Job) that Tick runs to move scopes in or out,
// re-wrapping their DEKs locally. Unknown and platform-only scopes fail
// with a [*FieldError].
func (s *Service) SetScopes(ctx context.Context, actor audit.Actor, tenant string, coverage Coverage) (CustomerKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	before := rec
	if err := s.allowed(rec, OpSetScopes); err != nil {
		s.denied(ctx, actor, tenant, OpSetScopes, err)
		return CustomerKey{}, err
	}
	if rec.Coverage, err = s.checkCoverage(ctx, tenant, coverage); err != nil {
		return CustomerKey{}, err
	}
	if err := s.save(ctx, &rec); err != nil {
		return CustomerKey{}, err
	}
	s.auditChange(ctx, actor, "key.scopes", before, rec, nil)
	if rec.State == StateActive {
		if _, err := s.startJob(ctx, actor, tenant, JobScopes, 0); err != nil {
			return CustomerKey{}, err
		}
	}
	return s.Status(ctx, tenant)
}

// checkCoverage validates c against the tenant's known scopes and returns
// it normalised (sorted, without duplicates).
func (s *Service) checkCoverage(ctx context.Context, tenant string, c Coverage) (Coverage, error) {
	known, err := s.scopes(ctx, tenant)
	if err != nil {
		return Coverage{}, err
	}
	isKnown := make(map[string]bool, len(known))
	for _, sc := range known {
		isKnown[sc.Scope] = true
	}
	check := func(field string, list []string) ([]string, error) {
		for i, sc := range list {
			f := fmt.Sprintf("coverage.%s[%d]", field, i)
			switch {
			case s.platformOnly[sc]:
				return nil, &FieldError{Field: f, Reason: fmt.Sprintf("scope %q is platform-only (transient data) and cannot be covered by a customer key", sc)}
			case !isKnown[sc]:
				return nil, &FieldError{Field: f, Reason: fmt.Sprintf("scope %q is unknown to tenant %q; the status lists its scopes", sc, tenant)}
			}
		}
		out := slices.Clone(list)
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	var out Coverage
	out.All = c.All
	if out.Include, err = check("include", c.Include); err != nil {
		return Coverage{}, err
	}
	if out.Exclude, err = check("exclude", c.Exclude); err != nil {
		return Coverage{}, err
	}
	for _, sc := range out.Include {
		if slices.Contains(out.Exclude, sc) {
			return Coverage{}, &FieldError{Field: "coverage.exclude", Reason: fmt.Sprintf("scope %q is both included and excluded", sc)}
		}
	}
	if !out.All && len(out.Exclude) > 0 {
		return Coverage{}, &FieldError{Field: "coverage.exclude", Reason: "only makes sense with all set; list covered scopes in include instead"}
	}
	return out, nil
}

// Rotate re-wraps the customer share of the tenant's current
// customer-managed key under a new version of its key or under another
// key (see [RotateRequest]): at most one unwrap and one wrap, committed
// atomically with the new settings. It runs to the end before returning;
// the job it returns is finished. Allowed when active.
func (s *Service) Rotate(ctx context.Context, actor audit.Actor, tenant string, req RotateRequest) (Job, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Job{}, err
	}
	if err := s.allowed(rec, OpRotate); err != nil {
		s.denied(ctx, actor, tenant, OpRotate, err)
		return Job{}, err
	}
	target, err := s.rotationTarget(ctx, actor, rec, req)
	if err != nil {
		return Job{}, err
	}
	return s.rotate(ctx, actor, rec, target)
}

// rotationTarget returns the record as it will be after the rotation req
// asks for, with the settings (secret included) to wrap under.
func (s *Service) rotationTarget(ctx context.Context, actor audit.Actor, rec Record, req RotateRequest) (KeySettings, error) {
	cur, err := s.unseal(ctx, rec)
	if err != nil {
		return KeySettings{}, err
	}
	switch {
	case req.KeyID != "" && req.Settings != nil:
		return KeySettings{}, &FieldError{Field: "key_id", Reason: "give either a new version of the key or new settings, not both"}
	case req.KeyID != "":
		base, versioned := splitKeyID(req.KeyID)
		curBase, _ := splitKeyID(cur.KeyID)
		if !versioned {
			return KeySettings{}, &FieldError{Field: "key_id", Reason: fmt.Sprintf("%q names no version; give a versioned id of the same key, or new settings to move to another key", req.KeyID)}
		}
		if !strings.EqualFold(base, curBase) {
			return KeySettings{}, &FieldError{Field: "key_id", Reason: fmt.Sprintf("%q is not a version of the configured key %q; to move to another key, rotate with new settings", req.KeyID, curBase)}
		}
		cur.KeyID = req.KeyID
		return cur, nil
	case req.Settings != nil:
		next := *req.Settings
		if next.Provider == "" {
			next.Provider = ProviderAzure
		}
		next.Tenant = rec.Tenant
		next = s.withIdentityDefaults(ctx, next)
		keep := !next.Secret.IsSet() && next.Credential == cur.Credential && cur.Secret.IsSet()
		if err := s.checkSettings(ctx, next, keep); err != nil {
			return KeySettings{}, err
		}
		if keep {
			next.Secret = cur.Secret
		}
		r, err := s.test(ctx, actor, rec.Tenant, next)
		if err != nil {
			return KeySettings{}, err
		}
		if !r.Passed() {
			return KeySettings{}, &FieldError{Field: "settings", Reason: "Test configuration of the new key failed (" + failedChecks(r) + "); fix it and rotate again"}
		}
		return next, nil
	}
	return cur, nil
}

// splitKeyID returns the versionless form of a key id and whether id
// names a version: Azure ids are …/keys/<name>[/<version>]; ids of other
// shapes (kmstest's "fake:NAME[/vN]") are versioned when they hold a '/'.
func splitKeyID(id string) (base string, versioned bool) {
	id = strings.TrimSuffix(id, "/")
	if pre, rest, ok := strings.Cut(id, "/keys/"); ok {
		name, _, versioned := strings.Cut(rest, "/")
		return pre + "/keys/" + name, versioned
	}
	base, _, versioned = strings.Cut(id, "/")
	return base, versioned
}

// rotate re-wraps the customer share of every current customer-managed
// epoch (the one in use, in practice) under settings, and commits each
// with the new record.
func (s *Service) rotate(ctx context.Context, actor audit.Actor, rec Record, settings KeySettings) (Job, error) {
	now := s.cfg.Now()
	j := JobRecord{Job: Job{ID: newJobID(), Tenant: rec.Tenant, Kind: JobRotate, State: JobRunning, Actor: actor, Created: now, Updated: now}}
	prevState := rec.State
	rec.State = StateRotating
	if err := s.save(ctx, &rec); err != nil {
		return Job{}, err
	}
	err := s.rewrapShares(ctx, actor, &rec, settings, &j)
	rec.State = prevState
	if serr := s.save(ctx, &rec); serr != nil && err == nil {
		err = serr
	}
	j.Updated = s.cfg.Now()
	j.State = JobDone
	if err != nil {
		j.State, j.Error, j.Attempts = JobFailed, err.Error(), 1
	}
	if perr := s.cfg.Store.PutJob(ctx, j); perr != nil && err == nil {
		err = perr
	}
	s.forget(rec.Tenant)
	after, _ := json.Marshal(map[string]any{"key_id": rec.Settings.KeyID, "shares": j.Done})
	s.audit(ctx, actor, rec.Tenant, "key.rotate", settings.KeyID, nil, after, err)
	if err == nil {
		s.notify(ctx, rec.Tenant, "key.rotated", map[string]string{"key_id": rec.Settings.KeyID})
	}
	return j.Job, err
}

// rewrapShares re-wraps the customer shares of rec's live epochs under
// settings: one unwrap under the recorded version with the current
// provider and one wrap with the new one per share.
func (s *Service) rewrapShares(ctx context.Context, actor audit.Actor, rec *Record, settings KeySettings, j *JobRecord) error {
	live, err := s.liveEpochs(ctx, rec.Tenant)
	if err != nil {
		return err
	}
	j.Total = int64(len(live))
	oldP, err := s.provider(ctx, *rec)
	if err != nil {
		return err
	}
	next := *rec
	next.Settings, next.SettingsHash = settings, settings.Hash()
	next.Settings.Secret, next.Settings.Tenant = Secret{}, ""
	if settings.Secret.IsSet() && settings.Hash() != rec.SettingsHash {
		if next.SealedSecret, err = s.seal(ctx, rec.Tenant, settings.Secret); err != nil {
			return err
		}
	} else if !settings.Secret.IsSet() {
		next.SealedSecret = kms.Wrapped{}
	}
	newP, err := s.provider(ctx, next)
	if err != nil {
		return err
	}
	vctx := withPurpose(ctx, audit.PurposeRotationJob, actor)
	for _, tk := range live {
		c, err := oldP.Unwrap(vctx, tk.CustomerShare)
		if err != nil {
			return fmt.Errorf("lifecycle: unwrapping the customer share of tenant %q under %s: %w", rec.Tenant, tk.CustomerShare.KeyID, err)
		}
		w, err := newP.Wrap(vctx, settings.KeyID, c)
		clear(c)
		if err != nil {
			return fmt.Errorf("lifecycle: wrapping the customer share of tenant %q under %s: %w", rec.Tenant, settings.KeyID, err)
		}
		if w.KeyID == tk.CustomerShare.KeyID && next.SettingsHash == rec.SettingsHash {
			j.Done++
			continue // already under that version
		}
		next.Version = rec.Version + 1
		next.Updated = s.cfg.Now()
		next.Versions = addVersion(next.Versions, w.KeyID)
		if err := s.cfg.Store.CommitRotation(ctx, next, byok.CustomerManaged, tk.Epoch, tk.CustomerShare.KeyID, w); err != nil {
			return fmt.Errorf("lifecycle: committing the rotation of tenant %q: %w", rec.Tenant, err)
		}
		*rec = next
		j.Done++
	}
	*rec = next
	return s.save(ctx, rec)
}

func addVersion(vs []string, v string) []string {
	if slices.Contains(vs, v) {
		return vs
	}
	return append(slices.Clone(vs), v)
}

// liveEpochs returns the customer-managed tenant keys whose customer share
// is under a customer key and that data depends on: the current epoch, and
// older ones that still wrap DEKs.
func (s *Service) liveEpochs(ctx context.Context, tenant string) ([]byok.TenantKeyRecord, error) {
	keys, err := s.cfg.Store.TenantKeys(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: reading the keys of tenant %q: %w", tenant, err)
	}
	var cm []byok.TenantKeyRecord
	for _, k := range keys {
		if k.Kind == byok.CustomerManaged {
			cm = append(cm, k)
		}
	}
	var live []byok.TenantKeyRecord
	for i, k := range cm {
		if s.isPlatformKeyID(k.CustomerShare.KeyID) {
			continue
		}
		if i < len(cm)-1 {
			n, err := s.cfg.Store.CountDEKs(ctx, tenant, byok.CustomerManaged, k.Epoch+1, "")
			if err != nil {
				return nil, err
			}
			prev, err := s.cfg.Store.CountDEKs(ctx, tenant, byok.CustomerManaged, k.Epoch, "")
			if err != nil {
				return nil, err
			}
			if n-prev == 0 {
				continue
			}
		}
		live = append(live, k)
	}
	return live, nil
}

// namesPlatformKey reports whether a customer key id names the platform
// root key or a version of it, as isPlatformKeyID does but ignoring case
// and a trailing slash, which name the same Azure key.
func (s *Service) namesPlatformKey(id string) bool {
	p := strings.ToLower(s.cfg.PlatformKeyID)
	id = strings.ToLower(strings.TrimSuffix(id, "/"))
	return p != "" && (id == p || strings.HasPrefix(id, p+"/"))
}

// isPlatformKeyID mirrors the keyring's routing: the platform key id or a
// version of it.
func (s *Service) isPlatformKeyID(id string) bool {
	p := s.cfg.PlatformKeyID
	return id == p || strings.HasPrefix(id, p+"/")
}

// Rekey creates the next epoch of the tenant's customer-managed key (new
// customer and platform shares) and starts a job that Tick runs to
// re-wrap every DEK of older epochs onto it, in batches, resumably.
// Allowed when active.
func (s *Service) Rekey(ctx context.Context, actor audit.Actor, tenant string) (Job, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Job{}, err
	}
	if err := s.allowed(rec, OpRekey); err != nil {
		s.denied(ctx, actor, tenant, OpRekey, err)
		return Job{}, err
	}
	vctx := withPurpose(ctx, audit.PurposeRotationJob, actor)
	tk, err := s.kr.NewTenantKey(vctx, tenant, byok.CustomerManaged, rec.Settings.KeyID)
	if err != nil {
		s.audit(ctx, actor, tenant, "key.rekey", tenant, nil, nil, err)
		return Job{}, fmt.Errorf("lifecycle: creating the next key epoch of tenant %q: %w", tenant, err)
	}
	rec.State = StateRotating
	rec.Versions = addVersion(rec.Versions, tk.CustomerShare.KeyID)
	if err := s.save(ctx, &rec); err != nil {
		return Job{}, err
	}
	j, err := s.startJob(ctx, actor, tenant, JobRekey, tk.Epoch)
	after, _ := json.Marshal(map[string]any{"epoch": tk.Epoch, "deks": j.Total})
	s.audit(ctx, actor, tenant, "key.rekey", tenant, nil, after, err)
	return j, err
}

// Disable turns BYOK off: it re-wraps the customer share of every
// customer-managed epoch under the platform root key at once, sets the
// state to disabled, and starts a job that moves every scope back to
// platform-managed. It is refused with a [*StateError] when the
// customer's key cannot be reached now: disable needs the key, to re-wrap
// its shares, so it must come before a revocation, not after.
func (s *Service) Disable(ctx context.Context, actor audit.Actor, tenant string) (Job, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Job{}, err
	}
	before := rec
	if err := s.allowed(rec, OpDisable); err != nil {
		s.denied(ctx, actor, tenant, OpDisable, err)
		return Job{}, err
	}
	hs, err := s.kr.Check(withPurpose(ctx, audit.PurposeTenantRequest, actor), tenant)
	if err != nil {
		return Job{}, fmt.Errorf("lifecycle: checking the key of tenant %q: %w", tenant, err)
	}
	for _, h := range hs {
		if h.Kind == byok.CustomerManaged && h.State != byok.StateHealthy {
			err := &StateError{Tenant: tenant, State: rec.State, Op: OpDisable,
				Reason: fmt.Sprintf("your key cannot be reached (%s: %s), and %s", h.State, h.Reason, reasonOffNeedsKey)}
			s.denied(ctx, actor, tenant, OpDisable, err)
			return Job{}, err
		}
	}
	if err := s.sharesToPlatform(ctx, actor, rec); err != nil {
		s.audit(ctx, actor, tenant, "key.disable", tenant, nil, nil, err)
		return Job{}, err
	}
	rec.State = StateDisabled
	if err := s.save(ctx, &rec); err != nil {
		return Job{}, err
	}
	s.forget(tenant)
	s.auditChange(ctx, actor, "key.disable", before, rec, nil)
	s.notify(ctx, tenant, "key.disabled", nil)
	return s.startJob(ctx, actor, tenant, JobDisable, 0)
}

// sharesToPlatform re-wraps the customer share of every customer-managed
// epoch that is still under the customer's key under the platform key.
func (s *Service) sharesToPlatform(ctx context.Context, actor audit.Actor, rec Record) error {
	keys, err := s.cfg.Store.TenantKeys(ctx, rec.Tenant)
	if err != nil {
		return fmt.Errorf("lifecycle: reading the keys of tenant %q: %w", rec.Tenant, err)
	}
	p, err := s.provider(ctx, rec)
	if err != nil {
		return err
	}
	vctx := withPurpose(ctx, audit.PurposeRotationJob, actor)
	for _, k := range keys {
		if k.Kind != byok.CustomerManaged || s.isPlatformKeyID(k.CustomerShare.KeyID) {
			continue
		}
		c, err := p.Unwrap(vctx, k.CustomerShare)
		if err != nil {
			return fmt.Errorf("lifecycle: unwrapping the customer share of tenant %q epoch %d: %w; restore access to the key and disable again", rec.Tenant, k.Epoch, err)
		}
		w, err := s.cfg.PlatformKMS.Wrap(ctx, s.cfg.PlatformKeyID, c)
		clear(c)
		if err != nil {
			return fmt.Errorf("lifecycle: wrapping the customer share of tenant %q epoch %d under the platform key: %w", rec.Tenant, k.Epoch, err)
		}
		if err := s.cfg.Store.ReplaceShare(ctx, rec.Tenant, byok.CustomerManaged, k.Epoch, k.CustomerShare.KeyID, w); err != nil {
			return fmt.Errorf("lifecycle: storing the re-wrapped share of tenant %q epoch %d: %w", rec.Tenant, k.Epoch, err)
		}
	}
	return nil
}

// Status returns the tenant's customer key as the console shows it; state
// none if it never configured one. An unknown tenant fails with
// [byok.ErrUnknownTenant].
func (s *Service) Status(ctx context.Context, tenant string) (CustomerKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	ck := CustomerKey{Tenant: tenant, State: rec.State, Settings: rec.Settings, SecretSet: rec.SealedSecret.KeyID != "",
		EnforceAt: rec.EnforceAt, ActivatedAt: rec.ActivatedAt, Coverage: rec.Coverage, Updated: rec.Updated,
		Health: s.kr.Health(tenant)}
	ck.Settings.Secret = Secret{}
	if rec.LastTest != nil && rec.LastTest.SettingsHash == rec.SettingsHash {
		t := *rec.LastTest
		ck.LastTest = &t
	}
	scopes, err := s.scopes(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	for _, sc := range scopes {
		ck.Scopes = append(ck.Scopes, ScopeStatus{Scope: sc.Scope, Kind: sc.Kind,
			Covered: s.covered(rec, sc.Scope), PlatformOnly: s.platformOnly[sc.Scope]})
	}
	if tk, err := s.cfg.Store.TenantKey(ctx, tenant, byok.CustomerManaged); err == nil {
		ck.CurrentKeyID, ck.Epoch = tk.CustomerShare.KeyID, tk.Epoch
	} else if !errors.Is(err, byok.ErrNotFound) {
		return CustomerKey{}, fmt.Errorf("lifecycle: reading the key of tenant %q: %w", tenant, err)
	}
	jobs, err := s.cfg.Store.ListJobs(ctx, tenant, false, 1)
	if err != nil {
		return CustomerKey{}, fmt.Errorf("lifecycle: reading the jobs of tenant %q: %w", tenant, err)
	}
	if len(jobs) > 0 {
		ck.Job = &jobs[0].Job
	}
	return ck, nil
}

// covered reports whether rec's coverage selects scope.
func (s *Service) covered(rec Record, scope string) bool {
	return !s.platformOnly[scope] && rec.Coverage.Covers(scope)
}

// Inventory counts, for every key version the tenant's shares are or
// were wrapped under, how many shares depend on it; a version at zero is
// safe to retire.
func (s *Service) Inventory(ctx context.Context, tenant string) ([]VersionCount, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	live, err := s.liveEpochs(ctx, tenant)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int)
	versions := slices.Clone(rec.Versions)
	current := ""
	for _, k := range live {
		counts[k.CustomerShare.KeyID]++
		versions = addVersion(versions, k.CustomerShare.KeyID)
		current = k.CustomerShare.KeyID // live is in epoch order: the last is current
	}
	out := make([]VersionCount, len(versions))
	for i, v := range versions {
		out[i] = VersionCount{KeyID: v, Shares: counts[v], Current: v == current, SafeToRetire: counts[v] == 0}
	}
	return out, nil
}

// Job returns a job of the tenant. A job of another tenant is
// [byok.ErrNotFound], as one that does not exist.
func (s *Service) Job(ctx context.Context, tenant, id string) (Job, error) {
	j, err := s.cfg.Store.JobRecord(ctx, id)
	if err == nil && j.Tenant != tenant {
		err = fmt.Errorf("lifecycle: tenant %q has no job %q: %w", tenant, id, byok.ErrNotFound)
	}
	if err != nil {
		return Job{}, err
	}
	return j.Job, nil
}

// Timeline returns the tenant's revocation and restoration history,
// newest first, at most limit entries.
func (s *Service) Timeline(ctx context.Context, tenant string, limit int) ([]HealthEvent, error) {
	if _, err := s.tenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.cfg.Store.HealthEvents(ctx, tenant, limit)
}

// tenant returns a tenant, or an error wrapping byok.ErrUnknownTenant.
func (s *Service) tenant(ctx context.Context, tenant string) (byok.TenantRecord, error) {
	t, err := s.cfg.Store.Tenant(ctx, tenant)
	if errors.Is(err, byok.ErrNotFound) {
		return t, fmt.Errorf("lifecycle: %w %q", byok.ErrUnknownTenant, tenant)
	}
	if err != nil {
		return t, fmt.Errorf("lifecycle: reading tenant %q: %w", tenant, err)
	}
	return t, nil
}

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

// scopes lists every scope of a tenant.
func (s *Service) scopes(ctx context.Context, tenant string) ([]byok.ScopeRecord, error) {
	var all []byok.ScopeRecord
	after := ""
	for {
		page, err := s.cfg.Store.ListScopes(ctx, tenant, after, 500)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: listing the scopes of tenant %q: %w", tenant, err)
		}
		all = append(all, page...)
		if len(page) < 500 {
			return all, nil
		}
		after = page[len(page)-1].Scope
	}
}

// checkScopeID validates a scope id by the keyring's one rule,
// [byok.CheckID], and returns its reason alone.
func checkScopeID(sc string) error {
	var in *byok.InputError
	if errors.As(byok.CheckID("scope", sc), &in) {
		return errors.New(in.Reason)
	}
	return nil
}

// recordView is what the audit log shows of a record: no secret, no
// sealed secret.
func recordView(r Record) json.RawMessage {
	if r.Version == 0 {
		return nil
	}
	b, _ := json.Marshal(map[string]any{
		"state": r.State, "provider": r.Settings.Provider, "key_id": r.Settings.KeyID,
		"directory_id": r.Settings.DirectoryID, "client_id": r.Settings.ClientID, "credential": r.Settings.Credential,
		"secret_set": r.SealedSecret.KeyID != "", "enforce_at": r.EnforceAt, "coverage": r.Coverage,
	})
	return b
}

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

// denied records a refused admin action.
func (s *Service) denied(ctx context.Context, actor audit.Actor, tenant string, op Op, err error) {
	s.record(ctx, audit.Event{Tenant: tenant, Actor: actor, Action: "key." + string(op), Outcome: audit.Denied, Reason: err.Error()})
}

// CertificateValidity is how long the certificates of a rollover are
// valid, as those the console generates for a new credential.
const CertificateValidity = 365 * 24 * time.Hour

// CertificateCredential is the public part of a tenant's certificate
// credential: its certificates without their private keys.
type CertificateCredential struct {
	// Current is the certificate byok signs in with until Entra ID
	// accepts Next.
	Current *x509.Certificate
	// Next is the certificate of a rollover in progress; nil outside one.
	// Both are accepted until the rollover is finished.
	Next *x509.Certificate
}

// Certificates returns the certificates of the tenant's certificate
// credential (unsealing the stored secret, never returning its keys). It
// fails with a [*FieldError] on credential if the tenant's credential is
// not [CredentialCertificate].
func (s *Service) Certificates(ctx context.Context, tenant string) (CertificateCredential, error) {
	_, _, set, err := s.certificateSet(ctx, tenant)
	if err != nil {
		return CertificateCredential{}, err
	}
	cc := CertificateCredential{Current: set.Current.Cert}
	if set.Next != nil {
		cc.Next = set.Next.Cert
	}
	return cc, nil
}

// StartCertificateRollover generates the next certificate of the tenant's
// certificate credential and returns it (with its private key, for the
// console to offer the certificate for download; the key must not leave
// the process). From then on byok signs in with the next certificate as
// soon as Entra ID accepts it and with the current one until then, so
// nothing breaks before the customer uploads the new certificate to the
// app registration. It re-seals the credential and saves the record
// (compare-and-swap on its version), audited as key.certificate.rollover.
//
// It is a change of credential on the same key, so it is allowed in every
// state with settings, after the enforcement date too; it is refused with
// a [*StateError] before any key is configured and while a rotation or
// re-key runs, and with a [*FieldError] if the credential is not a
// certificate or a rollover is already in progress. The record's last
// Test no longer applies to the new credential: test again.
func (s *Service) StartCertificateRollover(ctx context.Context, actor audit.Actor, tenant string) (*azurekv.Certificate, error) {
	rec, _, set, err := s.certificateSet(ctx, tenant)
	if err == nil && set.Next != nil {
		err = &FieldError{Field: "credential", Reason: "a certificate rollover is already in progress (next certificate " +
			set.Next.ThumbprintSHA256()[:16] + "); upload that certificate to the app and finish the rollover first"}
	}
	if err != nil {
		s.refused(ctx, actor, tenant, "key.certificate.rollover", err)
		return nil, err
	}
	next, err := set.StartRollover(tenant, CertificateValidity)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: generating the next certificate of tenant %q: %w", tenant, err)
	}
	if err := s.saveCertificateSet(ctx, actor, rec, next, "key.certificate.rollover"); err != nil {
		return nil, err
	}
	return next.Next, nil
}

// FinishCertificateRollover makes the next certificate of the rollover
// the current one and forgets the old one. It first runs Test
// configuration with the next certificate alone (audited as key.test):
// it finishes only if that test passes, which proves that Entra ID
// accepts the next certificate, so that finishing can never lock byok
// out of the vault; the passing report becomes the record's last Test.
// A failing test returns its report with a [*FieldError] that names the
// failed checks, and changes nothing. The record is saved with
// compare-and-swap and the change audited as
// key.certificate.rollover.finish. Refused as
// [Service.StartCertificateRollover] is, and outside a rollover.
func (s *Service) FinishCertificateRollover(ctx context.Context, actor audit.Actor, tenant string) (Report, error) {
	rec, settings, set, err := s.certificateSet(ctx, tenant)
	if err == nil && set.Next == nil {
		err = &FieldError{Field: "credential", Reason: "no certificate rollover is in progress; start one first"}
	}
	if err != nil {
		s.refused(ctx, actor, tenant, "key.certificate.rollover.finish", err)
		return Report{}, err
	}
	done, err := set.FinishRollover()
	if err != nil {
		return Report{}, fmt.Errorf("lifecycle: finishing the certificate rollover of tenant %q: %w", tenant, err)
	}
	if settings.Secret, err = CertificateSetSecret(done); err != nil {
		return Report{}, err
	}
	r, err := s.test(ctx, actor, tenant, settings)
	if err != nil {
		return Report{}, err
	}
	if !r.Passed() {
		return r, &FieldError{Field: "credential", Reason: "Test configuration with the next certificate alone failed (" + failedChecks(r) +
			"); upload the next certificate to the app registration, wait a minute, and finish again"}
	}
	rec.LastTest = &r
	if err := s.saveCertificateSet(ctx, actor, rec, done, "key.certificate.rollover.finish"); err != nil {
		return Report{}, err
	}
	return r, nil
}

// certificateSet loads the tenant's record, its settings with the secret
// and its certificate credential, refusing as
// [Service.StartCertificateRollover] documents.
func (s *Service) certificateSet(ctx context.Context, tenant string) (Record, KeySettings, azurekv.CertificateSet, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Record{}, KeySettings{}, azurekv.CertificateSet{}, err
	}
	if err := s.allowed(rec, OpCertificateRollover); err != nil {
		return Record{}, KeySettings{}, azurekv.CertificateSet{}, err
	}
	if rec.Settings.Credential != CredentialCertificate || rec.SealedSecret.KeyID == "" {
		return Record{}, KeySettings{}, azurekv.CertificateSet{}, &FieldError{Field: "credential", Reason: fmt.Sprintf("is %q; only the %q credential has certificates to roll over",
			rec.Settings.Credential, CredentialCertificate)}
	}
	settings, err := s.unseal(ctx, rec)
	if err != nil {
		return Record{}, KeySettings{}, azurekv.CertificateSet{}, err
	}
	set, err := parseCertificateSecret(settings.Secret)
	if err != nil {
		return Record{}, KeySettings{}, azurekv.CertificateSet{}, fmt.Errorf("lifecycle: the stored certificate credential of tenant %q: %w", tenant, err)
	}
	return rec, settings, set, nil
}

// saveCertificateSet seals set as rec's credential, saves rec and audits
// the change as action.
func (s *Service) saveCertificateSet(ctx context.Context, actor audit.Actor, rec Record, set azurekv.CertificateSet, action string) error {
	before := rec
	sec, err := CertificateSetSecret(set)
	if err != nil {
		return err
	}
	settings := rec.Settings
	settings.Tenant, settings.Secret = rec.Tenant, sec
	if rec.SealedSecret, err = s.seal(ctx, rec.Tenant, sec); err != nil {
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
	view := map[string]string{"current_certificate": set.Current.ThumbprintSHA256()}
	if set.Next != nil {
		view["next_certificate"] = set.Next.ThumbprintSHA256()
	}
	after, _ := json.Marshal(view)
	s.audit(ctx, actor, rec.Tenant, action, rec.Settings.KeyID, recordView(before), after, err)
	return err
}

// refused records a refusal of action (a [*StateError] or [*FieldError])
// as denied; other errors (an unknown tenant, a store failure) are not
// decisions about the tenant's key and are only returned.
func (s *Service) refused(ctx context.Context, actor audit.Actor, tenant, action string, err error) {
	var se *StateError
	var fe *FieldError
	if errors.As(err, &se) || errors.As(err, &fe) {
		s.record(ctx, audit.Event{Tenant: tenant, Actor: actor, Action: action, Outcome: audit.Denied, Reason: err.Error()})
	}
}
