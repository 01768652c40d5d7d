package lifecycle_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/store"
)

// TestJourney walks DESIGN §1: configure, test (failing, then passing),
// proceed, activation on the date, rotation, revocation and restoration,
// re-key, disable, and a revocation after disable that changes nothing.
func TestJourney(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.createTenant()
	f.wantState(lifecycle.StateNone)

	f.must(f.svc.Configure(ctx, admin, "t1", f.settings()))
	f.wantState(lifecycle.StateDraft)

	// The role is missing: the test fails and Proceed is refused.
	f.conn.setFail("the app has no wrapKey permission")
	r, err := f.svc.Test(ctx, admin, "t1")
	if err != nil || r.Passed() {
		t.Fatalf("Test with a failing check: %+v, %v", r, err)
	}
	_, err = f.svc.Proceed(ctx, admin, "t1", t0.Add(time.Hour), nil)
	var se *lifecycle.StateError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "failed") {
		t.Fatalf("Proceed after a failed test: %v", err)
	}

	// Granted: the test passes.
	f.conn.setFail("")
	if r, err = f.svc.Test(ctx, admin, "t1"); err != nil || !r.Passed() {
		t.Fatalf("Test: %+v, %v", r, err)
	}
	// An enforcement date in the past is a field error.
	_, err = f.svc.Proceed(ctx, admin, "t1", t0.Add(-time.Second), nil)
	var fe *lifecycle.FieldError
	if !errors.As(err, &fe) || fe.Field != "enforce_at" || !errors.Is(err, byok.ErrInvalidInput) {
		t.Fatalf("Proceed in the past: %v", err)
	}
	// Scope b is deselected.
	ck := f.must(f.svc.Proceed(ctx, admin, "t1", t0.Add(time.Hour), &lifecycle.Coverage{All: true, Exclude: []string{"b"}}))
	if ck.State != lifecycle.StateScheduled || !ck.EnforceAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after Proceed: %+v", ck)
	}
	// Data written before activation is under the platform key.
	a0 := f.encrypt("a", 10)
	b0 := f.encrypt("b", 3)

	// Before the date nothing happens; still editable.
	f.clock.Advance(59 * time.Minute)
	f.tick()
	f.wantState(lifecycle.StateScheduled)

	// On the date: activation moves a (not b, not the platform-only cache).
	f.clock.Advance(time.Minute)
	f.tick()
	ck = f.status()
	if ck.State != lifecycle.StateActive || ck.ActivatedAt.IsZero() || ck.Epoch != 1 {
		t.Fatalf("after activation: %+v", ck)
	}
	kinds := f.scopeKinds()
	if kinds["a"] != byok.CustomerManaged || kinds["b"] != byok.PlatformManaged || kinds["cache"] != byok.PlatformManaged {
		t.Fatalf("scope kinds after activation: %v", kinds)
	}
	if ck.Job == nil || ck.Job.Kind != lifecycle.JobActivate || ck.Job.State != lifecycle.JobDone || ck.Job.Done != 1 || ck.Job.Total != 1 { // one DEK
		t.Fatalf("activation job: %+v", ck.Job)
	}
	f.decryptAll("a", a0)
	f.decryptAll("b", b0)
	// After the date, configure is refused with the reason.
	if _, err := f.svc.Configure(ctx, admin, "t1", f.settings()); !errors.As(err, &se) || se.Op != lifecycle.OpConfigure {
		t.Fatalf("Configure when active: %v", err)
	}

	// Rotation (a) to a new version: at most 2 vault calls.
	a1 := f.encrypt("a", 5)
	v1 := ck.CurrentKeyID
	v2 := f.customer.Rotate(f.cmk)
	f.customer.ResetCalls()
	j, err := f.svc.Rotate(ctx, admin, "t1", lifecycle.RotateRequest{KeyID: v2})
	if err != nil || j.State != lifecycle.JobDone {
		t.Fatalf("Rotate: %+v, %v", j, err)
	}
	if c := f.customer.Calls(); c.Wrap+c.Unwrap+c.Describe > 2 {
		t.Fatalf("rotation made %+v vault calls, want at most 2", c)
	}
	inv, err := f.svc.Inventory(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	want := []lifecycle.VersionCount{
		{KeyID: v1, Shares: 0, SafeToRetire: true},
		{KeyID: v2, Shares: 1, Current: true},
	}
	if len(inv) != 2 || inv[0] != want[0] || inv[1] != want[1] {
		t.Fatalf("inventory = %+v, want %+v", inv, want)
	}
	f.decryptAll("a", a0)
	f.decryptAll("a", a1)

	// Revocation: the monitor fails the covered scope closed; b works.
	f.customer.FailKey(f.cmk, kms.Authoritative, kms.ReasonDenied)
	f.clock.Advance(time.Minute)
	f.tick()
	f.wantState(lifecycle.StateRevoked)
	if _, err := f.svc.Keyring().Encrypt(ctx, "t1", "a", []byte("x"), nil); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Encrypt in a covered scope after revocation: %v", err)
	}
	f.decryptAll("b", b0)
	// Disable must come before revoke.
	if _, err := f.svc.Disable(ctx, admin, "t1"); !errors.As(err, &se) || se.State != lifecycle.StateRevoked {
		t.Fatalf("Disable while revoked: %v", err)
	}

	// Restoration by itself.
	f.customer.HealKey(f.cmk)
	f.clock.Advance(time.Minute)
	f.tick()
	f.wantState(lifecycle.StateActive)
	f.decryptAll("a", a0)
	tl, err := f.svc.Timeline(ctx, "t1", 10)
	if err != nil || len(tl) != 2 || tl[0].Kind != lifecycle.HealthRestored || tl[1].Kind != lifecycle.HealthRevoked ||
		tl[1].Reason != kms.ReasonDenied || !tl[1].DetectedAt.Equal(t0.Add(61*time.Minute)) || !tl[1].EnforcedAt.Equal(tl[1].DetectedAt) ||
		tl[1].Replica != lifecycle.DefaultReplicaID {
		t.Fatalf("timeline = %+v, %v", tl, err)
	}

	// Re-key: a new epoch, every DEK re-wrapped by the job.
	j, err = f.svc.Rekey(ctx, admin, "t1")
	if err != nil || j.State != lifecycle.JobPending {
		t.Fatalf("Rekey: %+v, %v", j, err)
	}
	f.wantState(lifecycle.StateRotating)
	f.tick()
	j, err = f.svc.Job(ctx, "t1", j.ID)
	if err != nil || j.State != lifecycle.JobDone || j.Done != j.Total || j.Total != 2 { // the DEKs of a before and after the rotation's Forget
		t.Fatalf("re-key job: %+v, %v", j, err)
	}
	f.wantState(lifecycle.StateActive)
	f.decryptAll("a", a0)
	f.decryptAll("a", a1)

	// Disable, then revoke: everything still decrypts.
	if j, err = f.svc.Disable(ctx, admin, "t1"); err != nil {
		t.Fatal(err)
	}
	f.tick()
	f.wantState(lifecycle.StateDisabled)
	if k := f.scopeKinds(); k["a"] != byok.PlatformManaged {
		t.Fatalf("scope kinds after disable: %v", k)
	}
	f.customer.Fail(kms.Authoritative, kms.ReasonDenied)
	f.svc.Keyring().Forget("t1")
	f.decryptAll("a", a0)
	f.decryptAll("a", a1)
	f.decryptAll("b", b0)
	inv, err = f.svc.Inventory(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range inv {
		if !v.SafeToRetire {
			t.Fatalf("after disable, version %s is not safe to retire: %+v", v.KeyID, inv)
		}
	}

	got := f.audit.actions()
	for _, a := range []string{"key.configure/success", "key.test/failure", "key.test/success", "key.proceed/denied",
		"key.proceed/success", "key.activate/success", "key.rotate/success", "key.revoked/success", "key.restored/success",
		"key.disable/denied", "key.disable/success", "vault.wrapkey/success", "vault.unwrapkey/success"} {
		if got[a] == 0 {
			t.Errorf("no audit event %s; got %v", a, got)
		}
	}
}

