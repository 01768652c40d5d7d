package byok_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

func (f *fixture) scope(tenant, scope string) *byok.ScopeHandle {
	f.t.Helper()
	h, err := f.kr.Scope(tenant, scope)
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

func (f *fixture) hEncrypt(h *byok.ScopeHandle, msg string) []byte {
	f.t.Helper()
	ct, err := h.Encrypt(f.ctx, []byte(msg), []byte("aad"))
	if err != nil {
		f.t.Fatalf("handle Encrypt(%s, %s): %v", h.Tenant(), h.Scope(), err)
	}
	return ct
}

func (f *fixture) hMustDecrypt(h *byok.ScopeHandle, ct []byte, want string) {
	f.t.Helper()
	pt, err := h.Decrypt(f.ctx, ct, []byte("aad"))
	if err != nil || string(pt) != want {
		f.t.Fatalf("handle Decrypt(%s, %s) = %q, %v; want %q", h.Tenant(), h.Scope(), pt, err, want)
	}
}

// A handle's ciphertexts are the keyring's: either reads the other's, and
// they stay bound to tenant, scope and aad.
func TestScopeHandleRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	h := f.scope("acme", "chat")
	ct := f.hEncrypt(h, "via handle")
	f.mustDecrypt("acme", "chat", ct, "via handle")
	f.hMustDecrypt(h, ct, "via handle")
	f.hMustDecrypt(h, f.encrypt("acme", "chat", "via keyring"), "via keyring")

	mail := f.scope("acme", "mail")
	if _, err := mail.Decrypt(f.ctx, ct, []byte("aad")); !errors.Is(err, byok.ErrDecrypt) {
		t.Fatalf("another scope's handle decrypted: %v, want ErrDecrypt", err)
	}
	if _, err := h.Decrypt(f.ctx, ct, []byte("other")); !errors.Is(err, byok.ErrDecrypt) {
		t.Fatalf("Decrypt with other aad = %v, want ErrDecrypt", err)
	}
	if _, err := h.Decrypt(f.ctx, ct[:len(ct)-1], []byte("aad")); !errors.Is(err, byok.ErrDecrypt) {
		t.Fatalf("Decrypt of a truncated ciphertext = %v, want ErrDecrypt", err)
	}
	if _, err := f.kr.Scope("acme", "bad scope"); !errors.Is(err, byok.ErrInvalidInput) {
		t.Fatalf("Scope with a space = %v, want ErrInvalidInput", err)
	}
	if _, err := h.Encrypt(f.ctx, nil, make([]byte, byok.MaxAAD+1)); !errors.Is(err, byok.ErrInvalidInput) {
		t.Fatalf("Encrypt with a big aad = %v, want ErrInvalidInput", err)
	}
	cancelled, cancel := context.WithCancel(f.ctx)
	cancel()
	if _, err := h.Encrypt(cancelled, []byte("x"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Encrypt with a cancelled context = %v, want context.Canceled", err)
	}
	nobody := f.scope("nobody", "chat")
	if _, err := nobody.Encrypt(f.ctx, []byte("x"), nil); !errors.Is(err, byok.ErrUnknownTenant) {
		t.Fatalf("Encrypt for an unknown tenant = %v, want ErrUnknownTenant", err)
	}
}

// The tenant and scope a handle checked once are bound into every message
// it seals and opens, whatever the aad (the associated data is built in
// the ciphertext's allocation up to a few hundred bytes, in a pooled buffer
// past that): a warm handle of another tenant or scope, the keyring with
// another tenant or scope and another aad all fail to decrypt, and the
// keyring and the handle read each other's messages.
func TestScopeHandleBindsTenantScopeAndAAD(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	f.tenant("acmf", byok.Grace)
	long := strings.Repeat("s", byok.MaxIDLen)
	h := f.scope("acme", long)
	others := []*byok.ScopeHandle{f.scope("acmf", long), f.scope("acme", long[1:]), f.scope("acme", "chat")}
	for _, o := range others {
		f.hEncrypt(o, "warm") // each has an active DEK and a last DEK
		f.hMustDecrypt(o, f.hEncrypt(o, "warm"), "warm")
	}
	for _, aad := range [][]byte{nil, []byte("a"), bytes.Repeat([]byte("b"), 200), bytes.Repeat([]byte("c"), 300), make([]byte, byok.MaxAAD)} {
		pt := []byte("message")
		ct, err := h.Encrypt(f.ctx, pt, aad)
		if err != nil || len(ct) != len(pt)+50 {
			t.Fatalf("Encrypt with %d bytes of aad: %d bytes, %v", len(aad), len(ct), err)
		}
		if got, err := h.Decrypt(f.ctx, ct, aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("handle Decrypt with %d bytes of aad = %q, %v", len(aad), got, err)
		}
		if got, err := f.kr.Decrypt(f.ctx, "acme", long, ct, aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("keyring Decrypt of the handle's message with %d bytes of aad = %q, %v", len(aad), got, err)
		}
		kct, err := f.kr.Encrypt(f.ctx, "acme", long, pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Decrypt(f.ctx, kct, aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("handle Decrypt of the keyring's message with %d bytes of aad = %q, %v", len(aad), got, err)
		}
		for _, o := range others {
			if _, err := o.Decrypt(f.ctx, ct, aad); !errors.Is(err, byok.ErrDecrypt) {
				t.Errorf("the handle of (%s, %.8s...) decrypted a message of (acme, %.8s...): %v", o.Tenant(), o.Scope(), long, err)
			}
			if _, err := f.kr.Decrypt(f.ctx, o.Tenant(), o.Scope(), ct, aad); !errors.Is(err, byok.ErrDecrypt) {
				t.Errorf("the keyring decrypted a message of (acme, %.8s...) as (%s, %.8s...): %v", long, o.Tenant(), o.Scope(), err)
			}
		}
		other := bytes.Clone(aad)
		if len(other) > 0 {
			other[0] ^= 1
		} else {
			other = []byte{0}
		}
		if _, err := h.Decrypt(f.ctx, ct, other); !errors.Is(err, byok.ErrDecrypt) {
			t.Errorf("handle Decrypt with other aad = %v, want ErrDecrypt", err)
		}
		tampered := bytes.Clone(ct)
		tampered[len(tampered)-1] ^= 1
		if _, err := h.Decrypt(f.ctx, tampered, aad); !errors.Is(err, byok.ErrDecrypt) {
			t.Errorf("handle Decrypt of a tampered message = %v, want ErrDecrypt", err)
		}
	}
	if _, err := h.Encrypt(f.ctx, make([]byte, byok.MaxPlaintext+1), nil); !errors.Is(err, byok.ErrInvalidInput) {
		t.Errorf("Encrypt of MaxPlaintext+1 bytes = %v, want ErrInvalidInput", err)
	}
	if h.Tenant() != "acme" || h.Scope() != long {
		t.Errorf("handle says (%s, %.8s...)", h.Tenant(), h.Scope())
	}
}

// A revocation stops a warm handle at once: on the check that finds it,
// and when another caller's Check found it.
func TestScopeHandleNoticesRevocationAtOnce(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	h := f.scope("acme", "covered")
	ct := f.hEncrypt(h, "data")
	f.hMustDecrypt(h, ct, "data")

	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDisabled)
	if _, err := f.kr.Check(f.ctx, "acme"); err != nil { // the monitor, not the handle
		t.Fatal(err)
	}
	if _, err := h.Encrypt(f.ctx, []byte("x"), nil); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("handle Encrypt after the revocation = %v, want ErrKeyRevoked", err)
	}
	if _, err := h.Decrypt(f.ctx, ct, []byte("aad")); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("handle Decrypt after the revocation = %v, want ErrKeyRevoked", err)
	}
	f.cmk.HealKey(keyID)
	f.clock.Advance(checkInterval)
	f.hMustDecrypt(h, ct, "data")
	f.hMustDecrypt(h, f.hEncrypt(h, "new"), "new")
}

