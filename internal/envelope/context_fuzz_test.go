package envelope

import (
	"bytes"
	"testing"
)

// FuzzContextOpen is FuzzOpen for Context.Open: with the keys and contexts
// of the message vectors it never panics, fails only with ErrAuth or a
// *FormatError, and succeeds only on the vectors' own bytes.
func FuzzContextOpen(f *testing.F) {
	seedVectors(f, messageFile, 1<<20)
	messages := validVectors(f, messageFile)
	contexts := make([]*Context, len(messages))
	for i, v := range messages {
		contexts[i] = mustContext(f, string(v.Tenant), string(v.Scope))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i, v := range messages {
			pt, err := contexts[i].Open(mustAEAD(t, v.Key), b, v.AAD)
			if err != nil {
				checkOpenError(t, err)
			} else if !bytes.Equal(b, v.Ciphertext) || !bytes.Equal(pt, v.Plaintext) {
				t.Fatalf("Context.Open accepted %x, which is not the vector %q", b, v.Comment)
			}
		}
	})
}

// FuzzContextSeal: for any ids, plaintext, aad and nonce, Context.seal
// gives the bytes of seal, and Open and Context.Open open them.
func FuzzContextSeal(f *testing.F) {
	f.Add("tenant", "scope", []byte("plaintext"), []byte("aad"), []byte("twelve bytes"))
	f.Add("t", longID, []byte{}, bytes.Repeat([]byte{1}, 300), []byte("0123456789ab"))
	aead := mustAEAD(f, testKey)
	f.Fuzz(func(t *testing.T, tenant, scope string, pt, aad, nonce []byte) {
		c, err := NewContext(tenant, scope)
		if (err == nil) != (ValidateIDs(tenant, scope) == nil) {
			t.Fatalf("NewContext(%q, %q): %v; ValidateIDs disagrees", tenant, scope, err)
		}
		if err != nil {
			return
		}
		if len(nonce) != nonceSize {
			nonce = append(nonce, make([]byte, nonceSize)...)[:nonceSize]
		}
		ct := c.seal(aead, testID, nonce, pt, aad)
		if want := seal(nil, aead, testID, nonce, tenant, scope, pt, aad); !bytes.Equal(ct, want) {
			t.Fatalf("Context.seal = %x, seal = %x", ct, want)
		}
		for _, open := range []func() ([]byte, error){
			func() ([]byte, error) { return Open(nil, aead, tenant, scope, ct, aad) },
			func() ([]byte, error) { return c.Open(aead, ct, aad) },
		} {
			if got, err := open(); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("opening %x: %x, %v", ct, got, err)
			}
		}
	})
}
