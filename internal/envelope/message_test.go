package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"strings"
	"testing"
)

var (
	testKey  = bytes.Repeat([]byte{0x42}, KeySize)
	otherKey = bytes.Repeat([]byte{0x43}, KeySize)
	testID   = KeyID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	longID   = strings.Repeat("x", MaxIDLen)
	tooLong  = strings.Repeat("x", MaxIDLen+1)
)

func TestSealOpenRoundTrip(t *testing.T) {
	aead := mustAEAD(t, testKey)
	for _, size := range []int{0, 1, 15, 16, 17, 1000, 1 << 16} {
		pt := bytes.Repeat([]byte{byte(size)}, size)
		prefix := []byte("kept")
		ct := Seal(bytes.Clone(prefix), aead, testID, "tenant", "scope", pt, []byte("aad"))
		if !bytes.HasPrefix(ct, prefix) || len(ct) != len(prefix)+size+Overhead {
			t.Fatalf("size %d: Seal returned %d bytes, want %q then %d bytes", size, len(ct), prefix, size+Overhead)
		}
		ct = ct[len(prefix):]
		if id, err := ParseID(ct); err != nil || id != testID {
			t.Fatalf("size %d: ParseID = %v, %v", size, id, err)
		}
		got, err := Open([]byte("kept"), aead, "tenant", "scope", ct, []byte("aad"))
		if err != nil || !bytes.Equal(got, append([]byte("kept"), pt...)) {
			t.Fatalf("size %d: Open = %d bytes, %v", size, len(got), err)
		}
	}
}

func TestSealNoncesDiffer(t *testing.T) {
	aead := mustAEAD(t, testKey)
	a := Seal(nil, aead, testID, "t", "s", []byte("same"), nil)
	b := Seal(nil, aead, testID, "t", "s", []byte("same"), nil)
	if bytes.Equal(a[msgNonceOffset:msgHeaderSize], b[msgNonceOffset:msgHeaderSize]) || bytes.Equal(a, b) {
		t.Fatal("two Seals of the same plaintext used the same nonce")
	}
}

// TestOpenWrongContext: each of key, tenant, scope and aad is bound.
func TestOpenWrongContext(t *testing.T) {
	aead := mustAEAD(t, testKey)
	ct := Seal(nil, aead, testID, "tenant", "scope", []byte("secret"), []byte("aad"))
	other := mustAEAD(t, otherKey)
	cases := []struct {
		name          string
		aead          cipher.AEAD
		tenant, scope string
		aad           []byte
	}{
		{"wrong key", other, "tenant", "scope", []byte("aad")},
		{"wrong tenant", aead, "tenanT", "scope", []byte("aad")},
		{"wrong scope", aead, "tenant", "scopE", []byte("aad")},
		{"wrong aad", aead, "tenant", "scope", []byte("aaD")},
		{"missing aad", aead, "tenant", "scope", nil},
		// Length prefixes: moving bytes between fields must not collide.
		{"tenant/scope boundary", aead, "tenants", "cope", []byte("aad")},
		{"scope/aad boundary", aead, "tenant", "scopea", []byte("ad")},
	}
	for _, c := range cases {
		_, err := Open(nil, c.aead, c.tenant, c.scope, ct, c.aad)
		wantAuth(t, err, c.name)
	}
}

func TestNilAndEmptyAADAreTheSame(t *testing.T) {
	aead := mustAEAD(t, testKey)
	ct := Seal(nil, aead, testID, "t", "s", []byte("x"), nil)
	if _, err := Open(nil, aead, "t", "s", ct, []byte{}); err != nil {
		t.Fatalf("Open with empty aad of a message sealed with nil aad: %v", err)
	}
}

// TestFormatErrors: each parser names what is wrong, in the documented
// order of checks.
func TestFormatErrors(t *testing.T) {
	aead := mustAEAD(t, testKey)
	msg := Seal(nil, aead, testID, "t", "s", []byte("hello"), nil)
	var stream bytes.Buffer
	w, err := NewWriter(&stream, testKey, testID, "t", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	wrapped := WrapDEK(aead, testID, "t", "s", testKey)
	with := func(b []byte, i int, c byte) []byte { b = bytes.Clone(b); b[i] = c; return b }

	cases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "too short: 0 bytes"},
		{"magic prefix only", []byte("byo"), "too short: 3 bytes"},
		{"not byok", []byte("hello, world, this is plain text and not a byok message"), "does not start with the magic"},
		{"json", []byte(`{"a":1}`), "does not start with the magic"},
		{"version 2", with(msg, 4, 2), "unknown format version 2; this library reads version 1"},
		{"version 0", with(msg, 4, 0), "unknown format version 0"},
		{"stream", stream.Bytes(), "this is a byok stream, not a single-shot message: read it with ReadStreamHeader"},
		{"wrapped DEK", wrapped, "this is a byok wrapped DEK, not a single-shot message: unwrap it with UnwrapDEK"},
		{"unknown type", with(msg, 5, 9), "object of unknown type 9"},
		{"short", msg[:Overhead-1], "too short: 49 bytes, a v1 single-shot message has at least 50"},
	}
	for _, c := range cases {
		_, err := Open(nil, aead, "t", "s", c.input, nil)
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open error = %v, want a *FormatError containing %q", c.name, err, c.want)
		}
		if _, err2 := ParseID(c.input); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("%s: ParseID error = %v, want the same as Open's: %v", c.name, err2, err)
		}
	}

	// The other parsers reject a message the same way.
	_, err = UnwrapDEK(aead, testID, "t", "s", msg)
	if err == nil || !strings.Contains(err.Error(), "this is a byok single-shot message, not a wrapped DEK: open it with Open") {
		t.Errorf("UnwrapDEK(message) = %v", err)
	}
	_, err = ReadStreamHeader(bytes.NewReader(msg))
	if err == nil || !strings.Contains(err.Error(), "this is a byok single-shot message, not a stream") {
		t.Errorf("ReadStreamHeader(message) = %v", err)
	}
	_, err = ReadStreamHeader(bytes.NewReader(with(stream.Bytes(), 4, 7)))
	if err == nil || !strings.Contains(err.Error(), "unknown format version 7") {
		t.Errorf("ReadStreamHeader(version 7) = %v", err)
	}
}

