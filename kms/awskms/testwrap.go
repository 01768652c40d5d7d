package awskms

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openbyok/byok/kms"
)

// testBinding is the binding of the round trip's share, so the test sends
// the same encryption context keys as byok's own wraps.
var testBinding = Binding{Kind: "test-configuration", Epoch: 0}

// checkPermissions encrypts and decrypts a random share with the tenant's
// encryption context and the test's binding, as byok's own wraps do. A Decrypt that cannot use a real ciphertext (Encrypt
// was refused) uses random bytes: KMS checks the policy first, so
// InvalidCiphertextException means allowed.
func (t *tester) checkPermissions(ctx context.Context) {
	if !t.needs(CheckPermissions, CheckKeyState, CheckKeySpec, CheckKeyUsage) {
		return
	}
	key := deref(t.md.Arn)
	pt := make([]byte, 32)
	rand.Read(pt)
	bctx := kms.WithBinding(ctx, testBinding)
	w, encErr := t.p.Wrap(bctx, key, pt)
	if encErr != nil {
		alg, _ := algorithm(testBinding, true) // a valid kind: never fails
		w = kms.Wrapped{KeyID: key, Algorithm: alg, Ciphertext: make([]byte, 200)}
		rand.Read(w.Ciphertext)
	}
	_, decErr := t.p.Unwrap(bctx, w)
	if decErr != nil && kms.ClassOf(decErr) == kms.Invalid && encErr != nil {
		decErr = nil // got past the key policy
	}
	var allowed, refused []string
	var firstDenied, other error
	for _, r := range []struct {
		action string
		err    error
	}{{"kms:Encrypt", encErr}, {"kms:Decrypt", decErr}} {
		switch {
		case r.err == nil:
			allowed = append(allowed, r.action)
		case kms.ReasonOf(r.err) == kms.ReasonDenied:
			refused = append(refused, r.action)
			if firstDenied == nil {
				firstDenied = r.err
			}
		case other == nil:
			other = r.err
		}
	}
	v := fmt.Sprintf("allowed: %s; denied: %s", list(allowed), list(refused))
	c := Check{Name: CheckPermissions, Status: Fail, Value: v}
	switch {
	case len(allowed) == 2:
		c.Status, c.Reason = Pass, fmt.Sprintf("%s may encrypt and decrypt with the tenant's encryption context (%s=%s)", t.principal(), ContextTenant, t.cfg.Tenant)
	case firstDenied != nil:
		t.denied(&c, list(refused), firstDenied)
		c.Reason = fmt.Sprintf("with the tenant's encryption context (%s=%s), %s", ContextTenant, t.cfg.Tenant, c.Reason)
	default:
		c.Reason, c.Remedy = "the test encryption failed: "+errors.Unwrap(other).Error(), "fix the failures above and test again; if none, retry later"
	}
	t.add(c)
}

// checkTenantBinding, without a role, encrypts with another tenant's
// encryption context: the platform's principal serves every byok tenant, so
// a key policy that allows it lets any tenant that enters this key's ARN
// have byok use the key.
func (t *tester) checkTenantBinding(ctx context.Context) {
	if t.cfg.RoleARN != "" {
		t.add(Check{Name: CheckTenantBound, Status: Skip, Reason: "not needed: the role's external id ties it to this tenant"})
		return
	}
	if !t.needs(CheckTenantBound, CheckPermissions) {
		return
	}
	cfg := t.cfg
	cfg.Tenant = foreignTenantSeed
	cfg.Logger = nil // a refusal is the answer hoped for: not a warning
	other, err := New(cfg)
	if err == nil {
		_, err = other.Wrap(ctx, deref(t.md.Arn), []byte("byok test configuration: tenant binding"))
	}
	switch {
	case err == nil:
		t.report.KeyPolicy = KeyPolicyStatement(t.principal(), t.cfg.Tenant)
		t.add(Check{Name: CheckTenantBound, Status: Fail, Value: "any tenant's context allowed",
			Reason: fmt.Sprintf("the key policy lets %s encrypt with any encryption context: %s serves every byok tenant, so another tenant that enters this key's ARN could have byok use your key", t.principal(), t.principal()),
			Remedy: "require this tenant's encryption context in the statement that grants kms:Encrypt and kms:Decrypt (the Condition below), in the KMS console > the key > Key policy > Edit:\n" + t.report.KeyPolicy})
	case kms.ReasonOf(err) == kms.ReasonDenied:
		t.add(Check{Name: CheckTenantBound, Status: Pass, Value: fmt.Sprintf("%s=%s required", ContextTenant, t.cfg.Tenant),
			Reason: "the key policy refuses another tenant's encryption context"})
	default:
		t.add(Check{Name: CheckTenantBound, Status: Warn, Value: string(kms.ReasonOf(err)), Reason: "could not tell whether the key policy binds the tenant: " + err.Error(), Remedy: "test again"})
	}
}

func (t *tester) checkRoundTrip(ctx context.Context) {
	if !t.needs(CheckRoundTrip, CheckPermissions) {
		return
	}
	pt := make([]byte, 32)
	rand.Read(pt)
	bctx := kms.WithBinding(ctx, testBinding)
	w, err := t.p.Wrap(bctx, t.arn.String(), pt)
	if err == nil {
		var got []byte
		if got, err = t.p.Unwrap(bctx, w); err == nil && !bytes.Equal(got, pt) {
			err = errors.New("the decrypted share differs from the encrypted one")
		}
	}
	if err != nil {
		t.add(Check{Name: CheckRoundTrip, Status: Fail, Value: string(kms.ReasonOf(err)), Reason: "an Encrypt/Decrypt round trip failed: " + err.Error(),
			Remedy: "fix the failures above and test again; if none, retry later (KMS may be throttling or unavailable)"})
		return
	}
	t.wrapped = w
	ec, _ := EncryptionContext(t.cfg.Tenant, w.Algorithm)
	t.add(Check{Name: CheckRoundTrip, Status: Pass, Value: fmt.Sprintf("%s, encryption context %v", w.KeyID, ec),
		Reason: "a 32-byte share was encrypted and decrypted; byok records the key ARN, and CloudTrail shows the encryption context"})
}

func (t *tester) checkLatency(ctx context.Context) {
	if !t.needs(CheckLatency, CheckRoundTrip) {
		return
	}
	bctx := kms.WithBinding(ctx, testBinding)
	var d []time.Duration
	for range latencySample {
		start := time.Now()
		if _, err := t.p.Unwrap(bctx, t.wrapped); err != nil {
			t.add(Check{Name: CheckLatency, Status: Warn, Value: fmt.Sprintf("%d of %d calls done", len(d), latencySample),
				Reason: "a Decrypt failed while measuring latency: " + err.Error(), Remedy: "test again"})
			return
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	p50, p95 := d[len(d)/2], d[len(d)-1]
	v := fmt.Sprintf("Decrypt p50 %v, p95 %v over %d calls", p50.Round(time.Millisecond), p95.Round(time.Millisecond), len(d))
	if p95 > latencyWarn {
		t.add(Check{Name: CheckLatency, Status: Warn, Value: v, Reason: "KMS answers slowly from here; byok's periodic key checks and cold starts will be slow",
			Remedy: "use a key in (or a multi-region replica near) the platform's region"})
		return
	}
	t.add(Check{Name: CheckLatency, Status: Pass, Value: v, Reason: "KMS answers promptly"})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