// TestSecretWriteOnly: the secret is sealed, never shown, kept when
// omitted, and part of the tested hash.
func TestSecretWriteOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.createTenant()
	s := f.settings()
	s = withOptions(s, func(o *azure.Options) { o.Credential = azure.CredentialClientSecret })
	s.Secret = lifecycle.NewSecret("hunter2-very-secret")
	ck := f.must(f.svc.Configure(ctx, admin, "t1", s))
	if !ck.SecretSet || ck.Settings.Secret.IsSet() {
		t.Fatalf("status shows secret %v / set %v", ck.Settings.Secret.IsSet(), ck.SecretSet)
	}
	rec, err := f.db.KeyRecord(ctx, "t1")
	if err != nil || rec.SealedSecret.KeyID == "" || strings.Contains(string(rec.SealedSecret.Ciphertext), "hunter2") {
		t.Fatalf("stored record: %+v, %v", rec.SealedSecret, err)
	}
	if _, err := f.svc.Test(ctx, admin, "t1"); err != nil {
		t.Fatal(err)
	}
	// Omitting the secret keeps it: the tested hash still matches.
	s.Secret = lifecycle.Secret{}
	ck = f.must(f.svc.Configure(ctx, admin, "t1", s))
	if !ck.SecretSet || ck.LastTest != nil {
		t.Fatalf("after re-configure: secret set %v, last test %v", ck.SecretSet, ck.LastTest)
	}
	if _, err := f.svc.Test(ctx, admin, "t1"); err != nil {
		t.Fatal(err)
	}
	if ck = f.status(); ck.LastTest == nil {
		t.Fatal("the test of the kept secret does not count for the saved settings")
	}
	// Changing the secret invalidates the test.
	s.Secret = lifecycle.NewSecret("another-secret")
	if ck = f.must(f.svc.Configure(ctx, admin, "t1", s)); ck.LastTest != nil {
		t.Fatal("a test of other settings counts after the secret changed")
	}
	for _, e := range f.audit.events {
		for _, b := range [][]byte{e.Before, e.After, []byte(e.Reason)} {
			if strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "another-secret") {
				t.Fatalf("audit event %s holds the secret", e.Action)
			}
		}
	}
	for _, v := range []string{s.Secret.String(), func() string { b, _ := s.Secret.MarshalJSON(); return string(b) }()} {
		if strings.Contains(v, "another") {
			t.Fatalf("secret shows: %s", v)
		}
	}
}

