package gcpkms

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/openbyok/byok/gcpkmsemu"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
)

// harness grants the platform its roles on the whole key ring too: a
// caller without permission on a key that does not exist gets
// PERMISSION_DENIED, as Google answers, not NOT_FOUND.
func harness(t *testing.T, e *env, p kms.Provider) kmstest.Harness {
	for _, role := range []string{roleED, roleVwr} {
		must(t, e.emu.AddBinding(ring, role, "serviceAccount:"+e.platform))
	}
	return kmstest.Harness{
		Provider:         p,
		KeyID:            keyA,
		OtherKeyID:       keyB,
		UnknownKeyID:     ring + "/cryptoKeys/no-such-key",
		UnknownVersionID: keyA + "/cryptoKeyVersions/999",
		NewVersion:       func(t testing.TB) string { return e.rotate(t, keyA) },
	}
}

func TestConformance(t *testing.T) {
	e := newEnv(t)
	kmstest.RunConformance(t, harness(t, e, e.provider(t, e.config())))
}

// TestConformanceWithBinding runs the suite with a binding on every call,
// as the keyring makes them.
func TestConformanceWithBinding(t *testing.T) {
	e := newEnv(t)
	kmstest.RunConformance(t, harness(t, e, bound{e.provider(t, e.config()), kms.Binding{Kind: "customer-managed", Epoch: 7}}))
}

type bound struct {
	*Provider
	b kms.Binding
}

func (p bound) Wrap(ctx context.Context, id string, pt []byte) (kms.Wrapped, error) {
	return p.Provider.Wrap(kms.WithBinding(ctx, p.b), id, pt)
}

func (p bound) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	return p.Provider.Unwrap(kms.WithBinding(ctx, p.b), w)
}

// TestAAD checks what the wrapped value records and that a share of
// another tenant, kind or epoch, or presented as another version, does not
// unwrap.
func TestAAD(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config())
	b := kms.Binding{Kind: "customer-managed", Epoch: 3}
	ctx := kms.WithBinding(context.Background(), b)
	pt := []byte("0123456789abcdef0123456789abcdef")
	w, err := p.Wrap(ctx, keyA, pt)
	if err != nil {
		t.Fatal(err)
	}
	if w.KeyID != keyA+"/cryptoKeyVersions/1" || w.Algorithm != "GOOGLE_SYMMETRIC_ENCRYPTION;kind=customer-managed;epoch=3" {
		t.Errorf("Wrap recorded %s %s", w.KeyID, w.Algorithm)
	}
	// The customer decrypts with the documented AAD, as gcloud would.
	aad, _ := AAD(tenant, w.KeyID, w.Algorithm)
	if string(aad) != "byok-aad=1\ntenant=tenant-a\nversion="+w.KeyID+"\nkind=customer-managed\nepoch=3\n" {
		t.Errorf("AAD = %q", aad)
	}
	dec, err := e.admin.Decrypt(context.Background(), &kmspb.DecryptRequest{Name: keyA, Ciphertext: w.Ciphertext, AdditionalAuthenticatedData: aad})
	if err == nil {
		t.Error("the customer's admin (cloudkms.admin, no use permission) decrypted")
	}
	_ = dec

	cfgB := e.config()
	cfgB.Tenant = "tenant-b"
	other := e.provider(t, cfgB)
	for name, tc := range map[string]struct {
		p   *Provider
		ctx context.Context
	}{
		"other tenant": {other, ctx},
		"other epoch":  {p, kms.WithBinding(context.Background(), kms.Binding{Kind: "customer-managed", Epoch: 4})},
		"other kind":   {p, kms.WithBinding(context.Background(), kms.Binding{Kind: "platform", Epoch: 3})},
	} {
		_, err := tc.p.Unwrap(tc.ctx, w)
		if kms.ClassOf(err) != kms.Invalid || kms.ReasonOf(err) != kms.ReasonUnwrapFailed {
			t.Errorf("%s: Unwrap error %v, want invalid unwrap-failed", name, err)
		}
	}
	unbound := w
	unbound.Algorithm = AlgorithmSymmetric // the binding stripped from the record
	if _, err := p.Unwrap(context.Background(), unbound); kms.ClassOf(err) != kms.Invalid {
		t.Errorf("a value with its binding stripped: %v", err)
	}
	if got, err := p.Unwrap(ctx, w); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("Unwrap: %v", err)
	}
}

