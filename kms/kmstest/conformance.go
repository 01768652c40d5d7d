// Package kmstest helps test code that implements or uses a [kms.Provider].
//
// [RunConformance] is the suite every provider runs: it checks the
// contract of [kms.Provider] (versioned ids, tamper detection, error
// classes, cancellation) the same way for each. [Fake] is an in-memory
// provider with failure injection, call counters and a gate that holds
// calls, for the tests of packages that use a provider.
package kmstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
)

// Harness describes a provider to [RunConformance]. All fields but
// Deterministic are required.
type Harness struct {
	// Provider is the provider under test.
	Provider kms.Provider
	// KeyID is the versionless id of a key A that Provider wraps and
	// unwraps with.
	KeyID string
	// OtherKeyID is the versionless id of a key B, unrelated to A, that
	// Provider also wraps and unwraps with.
	OtherKeyID string
	// UnknownKeyID is a well-formed, versionless id of a key that does not
	// exist.
	UnknownKeyID string
	// UnknownVersionID is a well-formed, versioned id of a version of key A
	// that does not exist.
	UnknownVersionID string
	// NewVersion creates a new version of key A, which becomes its current
	// version, and returns its versioned id. It fails t on error. The suite
	// calls it while other goroutines use Provider.
	NewVersion func(t testing.TB) string
	// Deterministic says that the provider wraps with a deterministic
	// algorithm, as AES key wrap (RFC 3394/5649) is: two wraps of one
	// plaintext under one key version are then equal, and the suite checks
	// instead that they unwrap and that other plaintexts wrap differently.
	// Optional; false for randomized wrapping (RSA-OAEP, AES-GCM).
	Deterministic bool
}

// RunConformance runs the provider conformance suite as subtests of t. The
// subtests run one after another and share h's keys; they create new
// versions of key A. A provider passes when:
//
//   - plaintexts of 1 to [kms.MaxPlaintext] bytes round-trip, Wrap records
//     a versioned id and an algorithm, and neither call keeps or shares the
//     caller's memory;
//   - two wraps of one plaintext differ (with Deterministic: are equal,
//     and wraps of two plaintexts differ);
//   - a value of key A presented as key B (or B as A) fails with class
//     [kms.Invalid] or [kms.Authoritative];
//   - a value with any byte altered, truncated, extended or with another
//     algorithm fails with class [kms.Invalid];
//   - after a new version, Describe and Wrap of the versionless id use it,
//     old values still unwrap, a versioned id pins its version, and a value
//     presented as another version of the same key fails;
//   - Describe reports the versioned id Wrap records, an enabled key and
//     the wrapKey and unwrapKey operations;
//   - a cancelled or expired ctx fails each call with class
//     [kms.Transient] and reason [kms.ReasonCanceled] or
//     [kms.ReasonTimeout], wrapping ctx.Err();
//   - an unknown key or version fails with class [kms.Authoritative] and
//     reason [kms.ReasonNotFound];
//   - concurrent round trips succeed while a new version is created;
//   - every error is a [*kms.Error] with the call's Op and key id, a
//     Reason, and a message without the plaintext.
func RunConformance(t *testing.T, h Harness) {
	t.Helper()
	if h.Provider == nil || h.KeyID == "" || h.OtherKeyID == "" || h.UnknownKeyID == "" ||
		h.UnknownVersionID == "" || h.NewVersion == nil {
		t.Fatalf("kmstest: every field of Harness is required; got %+v", h)
	}
	c := conformance{Harness: h}
	t.Run("RoundTrip", c.testRoundTrip)
	t.Run("NoAliasing", c.testNoAliasing)
	t.Run("Randomized", c.testRandomized)
	t.Run("OtherKey", c.testOtherKey)
	t.Run("Tampered", c.testTampered)
	t.Run("Versions", c.testVersions)
	t.Run("Describe", c.testDescribe)
	t.Run("ContextDone", c.testContextDone)
	t.Run("UnknownKey", c.testUnknownKey)
	t.Run("UnknownVersion", c.testUnknownVersion)
	t.Run("Concurrent", c.testConcurrent)
}

type conformance struct{ Harness }

func (c conformance) testRoundTrip(t *testing.T) {
	for _, size := range []int{1, 16, 32, kms.MaxPlaintext} {
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			pt := random(size)
			w := c.wrap(t, c.KeyID, pt)
			if w.KeyID == "" || w.KeyID == c.KeyID {
				t.Errorf("Wrap(%s) recorded key id %q; want the versioned id", c.KeyID, w.KeyID)
			}
			if w.Algorithm == "" {
				t.Error("Wrap recorded no algorithm")
			}
			if size >= 16 && bytes.Contains(w.Ciphertext, pt) {
				t.Error("the ciphertext contains the plaintext")
			}
			if got := c.unwrap(t, w); !bytes.Equal(got, pt) {
				t.Errorf("Unwrap returned %d bytes that differ from the %d wrapped", len(got), len(pt))
			}
		})
	}
}