// TestBadInput: every invalid request is a typed error and changes
// nothing.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.createTenant()
	good := f.settings()
	mod := func(m func(*lifecycle.KeySettings)) lifecycle.KeySettings { s := good; m(&s); return s }
	for _, c := range []struct {
		name     string
		settings lifecycle.KeySettings
		field    string
	}{
		{"empty key id", mod(func(s *lifecycle.KeySettings) { s.KeyID = "" }), "key_id"},
		{"space in key id", mod(func(s *lifecycle.KeySettings) { s.KeyID = "fake:a b" }), "key_id"},
		{"oversized client id", mod(func(s *lifecycle.KeySettings) {
			*s = withOptions(*s, func(o *azure.Options) { o.ClientID = strings.Repeat("x", 2000) })
		}), "client_id"},
		{"no directory", mod(func(s *lifecycle.KeySettings) { *s = withOptions(*s, func(o *azure.Options) { o.DirectoryID = "" }) }), "directory_id"},
		{"unknown provider", mod(func(s *lifecycle.KeySettings) { s.Provider = "aws" }), "provider"},
		{"unknown credential", mod(func(s *lifecycle.KeySettings) {
			*s = withOptions(*s, func(o *azure.Options) { o.Credential = "password" })
		}), "credential"},
		{"secret missing", mod(func(s *lifecycle.KeySettings) {
			*s = withOptions(*s, func(o *azure.Options) { o.Credential = azure.CredentialClientSecret })
		}), "secret"},
		{"secret with platform app", mod(func(s *lifecycle.KeySettings) { s.Secret = lifecycle.NewSecret("x") }), "secret"},
		{"oversized secret", mod(func(s *lifecycle.KeySettings) {
			*s = withOptions(*s, func(o *azure.Options) { o.Credential = azure.CredentialClientSecret })
			s.Secret = lifecycle.NewSecret(strings.Repeat("s", 300))
		}), "secret"},
	} {
		_, err := f.svc.Configure(ctx, admin, "t1", c.settings)
		var fe *lifecycle.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("%s: %v, want a field error on %s", c.name, err, c.field)
		}
	}
	f.wantState(lifecycle.StateNone)

	f.must(f.svc.Configure(ctx, admin, "t1", good))
	for _, c := range []struct {
		name  string
		cov   lifecycle.Coverage
		field string
	}{
		{"unknown scope", lifecycle.Coverage{Include: []string{"nope"}}, "coverage.include[0]"},
		{"platform-only scope", lifecycle.Coverage{Include: []string{"a", "cache"}}, "coverage.include[1]"},
		{"included and excluded", lifecycle.Coverage{All: true, Include: []string{"a"}, Exclude: []string{"a"}}, "coverage.exclude"},
		{"exclude without all", lifecycle.Coverage{Exclude: []string{"a"}}, "coverage.exclude"},
	} {
		_, err := f.svc.SetScopes(ctx, admin, "t1", c.cov)
		var fe *lifecycle.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want a field error on %s", c.name, err, c.field)
		}
	}
	if cov := f.status().Coverage; !cov.All || len(cov.Include)+len(cov.Exclude) != 0 {
		t.Fatalf("coverage changed by bad requests: %+v", cov)
	}
	if _, err := f.svc.Status(ctx, "nobody"); !errors.Is(err, byok.ErrUnknownTenant) {
		t.Fatalf("Status of an unknown tenant: %v", err)
	}
	if _, err := f.svc.Configure(ctx, admin, "nobody", good); !errors.Is(err, byok.ErrUnknownTenant) {
		t.Fatalf("Configure of an unknown tenant: %v", err)
	}
	// Proceed without a test.
	var se *lifecycle.StateError
	if _, err := f.svc.Proceed(ctx, admin, "t1", t0.Add(time.Hour), nil); !errors.As(err, &se) || !errors.Is(err, lifecycle.ErrState) {
		t.Fatalf("Proceed without a test: %v", err)
	}
	f.wantState(lifecycle.StateDraft)
}

