package envelope

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"testing"
)

// seedVectors adds the ciphertexts of a vector file to f's corpus, cut to
// at most limit bytes.
func seedVectors(f *testing.F, name string, limit int) {
	for _, v := range loadVectors[vector](f, name) {
		f.Add([]byte(v.Ciphertext[:min(len(v.Ciphertext), limit)]))
	}
}

// FuzzParse parses every header type, re-marshals it and expects the same
// bytes. At most one type parses any input.
func FuzzParse(f *testing.F) {
	for _, name := range []string{messageFile, wrapFile, streamFile} {
		seedVectors(f, name, 128)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parsed := 0
		if h, err := parseMsgHeader(b); err == nil {
			parsed++
			if got := h.appendTo(nil); !bytes.Equal(got, b[:msgHeaderSize]) {
				t.Fatalf("message header %x re-marshals to %x", b[:msgHeaderSize], got)
			}
			if id, err := ParseID(b); err != nil || id != h.id {
				t.Fatalf("ParseID = %v, %v; parseMsgHeader found id %v", id, err, h.id)
			}
		}
		if h, err := parseStreamHeader(b); err == nil {
			parsed++
			if got := h.appendTo(nil); !bytes.Equal(got, b[:StreamHeaderSize]) {
				t.Fatalf("stream header %x re-marshals to %x", b[:StreamHeaderSize], got)
			}
		}
		h, err := ReadStreamHeader(bytes.NewReader(b))
		if h2, err2 := parseStreamHeader(b); h != h2 || (err == nil) != (err2 == nil) {
			t.Fatalf("ReadStreamHeader = %v, %v; parseStreamHeader = %v, %v", h, err, h2, err2)
		}
		if h, err := parseWrapHeader(b); err == nil {
			parsed++
			if got := h.appendTo(nil); !bytes.Equal(got, b[:wrapHeaderSize]) {
				t.Fatalf("wrapped-DEK header %x re-marshals to %x", b[:wrapHeaderSize], got)
			}
		}
		if parsed > 1 {
			t.Fatalf("%x parses as %d types", b, parsed)
		}
	})
}

// checkOpenError fails t unless err is one of the documented outcomes of
// opening untrusted bytes.
func checkOpenError(t *testing.T, err error) {
	t.Helper()
	var fe *FormatError
	if err != ErrAuth && err != ErrTruncated && !errors.As(err, &fe) {
		t.Fatalf("unexpected error %v", err)
	}
}

// FuzzOpen feeds arbitrary bytes to Open and UnwrapDEK with the keys and
// contexts of the vectors: they never panic, fail only with ErrAuth or a
// *FormatError, and succeed only on the vectors' own bytes.
func FuzzOpen(f *testing.F) {
	seedVectors(f, messageFile, 1<<20)
	seedVectors(f, wrapFile, 1<<20)
	messages, wraps := validVectors(f, messageFile), validVectors(f, wrapFile)
	aeads := map[string]cipher.AEAD{}
	for _, v := range append(messages, wraps...) {
		aeads[string(v.Key)] = mustAEAD(f, v.Key)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range messages {
			pt, err := Open(nil, aeads[string(v.Key)], string(v.Tenant), string(v.Scope), b, v.AAD)
			if err != nil {
				checkOpenError(t, err)
			} else if !bytes.Equal(b, v.Ciphertext) || !bytes.Equal(pt, v.Plaintext) {
				t.Fatalf("Open accepted %x, which is not the vector %q", b, v.Comment)
			}
		}
		for _, v := range wraps {
			dek, err := UnwrapDEK(aeads[string(v.Key)], v.keyID(), string(v.Tenant), string(v.Scope), b)
			if err != nil {
				checkOpenError(t, err)
			} else if !bytes.Equal(b, v.Ciphertext) || !bytes.Equal(dek, v.Plaintext) {
				t.Fatalf("UnwrapDEK accepted %x, which is not the vector %q", b, v.Comment)
			}
		}
	})
}

// FuzzStreamReader feeds arbitrary bytes to the stream reader with the keys
// and contexts of the small stream vectors: it never panics, fails only
// with ErrAuth, ErrTruncated or a *FormatError, and releases only
// authenticated plaintext.
func FuzzStreamReader(f *testing.F) {
	seedVectors(f, streamFile, 4096)
	var small []vector
	for _, v := range validVectors(f, streamFile) {
		if len(v.Ciphertext) <= 4096 {
			small = append(small, v)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range small {
			pt, err := readStream(b, v.Key, string(v.Tenant), string(v.Scope), v.AAD)
			if err != nil {
				checkOpenError(t, err)
			}
			if len(pt) > 0 && (!bytes.Equal(b, v.Ciphertext) || !bytes.Equal(pt, v.Plaintext)) {
				t.Fatalf("reader released %d bytes from %x, which is not the vector %q", len(pt), b, v.Comment)
			}
		}
	})
}
