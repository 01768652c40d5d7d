package envelope

import (
	"bytes"
	"errors"
	"testing"
)

// wantFormatError fails t unless err is a *FormatError.
func wantFormatError(t *testing.T, err error, what string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("%s: got %v, want a *FormatError", what, err)
	}
}

// wantAuth fails t unless err is exactly ErrAuth.
func wantAuth(t *testing.T, err error, what string) {
	t.Helper()
	if err != ErrAuth {
		t.Fatalf("%s: got %v, want ErrAuth", what, err)
	}
}

func validVectors(t testing.TB, name string) []vector {
	var vs []vector
	for _, v := range loadVectors[vector](t, name) {
		if v.Error == "" {
			vs = append(vs, v)
		}
	}
	return vs
}

// TestMessageTamper flips every bit of every valid message vector and cuts
// it at every length: a flip in the 6-byte prefix is a format error, any
// other an authentication failure; every cut is rejected.
func TestMessageTamper(t *testing.T) {
	for _, v := range validVectors(t, messageFile) {
		aead := mustAEAD(t, v.Key)
		ct := bytes.Clone(v.Ciphertext)
		dst := make([]byte, 0, len(ct))
		for i := range ct {
			for bit := range 8 {
				ct[i] ^= 1 << bit
				_, err := Open(dst, aead, string(v.Tenant), string(v.Scope), ct, v.AAD)
				if i < prefixSize {
					wantFormatError(t, err, v.Comment)
				} else {
					wantAuth(t, err, v.Comment)
				}
				ct[i] ^= 1 << bit
			}
		}
		for n := range len(ct) {
			_, err := Open(dst, aead, string(v.Tenant), string(v.Scope), ct[:n], v.AAD)
			if n < Overhead {
				wantFormatError(t, err, v.Comment)
			} else {
				wantAuth(t, err, v.Comment)
			}
		}
		_, err := Open(dst, aead, string(v.Tenant), string(v.Scope), append(ct, 0), v.AAD)
		wantAuth(t, err, v.Comment+", one byte appended")
	}
}

// TestWrapTamper does the same for wrapped DEKs, which have one length.
func TestWrapTamper(t *testing.T) {
	for _, v := range validVectors(t, wrapFile) {
		tk := mustAEAD(t, v.Key)
		w := bytes.Clone(v.Ciphertext)
		for i := range w {
			for bit := range 8 {
				w[i] ^= 1 << bit
				_, err := UnwrapDEK(tk, v.keyID(), string(v.Tenant), string(v.Scope), w)
				if i < prefixSize {
					wantFormatError(t, err, v.Comment)
				} else {
					wantAuth(t, err, v.Comment)
				}
				w[i] ^= 1 << bit
			}
		}
		for n := range len(w) {
			_, err := UnwrapDEK(tk, v.keyID(), string(v.Tenant), string(v.Scope), w[:n])
			wantFormatError(t, err, v.Comment)
		}
		_, err := UnwrapDEK(tk, v.keyID(), string(v.Tenant), string(v.Scope), append(w, 0))
		wantFormatError(t, err, v.Comment+", one byte appended")
	}
}

// streamPositions returns the byte offsets of a stream of n bytes that
// TestStreamTamper alters and cuts: all of them for streams of up to 4 KiB;
// for longer ones (each check decrypts up to 128 KiB, and exhaustive runs
// took over a minute), every offset within 48 bytes of the start, of a
// segment boundary or of the end, and every 127th offset in between.
func streamPositions(n int) []int {
	const near, stride = 48, 127
	var ps []int
	for i := range n {
		d := (i - StreamHeaderSize) % encryptedSegment
		if n <= 4096 || i < StreamHeaderSize+near || d < near || d >= encryptedSegment-near || i >= n-near || i%stride == 0 {
			ps = append(ps, i)
		}
	}
	return ps
}

// TestStreamTamper flips every bit at each of the streamPositions of every
// valid stream vector and cuts it there. A flip in the prefix is a format
// error; any other is an authentication failure, and the reader releases
// only the segments before the altered one. A cut inside the header is a
// format error, a cut at a segment boundary ErrTruncated, any other cut
// ErrAuth.
func TestStreamTamper(t *testing.T) {
	for _, v := range validVectors(t, streamFile) {
		tenant, scope := string(v.Tenant), string(v.Scope)
		s := bytes.Clone(v.Ciphertext)
		positions := streamPositions(len(s))
		for _, i := range positions {
			for bit := range 8 {
				s[i] ^= 1 << bit
				got, err := readStream(s, v.Key, tenant, scope, v.AAD)
				switch {
				case i < prefixSize:
					wantFormatError(t, err, v.Comment)
				default:
					wantAuth(t, err, v.Comment)
					seg := max(0, i-StreamHeaderSize) / encryptedSegment
					if !bytes.Equal(got, v.Plaintext[:seg*SegmentSize]) {
						t.Fatalf("%s: flip at %d released %d bytes, want the %d authenticated ones", v.Comment, i, len(got), seg*SegmentSize)
					}
				}
				s[i] ^= 1 << bit
			}
		}
		for _, n := range positions {
			_, err := readStream(s[:n], v.Key, tenant, scope, v.AAD)
			switch {
			case n < StreamHeaderSize:
				wantFormatError(t, err, v.Comment)
			case (n-StreamHeaderSize)%encryptedSegment == 0:
				if err != ErrTruncated || !errors.Is(err, ErrAuth) {
					t.Fatalf("%s: cut at %d: got %v, want ErrTruncated wrapping ErrAuth", v.Comment, n, err)
				}
			default:
				wantAuth(t, err, v.Comment)
			}
		}
	}
}