// TestRulesTable holds every (state, operation) pair to the rules.
func TestRulesTable(t *testing.T) {
	allowed := map[lifecycle.State][]lifecycle.Op{
		lifecycle.StateNone:      {lifecycle.OpConfigure},
		lifecycle.StateDraft:     {lifecycle.OpConfigure, lifecycle.OpTest, lifecycle.OpProceed, lifecycle.OpSetScopes, lifecycle.OpCertificateRollover},
		lifecycle.StateScheduled: {lifecycle.OpConfigure, lifecycle.OpTest, lifecycle.OpProceed, lifecycle.OpSetScopes, lifecycle.OpCertificateRollover},
		lifecycle.StateActive:    {lifecycle.OpTest, lifecycle.OpSetScopes, lifecycle.OpRotate, lifecycle.OpRekey, lifecycle.OpDisable, lifecycle.OpCertificateRollover},
		lifecycle.StateRotating:  {lifecycle.OpTest},
		lifecycle.StateRevoked:   {lifecycle.OpTest, lifecycle.OpCertificateRollover},
		lifecycle.StateDisabled:  {lifecycle.OpConfigure, lifecycle.OpTest, lifecycle.OpSetScopes, lifecycle.OpCertificateRollover},
	}
	for _, st := range lifecycle.States {
		for _, op := range lifecycle.Ops {
			err := lifecycle.Allowed("t", st, false, op)
			want := contains(allowed[st], op)
			if want != (err == nil) {
				t.Errorf("%s in %s: %v, want allowed=%v", op, st, err, want)
				continue
			}
			if err == nil {
				continue
			}
			var se *lifecycle.StateError
			if !errors.As(err, &se) || se.State != st || se.Op != op || se.Reason == "" || !errors.Is(err, lifecycle.ErrState) {
				t.Errorf("%s in %s: %#v", op, st, err)
			}
			if len(se.Allowed) != len(allowed[st]) {
				t.Errorf("%s in %s: allowed %v, want %v", op, st, se.Allowed, allowed[st])
			}
		}
	}
	// Scheduled past the enforcement date: only scopes, test and a
	// certificate rollover.
	for _, op := range lifecycle.Ops {
		err := lifecycle.Allowed("t", lifecycle.StateScheduled, true, op)
		if want := op == lifecycle.OpSetScopes || op == lifecycle.OpTest || op == lifecycle.OpCertificateRollover; want != (err == nil) {
			t.Errorf("%s when scheduled and enforced: %v", op, err)
		}
	}
	// In the customer admin's words: what is wrong and what to do, no
	// jargon.
	if err := lifecycle.Allowed("t", lifecycle.StateRevoked, false, lifecycle.OpDisable); !strings.Contains(err.Error(), "your key cannot be reached, and turning BYOK off needs your key one last time") ||
		!strings.Contains(err.Error(), "restore the platform's access to the key in your vault, then disable") || strings.Contains(err.Error(), "must come before") {
		t.Errorf("disable when revoked says %q", err)
	}
}