// testNoAliasing checks that the provider neither keeps the caller's
// plaintext nor hands out memory it reuses.
func (c conformance) testNoAliasing(t *testing.T) {
	pt := random(32)
	want := bytes.Clone(pt)
	w := c.wrap(t, c.KeyID, pt)
	clear(pt)
	got := c.unwrap(t, w)
	if !bytes.Equal(got, want) {
		t.Fatal("Unwrap after the caller cleared its plaintext returned other bytes")
	}
	clear(got)
	if again := c.unwrap(t, w); !bytes.Equal(again, want) {
		t.Error("Unwrap after the caller cleared a previous result returned other bytes")
	}
}

func (c conformance) testRandomized(t *testing.T) {
	pt := random(32)
	w1, w2 := c.wrap(t, c.KeyID, pt), c.wrap(t, c.KeyID, pt)
	switch {
	case c.Deterministic && w1.KeyID == w2.KeyID && !bytes.Equal(w1.Ciphertext, w2.Ciphertext):
		t.Error("two deterministic wraps of the same plaintext under one version differ")
	case c.Deterministic:
		if other := c.wrap(t, c.KeyID, random(32)); bytes.Equal(other.Ciphertext, w1.Ciphertext) {
			t.Error("wraps of two plaintexts gave the same ciphertext")
		}
	case bytes.Equal(w1.Ciphertext, w2.Ciphertext):
		t.Error("two wraps of the same plaintext gave the same ciphertext")
	}
	for _, w := range []kms.Wrapped{w1, w2} {
		if got := c.unwrap(t, w); !bytes.Equal(got, pt) {
			t.Error("Unwrap returned other bytes")
		}
	}
}

func (c conformance) testOtherKey(t *testing.T) {
	pt := random(32)
	a, b := c.wrap(t, c.KeyID, pt), c.wrap(t, c.OtherKeyID, pt)
	if a.KeyID == b.KeyID {
		t.Fatalf("keys A and B recorded the same key id %q", a.KeyID)
	}
	for _, tt := range []struct {
		name string
		w    kms.Wrapped
		id   string
	}{{"A as B", a, b.KeyID}, {"B as A", b, a.KeyID}} {
		w := tt.w
		w.KeyID = tt.id
		got, err := c.Provider.Unwrap(context.Background(), w)
		if err == nil {
			t.Errorf("%s: Unwrap succeeded (%d bytes)", tt.name, len(got))
			continue
		}
		checkErr(t, err, "unwrap", tt.id, kms.Invalid, kms.Authoritative)
		noSecret(t, err, pt)
	}
	if got := c.unwrap(t, b); !bytes.Equal(got, pt) {
		t.Error("Unwrap under key B returned other bytes")
	}
}

func (c conformance) testTampered(t *testing.T) {
	pt := random(32)
	w := c.wrap(t, c.KeyID, pt)
	ct := w.Ciphertext
	var variants []kms.Wrapped
	for i := range ct {
		v := w
		v.Ciphertext = bytes.Clone(ct)
		v.Ciphertext[i] ^= 1 << (i % 8)
		variants = append(variants, v)
	}
	for _, short := range [][]byte{ct[:len(ct)-1], ct[:len(ct)/2], ct[:1], nil} {
		v := w
		v.Ciphertext = bytes.Clone(short)
		variants = append(variants, v)
	}
	longer := w
	longer.Ciphertext = append(bytes.Clone(ct), 0)
	otherAlg := w
	otherAlg.Algorithm = "kmstest-unknown-algorithm"
	variants = append(variants, longer, otherAlg)

	for i, v := range variants {
		got, err := c.Provider.Unwrap(context.Background(), v)
		if err == nil {
			t.Errorf("variant %d (ciphertext %d bytes, algorithm %q): Unwrap succeeded with %d bytes",
				i, len(v.Ciphertext), v.Algorithm, len(got))
			continue
		}
		checkErr(t, err, "unwrap", w.KeyID, kms.Invalid)
		noSecret(t, err, pt)
	}
	if got := c.unwrap(t, w); !bytes.Equal(got, pt) {
		t.Error("the original no longer unwraps")
	}
}