// TestOperationIDHeader checks that the ctx's operation id goes out as
// x-goog-request-reason on every call.
func TestOperationIDHeader(t *testing.T) {
	e := newEnv(t)
	var seen []string
	spy := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		seen = append(seen, method[strings.LastIndex(method, "/")+1:]+"="+strings.Join(md.Get(HeaderOperationID), ","))
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	p := e.provider(t, e.config(option.WithGRPCDialOption(spy)))
	ctx := kms.WithOperationID(context.Background(), "evt-42")
	w, err := p.Wrap(ctx, keyA, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Unwrap(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Describe(context.Background(), keyA); err != nil {
		t.Fatal(err)
	}
	want := "Encrypt=byok-op/evt-42 Encrypt=byok-op/evt-42 Decrypt=byok-op/evt-42 GetCryptoKey="
	if got := strings.Join(seen, " "); got != want {
		t.Errorf("calls and headers:\n got %s\nwant %s", got, want)
	}
}

// TestIntegrity corrupts answers on the wire (a client interceptor) and
// expects the CRC32C checks to refuse them as transient.
func TestIntegrity(t *testing.T) {
	e := newEnv(t)
	var corrupt bool
	flip := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if corrupt {
			switch r := reply.(type) {
			case *kmspb.EncryptResponse:
				r.Ciphertext[len(r.Ciphertext)-1] ^= 1
			case *kmspb.DecryptResponse:
				r.Plaintext[0] ^= 1
			}
		}
		return err
	})
	p := e.provider(t, e.config(option.WithGRPCDialOption(flip)))
	w, err := p.Wrap(context.Background(), keyA, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	corrupt = true
	_, err = p.Wrap(context.Background(), keyA, []byte("share"))
	if kms.ClassOf(err) != kms.Transient || kms.ReasonOf(err) != ReasonIntegrity {
		t.Errorf("corrupted Encrypt answer: %v", err)
	}
	if _, err = p.Unwrap(context.Background(), w); kms.ClassOf(err) != kms.Transient || kms.ReasonOf(err) != ReasonIntegrity {
		t.Errorf("corrupted Decrypt answer: %v", err)
	}
}

// TestErrorClasses drives each failure through the official client and
// checks its class and reason.
func TestErrorClasses(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config())
	ctx := context.Background()
	v1 := keyA + "/cryptoKeyVersions/1"
	w, err := p.Wrap(ctx, keyA, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, err error, class kms.Class, reason kms.Reason) {
		t.Helper()
		var ke *kms.Error
		if !errors.As(err, &ke) || ke.Class != class || ke.Reason != reason {
			t.Errorf("%s: error %v, want %v %s", name, err, class, reason)
		}
	}
	unwrap := func() error { _, err := p.Unwrap(ctx, w); return err }
	wrap := func() error { _, err := p.Wrap(ctx, keyA, []byte("share")); return err }

	e.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Decrypt"}, Code: codes.Unavailable, Count: 1})
	check("UNAVAILABLE", unwrap(), kms.Transient, kms.ReasonUnavailable)
	e.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Encrypt"}, Code: codes.ResourceExhausted, Count: 1})
	check("RESOURCE_EXHAUSTED", wrap(), kms.Transient, kms.ReasonThrottled)
	e.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Decrypt"}, Reset: true, Count: 1})
	check("connection reset", unwrap(), kms.Transient, kms.ReasonUnavailable)
	short := e.config()
	short.Timeout = 50 * time.Millisecond
	ps := e.provider(t, short)
	e.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Decrypt"}, Latency: time.Second, Count: 1})
	_, err = ps.Unwrap(ctx, w)
	check("DEADLINE_EXCEEDED", err, kms.Transient, kms.ReasonTimeout)
	e.emu.ClearFaults()

	check("malformed name", func() error { _, err := p.Wrap(ctx, "projects/customer/keyRings/byok", []byte("x")); return err }(), kms.Invalid, kms.ReasonBadRequest)
	check("version not found", func() error { _, err := p.Describe(ctx, keyA+"/cryptoKeyVersions/999"); return err }(), kms.Authoritative, kms.ReasonNotFound)
	// Granted on key A only, the platform cannot tell a missing key from
	// one it may not use: Google answers PERMISSION_DENIED.
	check("key not found, no grant", func() error { _, err := p.Describe(ctx, ring+"/cryptoKeys/gone"); return err }(), kms.Authoritative, kms.ReasonDenied)
	hmac := e.createKey(t, "mac", kmspb.CryptoKey_MAC, kmspb.ProtectionLevel_SOFTWARE)
	check("purpose MAC", func() error { _, err := p.Wrap(ctx, hmac, []byte("x")); return err }(), kms.Invalid, kms.ReasonBadRequest)

	e.setState(t, v1, kmspb.CryptoKeyVersion_DISABLED)
	check("disabled version", unwrap(), kms.Authoritative, kms.ReasonDisabled)
	check("disabled primary", wrap(), kms.Authoritative, kms.ReasonDisabled)
	e.setState(t, v1, kmspb.CryptoKeyVersion_ENABLED)

	must(t, e.emu.RemoveBinding(keyA, roleED, "serviceAccount:"+e.platform))
	check("binding removed", unwrap(), kms.Authoritative, kms.ReasonDenied)
	must(t, e.emu.AddBinding(keyA, roleED, "serviceAccount:"+e.platform))

	must(t, e.emu.SetServiceAccountDisabled(e.platform, true))
	check("service account disabled", unwrap(), kms.Authoritative, kms.ReasonUnauthenticated)
	must(t, e.emu.SetServiceAccountDisabled(e.platform, false))

	e.destroy(t, v1)
	check("destroy scheduled", unwrap(), kms.Authoritative, ReasonDestroyed)
	e.emu.Advance(31 * 24 * time.Hour)
	check("destroyed", unwrap(), kms.Authoritative, ReasonDestroyed)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRetriesTransient(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.MaxRetries = 2
	p := e.provider(t, cfg)
	w, err := p.Wrap(context.Background(), keyA, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	e.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Decrypt"}, Code: codes.Unavailable, Count: 2})
	e.emu.ResetCalls()
	if _, err := p.Unwrap(context.Background(), w); err != nil {
		t.Fatalf("Unwrap after two UNAVAILABLE: %v", err)
	}
	if n := e.emu.CallCount("Decrypt"); n != 3 {
		t.Errorf("Decrypt called %d times, want 3", n)
	}
}

// TestNoTokenIsNotARevocation: when the client cannot get a token (here
// Application Default Credentials with a metadata server that does not
// answer), the call fails transient: byok keeps serving from cache.
func TestNoTokenIsNotARevocation(t *testing.T) {
	e := newEnv(t)
	w, err := e.provider(t, e.config()).Wrap(context.Background(), keyA, []byte("share"))
	must(t, err)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	t.Setenv("GCE_METADATA_HOST", closedPort(t))
	cfg := e.config()
	cfg.CredentialsJSON = nil
	cfg.Timeout = time.Second
	_, err = e.provider(t, cfg).Unwrap(context.Background(), w)
	if kms.ClassOf(err) != kms.Transient {
		t.Errorf("Unwrap without a token: %v, want transient", err)
	}
}