// A handle runs the due check of its tenant key, and under Strict fails
// closed on the first transient failure.
func TestScopeHandleChecksWhenDue(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Strict)
	h := f.scope("acme", "covered")
	ct := f.hEncrypt(h, "data")
	f.cmk.ResetCalls()
	f.clock.Advance(checkInterval)
	f.hMustDecrypt(h, ct, "data")
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("%d unwraps when the check was due, want 1", n)
	}
	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
	f.clock.Advance(checkInterval)
	if _, err := h.Decrypt(f.ctx, ct, []byte("aad")); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("handle Decrypt of a strict tenant during an outage = %v, want ErrKeyUnavailable", err)
	}
	if _, err := h.Encrypt(f.ctx, []byte("x"), nil); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("handle Encrypt of a strict tenant during an outage = %v, want ErrKeyUnavailable", err)
	}
}

// Forget reaches a handle: its next call reloads, and a policy changed in
// the store meanwhile applies.
func TestScopeHandleNoticesForget(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	h := f.scope("acme", "covered")
	ct := f.hEncrypt(h, "data")
	f.hMustDecrypt(h, ct, "data")
	if err := f.db.SetTenantPolicy(f.ctx, "acme", byok.Strict); err != nil { // another replica
		t.Fatal(err)
	}
	f.kr.Forget("acme")
	f.cmk.ResetCalls()
	f.hMustDecrypt(h, ct, "data")
	if n := f.cmk.Calls().Unwrap; n != 1 {
		t.Fatalf("handle Decrypt after Forget made %d unwraps, want 1 (a reload)", n)
	}
	if ct2 := f.hEncrypt(h, "after"); dekOf(t, ct2) == dekOf(t, ct) {
		t.Fatal("handle Encrypt after Forget kept the forgotten DEK")
	}
	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
	f.clock.Advance(checkInterval)
	if _, err := h.Decrypt(f.ctx, ct, []byte("aad")); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("after Forget, the strict policy did not apply to the handle: %v", err)
	}
}