func (c conformance) testVersions(t *testing.T) {
	pt := random(32)
	w1 := c.wrap(t, c.KeyID, pt)
	v1 := w1.KeyID
	if got := c.describe(t, c.KeyID).KeyID; got != v1 {
		t.Errorf("Describe(%s).KeyID = %q; Wrap just recorded %q", c.KeyID, got, v1)
	}

	v2 := c.NewVersion(t)
	if v2 == v1 || v2 == "" {
		t.Fatalf("NewVersion returned %q; the previous version is %q", v2, v1)
	}
	if got := c.describe(t, c.KeyID).KeyID; got != v2 {
		t.Errorf("after a new version, Describe(%s).KeyID = %q, want %q", c.KeyID, got, v2)
	}
	if got := c.describe(t, v1).KeyID; got != v1 {
		t.Errorf("Describe(%s).KeyID = %q", v1, got)
	}
	if got := c.unwrap(t, w1); !bytes.Equal(got, pt) {
		t.Error("a value wrapped under the old version no longer unwraps")
	}
	w2 := c.wrap(t, c.KeyID, pt)
	if w2.KeyID != v2 {
		t.Errorf("after a new version, Wrap(%s) recorded %q, want %q", c.KeyID, w2.KeyID, v2)
	}
	if got := c.unwrap(t, w2); !bytes.Equal(got, pt) {
		t.Error("a value wrapped under the new version does not unwrap")
	}
	pinned := c.wrap(t, v1, pt)
	if pinned.KeyID != v1 {
		t.Errorf("Wrap(%s) recorded %q; a versioned id must pin its version", v1, pinned.KeyID)
	}
	if got := c.unwrap(t, pinned); !bytes.Equal(got, pt) {
		t.Error("a value wrapped under a pinned old version does not unwrap")
	}

	for _, tt := range []struct {
		w  kms.Wrapped
		id string
	}{{w1, v2}, {w2, v1}} {
		swapped := tt.w
		swapped.KeyID = tt.id
		got, err := c.Provider.Unwrap(context.Background(), swapped)
		if err == nil {
			t.Errorf("a value wrapped under %s unwrapped as %s (%d bytes)", tt.w.KeyID, tt.id, len(got))
			continue
		}
		checkErr(t, err, "unwrap", tt.id, kms.Invalid, kms.Authoritative)
	}
}

func (c conformance) testDescribe(t *testing.T) {
	info := c.describe(t, c.KeyID)
	if w := c.wrap(t, c.KeyID, random(32)); info.KeyID != w.KeyID {
		t.Errorf("Describe(%s).KeyID = %q; Wrap recorded %q", c.KeyID, info.KeyID, w.KeyID)
	}
	if info.Type == "" {
		t.Error("Describe reported no key type")
	}
	if !info.Enabled {
		t.Error("Describe reported the key disabled")
	}
	for _, op := range []string{"wrapKey", "unwrapKey"} {
		if !slices.Contains(info.Ops, op) {
			t.Errorf("Describe reported ops %q, without %q", info.Ops, op)
		}
	}
	if other := c.describe(t, c.OtherKeyID); other.KeyID == info.KeyID {
		t.Errorf("keys A and B describe the same id %q", other.KeyID)
	}
}

func (c conformance) testContextDone(t *testing.T) {
	w := c.wrap(t, c.KeyID, random(32))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()

	for _, tt := range []struct {
		name   string
		ctx    context.Context
		cause  error
		reason kms.Reason
	}{
		{"Canceled", canceled, context.Canceled, kms.ReasonCanceled},
		{"DeadlineExceeded", expired, context.DeadlineExceeded, kms.ReasonTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			check := func(op, keyID string, err error) {
				t.Helper()
				if err == nil {
					t.Errorf("%s with a done ctx succeeded", op)
					return
				}
				e := checkErr(t, err, op, keyID, kms.Transient)
				if !errors.Is(err, tt.cause) {
					t.Errorf("%s error %v does not wrap %v", op, err, tt.cause)
				}
				if e != nil && e.Reason != tt.reason {
					t.Errorf("%s error reason = %q, want %q", op, e.Reason, tt.reason)
				}
			}
			_, err := c.Provider.Wrap(tt.ctx, c.KeyID, random(32))
			check("wrap", c.KeyID, err)
			_, err = c.Provider.Unwrap(tt.ctx, w)
			check("unwrap", w.KeyID, err)
			_, err = c.Provider.Describe(tt.ctx, c.KeyID)
			check("describe", c.KeyID, err)
		})
	}
}

func (c conformance) testUnknownKey(t *testing.T) {
	_, err := c.Provider.Wrap(context.Background(), c.UnknownKeyID, random(32))
	checkNotFound(t, err, "wrap", c.UnknownKeyID)
	_, err = c.Provider.Describe(context.Background(), c.UnknownKeyID)
	checkNotFound(t, err, "describe", c.UnknownKeyID)
}