func contains(ops []lifecycle.Op, op lifecycle.Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// TestScheduledStillEditable: before the date a scheduled key can be
// edited (back to draft) and after it only scopes change.
func TestScheduledStillEditable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.createTenant()
	f.must(f.svc.Configure(ctx, admin, "t1", f.settings()))
	if _, err := f.svc.Test(ctx, admin, "t1"); err != nil {
		t.Fatal(err)
	}
	f.must(f.svc.Proceed(ctx, admin, "t1", t0.Add(time.Hour), nil))
	s := f.settings()
	s = withOptions(s, func(o *azure.Options) { o.ClientID = "app-2" })
	if ck := f.must(f.svc.Configure(ctx, admin, "t1", s)); ck.State != lifecycle.StateDraft || !ck.EnforceAt.IsZero() {
		t.Fatalf("re-configure when scheduled: %+v", ck)
	}
	if _, err := f.svc.Test(ctx, admin, "t1"); err != nil {
		t.Fatal(err)
	}
	f.must(f.svc.Proceed(ctx, admin, "t1", t0.Add(time.Hour), nil))
	f.clock.Advance(time.Hour)
	// The date has passed but no Tick has run: configure is refused.
	var se *lifecycle.StateError
	if _, err := f.svc.Configure(ctx, admin, "t1", s); !errors.As(err, &se) || se.State != lifecycle.StateScheduled {
		t.Fatalf("Configure past the date: %v", err)
	}
	f.must(f.svc.SetScopes(ctx, admin, "t1", lifecycle.Coverage{Include: []string{"b"}}))
	f.tick()
	if k := f.scopeKinds(); k["a"] != byok.PlatformManaged || k["b"] != byok.CustomerManaged {
		t.Fatalf("scope kinds: %v", k)
	}
}

// TestScopesMoveAndNewScopes: scopes move in and out after activation,
// and a scope that appears later follows the coverage's All.
func TestScopesMoveAndNewScopes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.activate(nil)
	a := f.encrypt("a", 20)
	ck := f.must(f.svc.SetScopes(ctx, admin, "t1", lifecycle.Coverage{All: true, Exclude: []string{"a"}}))
	if ck.Job == nil || ck.Job.Kind != lifecycle.JobScopes || ck.Job.State != lifecycle.JobPending {
		t.Fatalf("SetScopes job: %+v", ck.Job)
	}
	f.tick()
	if k := f.scopeKinds(); k["a"] != byok.PlatformManaged || k["b"] != byok.CustomerManaged {
		t.Fatalf("scope kinds: %v", k)
	}
	if j := f.status().Job; j.State != lifecycle.JobDone || j.Done != 1 {
		t.Fatalf("scopes job: %+v", j)
	}
	f.decryptAll("a", a)
	// A new scope is created platform-managed by the keyring, then covered.
	n := f.encrypt("new", 3)
	if k := f.scopeKinds(); k["new"] != byok.PlatformManaged {
		t.Fatalf("new scope before Tick: %v", k)
	}
	f.tick()
	if k := f.scopeKinds(); k["new"] != byok.CustomerManaged {
		t.Fatalf("new scope after Tick: %v", k)
	}
	f.decryptAll("new", n)
}