func TestInputErrors(t *testing.T) {
	aead := mustAEAD(t, testKey)
	ct := Seal(nil, aead, testID, "t", "s", nil, nil)
	gcm16, err := cipher.NewGCMWithNonceSize(must(aes.NewCipher(testKey)), 16)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, arg string
		err       error
	}{
		{"empty tenant", "tenant id", ValidateIDs("", "s")},
		{"long tenant", "tenant id", ValidateIDs(tooLong, "s")},
		{"empty scope", "scope id", ValidateIDs("t", "")},
		{"long scope", "scope id", ValidateIDs("t", tooLong)},
		{"Open empty tenant", "tenant id", second(Open(nil, aead, "", "s", ct, nil))},
		{"Open long scope", "scope id", second(Open(nil, aead, "t", tooLong, ct, nil))},
		{"Open nil aead", "aead", second(Open(nil, nil, "t", "s", ct, nil))},
		{"Open 16-byte nonces", "aead", second(Open(nil, gcm16, "t", "s", ct, nil))},
		{"NewAEAD 16-byte key", "key", second(NewAEAD(testKey[:16]))},
		{"UnwrapDEK empty scope", "scope id", second(UnwrapDEK(aead, testID, "t", "", nil))},
		{"UnwrapDEK nil aead", "aead", second(UnwrapDEK(nil, testID, "t", "s", nil))},
	}
	for _, c := range cases {
		var ie *InputError
		if !errors.As(c.err, &ie) || ie.Arg != c.arg {
			t.Errorf("%s: got %v, want an *InputError on %q", c.name, c.err, c.arg)
		}
	}
	if err := ValidateIDs("t", longID); err != nil {
		t.Errorf("ValidateIDs with a %d-byte scope: %v", MaxIDLen, err)
	}
	if err := ValidateIDs(tooLong, "s"); err.Error() != "envelope: tenant id is 256 bytes; the limit is 255" {
		t.Errorf("error for a long tenant id = %q", err)
	}
}

// TestPanics: the functions without an error result panic on arguments
// their callers must validate, with a message that names the argument.
func TestPanics(t *testing.T) {
	aead := mustAEAD(t, testKey)
	cases := []struct {
		name, want string
		f          func()
	}{
		{"Seal empty tenant", "tenant id is empty", func() { Seal(nil, aead, testID, "", "s", nil, nil) }},
		{"Seal long scope", "scope id is 256 bytes", func() { Seal(nil, aead, testID, "t", tooLong, nil, nil) }},
		{"Seal nil aead", "aead is not AES-GCM", func() { Seal(nil, nil, testID, "t", "s", nil, nil) }},
		{"WrapDEK short dek", "dek is 16 bytes", func() { WrapDEK(aead, testID, "t", "s", testKey[:16]) }},
		{"WrapDEK empty scope", "scope id is empty", func() { WrapDEK(aead, testID, "t", "", testKey) }},
	}
	for _, c := range cases {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.Contains(s, c.want) {
					t.Errorf("%s: panic %v, want one containing %q", c.name, r, c.want)
				}
			}()
			c.f()
		}()
	}
}

func TestWrapUnwrap(t *testing.T) {
	tk := mustAEAD(t, testKey)
	dek := bytes.Repeat([]byte{7}, KeySize)
	w := WrapDEK(tk, testID, "tenant", "scope", dek)
	if len(w) != WrappedDEKSize {
		t.Fatalf("WrapDEK returned %d bytes, want %d", len(w), WrappedDEKSize)
	}
	if bytes.Contains(w, dek) {
		t.Fatal("the wrapped DEK contains the DEK")
	}
	got, err := UnwrapDEK(tk, testID, "tenant", "scope", w)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("UnwrapDEK = %x, %v", got, err)
	}
	otherID := testID
	otherID[15] ^= 1
	for name, f := range map[string]func() ([]byte, error){
		"wrong tenant key": func() ([]byte, error) { return UnwrapDEK(mustAEAD(t, otherKey), testID, "tenant", "scope", w) },
		"wrong id":         func() ([]byte, error) { return UnwrapDEK(tk, otherID, "tenant", "scope", w) },
		"wrong tenant":     func() ([]byte, error) { return UnwrapDEK(tk, testID, "tenant2", "scope", w) },
		"wrong scope":      func() ([]byte, error) { return UnwrapDEK(tk, testID, "tenant", "scope2", w) },
	} {
		_, err := f()
		wantAuth(t, err, name)
	}
	// A message sealed under the tenant key is no wrapped DEK, even if its
	// plaintext is a DEK: the type byte and associated data differ.
	msg := Seal(nil, tk, testID, "tenant", "scope", dek, nil)
	_, err = UnwrapDEK(tk, testID, "tenant", "scope", msg)
	wantFormatError(t, err, "message as wrapped DEK")
}

func TestKeyIDString(t *testing.T) {
	if got, want := testID.String(), "0102030405060708090a0b0c0d0e0f10"; got != want {
		t.Errorf("KeyID.String() = %q, want %q", got, want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func second[T any](_ T, err error) error { return err }