func (c conformance) testUnknownVersion(t *testing.T) {
	_, err := c.Provider.Wrap(context.Background(), c.UnknownVersionID, random(32))
	checkNotFound(t, err, "wrap", c.UnknownVersionID)
	_, err = c.Provider.Describe(context.Background(), c.UnknownVersionID)
	checkNotFound(t, err, "describe", c.UnknownVersionID)
	w := c.wrap(t, c.KeyID, random(32))
	w.KeyID = c.UnknownVersionID
	_, err = c.Provider.Unwrap(context.Background(), w)
	checkNotFound(t, err, "unwrap", c.UnknownVersionID)
}

// testConcurrent runs round trips on several goroutines while a new
// version is created; run it with -race.
func (c conformance) testConcurrent(t *testing.T) {
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				pt := random(32)
				w, err := c.Provider.Wrap(context.Background(), c.KeyID, pt)
				if err != nil {
					t.Errorf("Wrap: %v", err)
					return
				}
				got, err := c.Provider.Unwrap(context.Background(), w)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Unwrap of a value wrapped under %s: %d bytes, error %v", w.KeyID, len(got), err)
					return
				}
			}
		})
	}
	id := c.NewVersion(t)
	wg.Wait()
	if got := c.describe(t, c.KeyID).KeyID; got != id {
		t.Errorf("after concurrent use, Describe(%s).KeyID = %q, want %q", c.KeyID, got, id)
	}
}

func (c conformance) wrap(t testing.TB, keyID string, pt []byte) kms.Wrapped {
	t.Helper()
	w, err := c.Provider.Wrap(context.Background(), keyID, pt)
	if err != nil {
		t.Fatalf("Wrap(%s, %d bytes): %v", keyID, len(pt), err)
	}
	return w
}

func (c conformance) unwrap(t testing.TB, w kms.Wrapped) []byte {
	t.Helper()
	pt, err := c.Provider.Unwrap(context.Background(), w)
	if err != nil {
		t.Fatalf("Unwrap(%s): %v", w.KeyID, err)
	}
	return pt
}

func (c conformance) describe(t testing.TB, keyID string) kms.KeyInfo {
	t.Helper()
	info, err := c.Provider.Describe(context.Background(), keyID)
	if err != nil {
		t.Fatalf("Describe(%s): %v", keyID, err)
	}
	return info
}

var sentinels = map[kms.Class]error{
	kms.Transient:     kms.ErrTransient,
	kms.Authoritative: kms.ErrAuthoritative,
	kms.Invalid:       kms.ErrInvalid,
}

// checkErr fails t unless err is, or wraps, a *kms.Error for op on keyID,
// with a reason and one of classes, that matches its class's sentinel. It
// returns the *kms.Error, or nil.
func checkErr(t testing.TB, err error, op, keyID string, classes ...kms.Class) *kms.Error {
	t.Helper()
	var e *kms.Error
	if !errors.As(err, &e) {
		t.Errorf("%s %s: error %v (%T) is not a *kms.Error", op, keyID, err, err)
		return nil
	}
	if e.Op != op || e.KeyID != keyID {
		t.Errorf("error %v has Op %q and KeyID %q, want %q and %q", err, e.Op, e.KeyID, op, keyID)
	}
	if !slices.Contains(classes, e.Class) {
		t.Errorf("%s %s: error %v has class %v, want one of %v", op, keyID, err, e.Class, classes)
	}
	if sentinel := sentinels[e.Class]; sentinel == nil || !errors.Is(err, sentinel) {
		t.Errorf("%s %s: error %v does not match the sentinel of its class %v", op, keyID, err, e.Class)
	}
	if e.Reason == "" {
		t.Errorf("%s %s: error %v has no reason", op, keyID, err)
	}
	return e
}

func checkNotFound(t testing.TB, err error, op, keyID string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s %s succeeded", op, keyID)
		return
	}
	if e := checkErr(t, err, op, keyID, kms.Authoritative); e != nil && e.Reason != kms.ReasonNotFound {
		t.Errorf("%s %s: reason %q, want %q", op, keyID, e.Reason, kms.ReasonNotFound)
	}
}

// noSecret fails t if err's message shows secret raw, in hex or in base64.
func noSecret(t testing.TB, err error, secret []byte) {
	t.Helper()
	msg := err.Error()
	for _, s := range []string{string(secret), hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret),
		base64.RawURLEncoding.EncodeToString(secret), fmt.Sprint(secret)} {
		if strings.Contains(msg, s) {
			t.Errorf("error message %q shows the plaintext", msg)
		}
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