// TestAutoRotation: a versionless key follows the vault's new version.
func TestAutoRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.activate(nil)
	a := f.encrypt("a", 3)
	v2 := f.customer.Rotate(f.cmk)
	f.clock.Advance(time.Minute)
	f.tick()
	if ck := f.status(); ck.CurrentKeyID != v2 || ck.State != lifecycle.StateActive {
		t.Fatalf("after auto-rotation: current %s state %s, want %s", ck.CurrentKeyID, ck.State, v2)
	}
	inv, err := f.svc.Inventory(ctx, "t1")
	if err != nil || len(inv) != 2 || !inv[0].SafeToRetire || inv[1].KeyID != v2 {
		t.Fatalf("inventory: %+v, %v", inv, err)
	}
	f.decryptAll("a", a)
}

// TestRotateToAnotherKey: rotation (b) tests the new key first.
func TestRotateToAnotherKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.activate(nil)
	a := f.encrypt("a", 3)
	other := f.customer.AddKey("other")
	s := f.settings()
	s.KeyID = other
	f.conn.setFail("vault unreachable")
	var fe *lifecycle.FieldError
	if _, err := f.svc.Rotate(ctx, admin, "t1", lifecycle.RotateRequest{Settings: &s}); !errors.As(err, &fe) {
		t.Fatalf("Rotate to a key that fails its test: %v", err)
	}
	f.conn.setFail("")
	if _, err := f.svc.Rotate(ctx, admin, "t1", lifecycle.RotateRequest{Settings: &s}); err != nil {
		t.Fatal(err)
	}
	ck := f.status()
	if !strings.HasPrefix(ck.CurrentKeyID, other+"/") || ck.Settings.KeyID != other {
		t.Fatalf("after rotation to another key: %+v", ck)
	}
	f.svc.Keyring().Forget("t1")
	f.decryptAll("a", a)
	// A version of another key is refused for rotation (a).
	if _, err := f.svc.Rotate(ctx, admin, "t1", lifecycle.RotateRequest{KeyID: f.cmk + "/v1"}); !errors.As(err, &fe) {
		t.Fatalf("Rotate to a version of another key: %v", err)
	}
}

// TestRekeyResumes: a re-key that fails midway resumes from its cursor
// without redoing committed batches.
func TestRekeyResumes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.activate(nil)
	// 21 DEKs: Forget makes the next Encrypt create a new one.
	var a [][]byte
	for i := range 21 {
		f.svc.Keyring().Forget("t1")
		ct, err := f.svc.Keyring().Encrypt(ctx, "t1", "a", []byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		a = append(a, ct)
	}
	j, err := f.svc.Rekey(ctx, admin, "t1")
	if err != nil || j.Total != 21 {
		t.Fatalf("Rekey: %+v, %v", j, err)
	}
	// The platform key fails: the job stops after its first failure.
	f.platform.Fail(kms.Transient, kms.ReasonUnavailable)
	f.svc.Keyring().Forget("t1")
	if err := f.svc.Tick(ctx); err == nil {
		t.Fatal("Tick with a failing platform key succeeded")
	}
	j, _ = f.svc.Job(ctx, "t1", j.ID)
	if j.State != lifecycle.JobRunning || j.Attempts != 1 || j.Error == "" || j.Done != 0 {
		t.Fatalf("job after a failed run: %+v", j)
	}
	f.platform.Heal()
	f.tick()
	j, _ = f.svc.Job(ctx, "t1", j.ID)
	if j.State != lifecycle.JobDone || j.Done != 21 {
		t.Fatalf("job after resuming: %+v", j)
	}
	if n, err := f.db.CountDEKs(ctx, "t1", byok.CustomerManaged, 2, ""); err != nil || n != 0 {
		t.Fatalf("DEKs left under epoch 1: %d, %v", n, err)
	}
	f.decryptAll("a", a)
	// Epoch 1 now wraps nothing: only epoch 2's version counts.
	inv, err := f.svc.Inventory(ctx, "t1")
	if err != nil || len(inv) != 1 || inv[0].Shares != 1 {
		t.Fatalf("inventory after re-key: %+v, %v", inv, err)
	}
}