// A handle follows its scope's DEK retirement by message count and age.
func TestScopeHandleNoticesDEKRetirement(t *testing.T) {
	f := newFixture(t, func(c *byok.Config) { c.DEKMaxMessages = 3; c.DEKMaxAge = 2 * time.Hour })
	f.tenant("acme", byok.Grace)
	h := f.scope("acme", "chat")
	var cts [][]byte
	for range 4 {
		cts = append(cts, f.hEncrypt(h, "m"))
	}
	if dekOf(t, cts[2]) != dekOf(t, cts[0]) || dekOf(t, cts[3]) == dekOf(t, cts[0]) {
		t.Fatal("the handle did not retire its DEK after 3 messages")
	}
	f.clock.Advance(2 * time.Hour)
	if late := f.hEncrypt(h, "late"); dekOf(t, late) == dekOf(t, cts[3]) {
		t.Fatal("the handle used a DEK older than DEKMaxAge")
	}
	// Another caller's Encrypt retiring the DEK reaches the handle too.
	a := f.hEncrypt(h, "a")
	f.encrypt("acme", "chat", "1")
	f.encrypt("acme", "chat", "2") // spends the DEK
	if b := f.hEncrypt(h, "b"); dekOf(t, b) == dekOf(t, a) {
		t.Fatal("the handle used a DEK spent by other callers")
	}
	for _, ct := range cts {
		f.hMustDecrypt(h, ct, "m")
	}
}

// Evictions reach a handle: an evicted active DEK is replaced, and a
// tenant key evicted and revoked meanwhile is refused.
func TestScopeHandleNoticesEviction(t *testing.T) {
	f := newFixture(t, limits(1, 1))
	keyID := f.byokTenant("acme", byok.Grace)
	f.tenant("globex", byok.Grace)
	h := f.scope("acme", "covered")
	ct := f.hEncrypt(h, "data")
	f.encrypt("globex", "chat", "evicts acme's key and DEK")
	if byok.CachedDEKs(f.kr, "acme") != 0 {
		t.Fatal("acme's DEK still cached")
	}
	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDenied)
	if _, err := h.Encrypt(f.ctx, []byte("x"), nil); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("handle Encrypt after eviction and revocation = %v, want ErrKeyRevoked", err)
	}
	if _, err := h.Decrypt(f.ctx, ct, []byte("aad")); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("handle Decrypt after eviction and revocation = %v, want ErrKeyRevoked", err)
	}
}

// Handles used concurrently with Forget, SetPolicy and evictions leave no
// key behind with a stale policy.
func TestScopeHandleRaces(t *testing.T) {
	f := newFixture(t, limits(2, 3), func(c *byok.Config) { c.DEKMaxMessages = 5 })
	keyID := f.byokTenant("acme", byok.Grace)
	f.tenant("globex", byok.Grace)
	h := f.scope("acme", "covered")
	other := f.scope("globex", "chat")
	ct := f.hEncrypt(h, "data")

	stop := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch w {
				case 0:
					_, err = h.Decrypt(f.ctx, ct, []byte("aad"))
				case 1:
					_, err = h.Encrypt(f.ctx, []byte("x"), nil)
				default:
					_, err = other.Encrypt(f.ctx, []byte("x"), nil)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 20 {
		p := byok.Grace
		if i%2 == 1 {
			p = byok.Strict
		}
		if err := f.kr.SetPolicy(f.ctx, "acme", p); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			f.kr.Forget("acme")
		}
	}
	if err := f.kr.SetPolicy(f.ctx, "acme", byok.Strict); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f.cmk.FailKey(keyID, kms.Transient, kms.ReasonUnavailable)
	f.clock.Advance(checkInterval)
	if _, err := h.Decrypt(f.ctx, ct, []byte("aad")); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("handle Decrypt of a strict tenant during an outage = %v, want ErrKeyUnavailable", err)
	}
	if _, err := h.Encrypt(f.ctx, []byte("x"), nil); !errors.Is(err, byok.ErrKeyUnavailable) {
		t.Fatalf("handle Encrypt of a strict tenant during an outage = %v, want ErrKeyUnavailable", err)
	}
}
