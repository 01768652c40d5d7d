package kmstest_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
)

func TestFakeConformance(t *testing.T) {
	f := kmstest.NewFake()
	a, b := f.AddKey("a"), f.AddKey("b")
	kmstest.RunConformance(t, kmstest.Harness{
		Provider:         f,
		KeyID:            a,
		OtherKeyID:       b,
		UnknownKeyID:     "fake:unknown",
		UnknownVersionID: "fake:a/v999",
		NewVersion:       func(testing.TB) string { return f.Rotate(a) },
	})
}

var bg = context.Background()

// wantErr fails t unless err is a *kms.Error of class and reason.
func wantErr(t *testing.T, err error, class kms.Class, reason kms.Reason) *kms.Error {
	t.Helper()
	var e *kms.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want a *kms.Error of class %v", err, err, class)
	}
	if e.Class != class || e.Reason != reason {
		t.Fatalf("error %v: class %v, reason %q; want %v, %q", err, e.Class, e.Reason, class, reason)
	}
	return e
}

func TestFakeIDs(t *testing.T) {
	f := kmstest.NewFake()
	a := f.AddKey("tenant-1")
	if a != "fake:tenant-1" {
		t.Errorf("AddKey = %q, want fake:tenant-1", a)
	}
	w, err := f.Wrap(bg, a, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	if w.KeyID != "fake:tenant-1/v1" || w.Algorithm != kmstest.FakeAlgorithm {
		t.Errorf("Wrap recorded %q, %q", w.KeyID, w.Algorithm)
	}
	if v2 := f.Rotate(w.KeyID); v2 != "fake:tenant-1/v2" {
		t.Errorf("Rotate of a versioned id = %q, want fake:tenant-1/v2", v2)
	}
	for _, id := range []string{"", "fake:", "fake:a b", "local:tenant-1", "fake:tenant-1/", "fake:tenant-1/2",
		"fake:tenant-1/v0", "fake:tenant-1/v01", "fake:tenant-1/v-1", "fake:tenant-1/v1/x"} {
		_, err := f.Describe(bg, id)
		e := wantErr(t, err, kms.Invalid, kms.ReasonBadRequest)
		if !strings.Contains(e.Error(), `"fake:NAME/vN"`) {
			t.Errorf("Describe(%q): %v does not show the id's form", id, err)
		}
	}
	w.KeyID = a
	_, err = f.Unwrap(bg, w)
	wantErr(t, err, kms.Invalid, kms.ReasonBadRequest)
}

func TestFakePlaintextSize(t *testing.T) {
	f := kmstest.NewFake()
	a := f.AddKey("a")
	for _, n := range []int{0, kms.MaxPlaintext + 1} {
		_, err := f.Wrap(bg, a, make([]byte, n))
		wantErr(t, err, kms.Invalid, kms.ReasonBadRequest)
	}
}

func TestFakeFailAndHeal(t *testing.T) {
	f := kmstest.NewFake()
	a := f.AddKey("a")
	w, err := f.Wrap(bg, a, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	f.Fail(kms.Authoritative, kms.ReasonDenied)
	_, err = f.Wrap(bg, a, []byte("share"))
	e := wantErr(t, err, kms.Authoritative, kms.ReasonDenied)
	if e.Op != "wrap" || e.KeyID != a || !errors.Is(err, kmstest.ErrInjected) {
		t.Errorf("Wrap error %v: want op wrap, key %s, wrapping ErrInjected", err, a)
	}
	_, err = f.Unwrap(bg, w)
	wantErr(t, err, kms.Authoritative, kms.ReasonDenied)
	// A global failure comes before any check of the request.
	_, err = f.Describe(bg, "malformed")
	wantErr(t, err, kms.Authoritative, kms.ReasonDenied)

	f.Fail(kms.Transient, kms.ReasonThrottled)
	_, err = f.Describe(bg, a)
	wantErr(t, err, kms.Transient, kms.ReasonThrottled)

	f.Heal()
	if got, err := f.Unwrap(bg, w); err != nil || string(got) != "share" {
		t.Errorf("after Heal, Unwrap = %q, %v", got, err)
	}
}

func TestFakeFailKey(t *testing.T) {
	f := kmstest.NewFake()
	a, b := f.AddKey("a"), f.AddKey("b")
	wa1, _ := f.Wrap(bg, a, []byte("a1"))
	a2 := f.Rotate(a)
	wa2, _ := f.Wrap(bg, a, []byte("a2"))
	wb, _ := f.Wrap(bg, b, []byte("b"))

	f.FailKey(a, kms.Authoritative, kms.ReasonDisabled)
	for _, w := range []kms.Wrapped{wa1, wa2} {
		_, err := f.Unwrap(bg, w)
		if e := wantErr(t, err, kms.Authoritative, kms.ReasonDisabled); e.KeyID != w.KeyID || !errors.Is(err, kmstest.ErrInjected) {
			t.Errorf("Unwrap error %v: want key id %s, wrapping ErrInjected", err, w.KeyID)
		}
	}
	if _, err := f.Unwrap(bg, wb); err != nil {
		t.Errorf("a failure of key a broke key b: %v", err)
	}
	f.HealKey(a)

	// A versioned id fails only that version, including through a
	// versionless id that resolves to it.
	f.FailKey(wa1.KeyID, kms.Authoritative, kms.ReasonNotFound)
	_, err := f.Unwrap(bg, wa1)
	wantErr(t, err, kms.Authoritative, kms.ReasonNotFound)
	if _, err := f.Unwrap(bg, wa2); err != nil {
		t.Errorf("a failure of version 1 broke version 2: %v", err)
	}
	f.FailKey(a2, kms.Transient, kms.ReasonUnavailable)
	_, err = f.Wrap(bg, a, []byte("x"))
	wantErr(t, err, kms.Transient, kms.ReasonUnavailable)

	// A key that does not exist yet can be made to fail.
	f.FailKey("fake:later", kms.Authoritative, kms.ReasonDenied)
	_, err = f.Describe(bg, "fake:later")
	wantErr(t, err, kms.Authoritative, kms.ReasonDenied)

	f.Heal()
	for _, w := range []kms.Wrapped{wa1, wa2} {
		if _, err := f.Unwrap(bg, w); err != nil {
			t.Errorf("after Heal, Unwrap(%s): %v", w.KeyID, err)
		}
	}
	_, err = f.Describe(bg, "fake:later")
	wantErr(t, err, kms.Authoritative, kms.ReasonNotFound)
}

func TestFakeCalls(t *testing.T) {
	f := kmstest.NewFake()
	a := f.AddKey("a")
	w, _ := f.Wrap(bg, a, []byte("x"))
	f.Unwrap(bg, w)
	f.Unwrap(bg, w)
	f.Describe(bg, "fake:unknown")
	canceled, cancel := context.WithCancel(bg)
	cancel()
	f.Describe(canceled, a)
	if got, want := f.Calls(), (kmstest.Counts{Wrap: 1, Unwrap: 2, Describe: 2}); got != want {
		t.Errorf("Calls = %+v, want %+v (failed calls count too)", got, want)
	}
	f.ResetCalls()
	if got := f.Calls(); got != (kmstest.Counts{}) {
		t.Errorf("after ResetCalls, Calls = %+v", got)
	}
}

type result struct {
	pt  []byte
	err error
}

// unwrapAsync runs Unwrap on its own goroutine.
func unwrapAsync(ctx context.Context, f *kmstest.Fake, w kms.Wrapped) <-chan result {
	done := make(chan result, 1)
	go func() {
		pt, err := f.Unwrap(ctx, w)
		done <- result{pt, err}
	}()
	return done
}

func TestFakeGate(t *testing.T) {
	f := kmstest.NewFake()
	a := f.AddKey("a")
	w, _ := f.Wrap(bg, a, []byte("share"))

	g := f.Block()
	first, second := unwrapAsync(bg, f, w), unwrapAsync(bg, f, w)
	<-g.Entered()
	<-g.Entered()
	select {
	case r := <-first:
		t.Fatalf("a call passed a closed gate: %v", r.err)
	case r := <-second:
		t.Fatalf("a call passed a closed gate: %v", r.err)
	default:
	}
	if got := f.Calls().Unwrap; got != 2 {
		t.Errorf("Calls().Unwrap = %d with two calls held, want 2", got)
	}
	g.Release()
	g.Release() // idempotent
	for _, done := range []<-chan result{first, second} {
		if r := <-done; r.err != nil || string(r.pt) != "share" {
			t.Errorf("released call = %q, %v", r.pt, r.err)
		}
	}
	// The released gate no longer holds calls.
	if _, err := f.Describe(bg, a); err != nil {
		t.Errorf("Describe after Release: %v", err)
	}
}

func TestFakeGateReleaseWithoutReceivingEntered(t *testing.T) {
	f := kmstest.NewFake()
	a := f.AddKey("a")
	g := f.Block()
	done := make(chan error, 1)
	go func() {
		_, err := f.Describe(bg, a)
		done <- err
	}()
	g.Release()
	if err := <-done; err != nil {
		t.Errorf("a call whose entry nobody received, after Release: %v", err)
	}
}

func TestFakeGateFailureAppliesOnRelease(t *testing.T) {
	f := kmstest.NewFake()
	a := f.AddKey("a")
	w, _ := f.Wrap(bg, a, []byte("share"))
	g := f.Block()
	done := unwrapAsync(bg, f, w)
	<-g.Entered()
	f.FailKey(a, kms.Authoritative, kms.ReasonDenied)
	g.Release()
	r := <-done
	wantErr(t, r.err, kms.Authoritative, kms.ReasonDenied)
}

func TestFakeGateHonoursContext(t *testing.T) {
	f := kmstest.NewFake()
	a := f.AddKey("a")
	w, _ := f.Wrap(bg, a, []byte("share"))
	g := f.Block()
	defer g.Release()

	t.Run("HeldAfterEntry", func(t *testing.T) {
		ctx, cancel := context.WithCancel(bg)
		done := unwrapAsync(ctx, f, w)
		<-g.Entered()
		cancel()
		r := <-done
		e := wantErr(t, r.err, kms.Transient, kms.ReasonCanceled)
		if !errors.Is(r.err, context.Canceled) || e.Op != "unwrap" || e.KeyID != w.KeyID {
			t.Errorf("error %v: want op unwrap on %s wrapping context.Canceled", r.err, w.KeyID)
		}
	})
	t.Run("EntryNotReceived", func(t *testing.T) {
		ctx, cancel := context.WithCancel(bg)
		done := unwrapAsync(ctx, f, w)
		cancel()
		r := <-done
		wantErr(t, r.err, kms.Transient, kms.ReasonCanceled)
	})
	t.Run("DoneBeforeTheCall", func(t *testing.T) {
		// The ctx is checked before the gate and the injected failure.
		f.Fail(kms.Authoritative, kms.ReasonDenied)
		defer f.Heal()
		ctx, cancel := context.WithCancel(bg)
		cancel()
		_, err := f.Wrap(ctx, a, []byte("x"))
		wantErr(t, err, kms.Transient, kms.ReasonCanceled)
	})
}

func TestFakeNewBlockReplacesGate(t *testing.T) {
	f := kmstest.NewFake()
	a := f.AddKey("a")
	w, _ := f.Wrap(bg, a, []byte("share"))
	g1 := f.Block()
	held := unwrapAsync(bg, f, w)
	<-g1.Entered()
	g2 := f.Block()
	g1.Release() // must not remove g2
	if r := <-held; r.err != nil {
		t.Fatalf("call released by the first gate: %v", r.err)
	}
	next := unwrapAsync(bg, f, w)
	<-g2.Entered()
	g2.Release()
	if r := <-next; r.err != nil || !bytes.Equal(r.pt, []byte("share")) {
		t.Errorf("call released by the second gate = %q, %v", r.pt, r.err)
	}
}

func TestFakePanics(t *testing.T) {
	f := kmstest.NewFake()
	f.AddKey("a")
	for name, fn := range map[string]func(){
		"AddKey duplicate":  func() { f.AddKey("a") },
		"AddKey bad name":   func() { f.AddKey("a/b") },
		"AddKey empty":      func() { f.AddKey("") },
		"Rotate unknown":    func() { f.Rotate("fake:b") },
		"Rotate malformed":  func() { f.Rotate("a") },
		"FailKey malformed": func() { f.FailKey("a", kms.Authoritative, kms.ReasonDenied) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
}