// TestActivationFailureGoesBackToDraft: an activation that keeps failing
// gives up after MaxAttempts and says why.
func TestActivationFailureGoesBackToDraft(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *lifecycle.Config) { c.MaxAttempts = 2 })
	f.createTenant()
	f.must(f.svc.Configure(ctx, admin, "t1", f.settings()))
	if _, err := f.svc.Test(ctx, admin, "t1"); err != nil {
		t.Fatal(err)
	}
	f.must(f.svc.Proceed(ctx, admin, "t1", t0.Add(time.Hour), nil))
	f.customer.FailKey(f.cmk, kms.Authoritative, kms.ReasonDenied)
	f.clock.Advance(time.Hour)
	for range 2 {
		if err := f.svc.Tick(ctx); err == nil {
			t.Fatal("Tick succeeded with the customer's key denied")
		}
	}
	ck := f.status()
	if ck.State != lifecycle.StateDraft || ck.Job.State != lifecycle.JobFailed || !strings.Contains(ck.Job.Error, string(kms.ReasonDenied)) {
		t.Fatalf("after failed activation: state %s job %+v", ck.State, ck.Job)
	}
	if k := f.scopeKinds(); k["a"] != byok.PlatformManaged {
		t.Fatalf("scopes moved by a failed activation: %v", k)
	}
}

// TestWebhookSigned: events reach a webhook with a valid HMAC signature.
func TestWebhookSigned(t *testing.T) {
	secret := []byte("0123456789abcdef-webhook")
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !lifecycle.VerifySignature(secret, b, r.Header.Get(lifecycle.SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(lifecycle.SignatureHeader))
		}
		if lifecycle.VerifySignature([]byte("wrong-secret-wrong"), b, r.Header.Get(lifecycle.SignatureHeader)) {
			t.Error("signature verifies under another secret")
		}
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	f := newFixture(t, func(c *lifecycle.Config) {
		c.Webhooks = []lifecycle.Webhook{{URL: srv.URL, Secret: secret}}
		c.HTTPClient = srv.Client()
	})
	f.activate(nil)
	f.customer.FailKey(f.cmk, kms.Authoritative, kms.ReasonDisabled)
	f.clock.Advance(time.Minute)
	f.tick()
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(bodies, "\n")
	for _, w := range []string{`"type":"key.revoked"`, `"reason":"key-disabled"`, `"to":"active"`, `"to":"revoked"`} {
		if !strings.Contains(all, w) {
			t.Errorf("no webhook with %s in:\n%s", w, all)
		}
	}
	if _, err := lifecycle.New(lifecycle.Config{Store: f.db, PlatformKMS: f.platform, PlatformKeyID: "fake:prk", Connectors: []lifecycle.Connector{f.conn},
		Webhooks: []lifecycle.Webhook{{URL: srv.URL, Secret: []byte("short")}}}); err == nil {
		t.Error("New accepted a 5-byte webhook secret")
	}
}

// TestStoreConflict: concurrent edits of one record are detected.
func TestStoreConflict(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.createTenant()
	f.must(f.svc.Configure(ctx, admin, "t1", f.settings()))
	rec, err := f.db.KeyRecord(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	stale := rec
	rec.Version++
	if err := f.db.PutKeyRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	stale.Version++
	if err := f.db.PutKeyRecord(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale write: %v", err)
	}
}

// A sealed credential is bound to its tenant: copied into another tenant's
// record, it does not open, so one tenant's credential never signs in for
// another.
func TestSealedSecretBoundToTenant(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.createTenant()
	if err := f.svc.CreateTenant(ctx, operator, "t2", byok.Grace, nil); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"t1", "t2"} {
		s := f.settings()
		s = withOptions(s, func(o *azure.Options) { o.Credential = azure.CredentialClientSecret })
		s.Secret = lifecycle.NewSecret("secret of " + tenant)
		if _, err := f.svc.Configure(ctx, admin, tenant, s); err != nil {
			t.Fatal(err)
		}
	}
	r1, err := f.db.KeyRecord(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := f.db.KeyRecord(ctx, "t2")
	if err != nil {
		t.Fatal(err)
	}
	r2.SealedSecret = r1.SealedSecret
	r2.Version++
	if err := f.db.PutKeyRecord(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Test(ctx, admin, "t2"); err == nil || !strings.Contains(err.Error(), "another tenant") {
		t.Fatalf("Test with t1's sealed credential in t2's record: %v, want an authentication failure", err)
	}
	if _, err := f.svc.Test(ctx, admin, "t1"); err != nil {
		t.Fatalf("t1's own credential: %v", err)
	}
}
