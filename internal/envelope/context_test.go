package envelope

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"strings"
	"testing"
)

func mustContext(t testing.TB, tenant, scope string) *Context {
	t.Helper()
	c, err := NewContext(tenant, scope)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// contextAADs cover nil, empty, short and long aad: the associated data
// built in the result's allocation and in a pooled buffer.
var contextAADs = [][]byte{nil, {}, []byte("aad"), bytes.Repeat([]byte{7}, maxInlineAD), bytes.Repeat([]byte{8}, 70<<10)}

// The message vectors: Context.seal with the vector's nonce gives the
// vector's bytes, and Context.Open opens them or fails as they say.
func TestContextVectors(t *testing.T) {
	for _, v := range loadVectors[vector](t, messageFile) {
		c := mustContext(t, string(v.Tenant), string(v.Scope))
		aead := mustAEAD(t, v.Key)
		pt, err := c.Open(aead, v.Ciphertext, v.AAD)
		if v.Error != "" {
			checkErrorClass(t, v.Comment, err, v.Error)
			continue
		}
		if err != nil || !bytes.Equal(pt, v.Plaintext) {
			t.Fatalf("%s: Context.Open = %x, %v; want %x", v.Comment, pt, err, v.Plaintext)
		}
		ct := c.seal(aead, v.keyID(), v.Ciphertext[msgNonceOffset:msgHeaderSize], v.Plaintext, v.AAD)
		if !bytes.Equal(ct, v.Ciphertext) {
			t.Errorf("%s: Context.seal differs:\n got %x\nwant %x", v.Comment, ct, v.Ciphertext)
		}
	}
}

// Context.Seal and Seal, Context.Open and Open, are interchangeable, and
// the results are exactly as long as their capacity.
func TestContextMatchesSealOpen(t *testing.T) {
	aead := mustAEAD(t, testKey)
	for _, ids := range [][2]string{{"tenant", "scope"}, {"t", "s"}, {longID, longID}} {
		c := mustContext(t, ids[0], ids[1])
		if c.Tenant() != ids[0] || c.Scope() != ids[1] {
			t.Fatalf("Context of %q, %q says %q, %q", ids[0], ids[1], c.Tenant(), c.Scope())
		}
		for _, aad := range contextAADs {
			for _, size := range []int{0, 1, 16, 1000} {
				pt := bytes.Repeat([]byte{byte(size)}, size)
				ct := c.Seal(aead, testID, pt, aad)
				if len(ct) != size+Overhead || cap(ct) != len(ct) {
					t.Fatalf("Context.Seal of %d bytes: len %d, cap %d; want both %d", size, len(ct), cap(ct), size+Overhead)
				}
				if id, err := ParseID(ct); err != nil || id != testID {
					t.Fatalf("ParseID = %v, %v", id, err)
				}
				if got, err := Open(nil, aead, ids[0], ids[1], ct, aad); err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("Open of Context.Seal (aad %d bytes, pt %d): %v", len(aad), size, err)
				}
				nonce := ct[msgNonceOffset:msgHeaderSize]
				if want := seal(nil, aead, testID, nonce, ids[0], ids[1], pt, aad); !bytes.Equal(ct, want) {
					t.Fatalf("Context.Seal (aad %d bytes, pt %d) differs from Seal with the same nonce", len(aad), size)
				}
				ct2 := Seal(nil, aead, testID, ids[0], ids[1], pt, aad)
				got, err := c.Open(aead, ct2, aad)
				if err != nil || !bytes.Equal(got, pt) || cap(got) != len(got) {
					t.Fatalf("Context.Open of Seal (aad %d bytes, pt %d) = %d bytes (cap %d), %v", len(aad), size, len(got), cap(got), err)
				}
			}
		}
	}
	if _, err := NewContext("", "scope"); err == nil {
		t.Error("NewContext accepted an empty tenant")
	}
	if _, err := NewContext("tenant", tooLong); err == nil {
		t.Error("NewContext accepted a scope of 256 bytes")
	}
}

func TestContextNoncesDiffer(t *testing.T) {
	aead := mustAEAD(t, testKey)
	c := mustContext(t, "t", "s")
	a, b := c.Seal(aead, testID, []byte("same"), nil), c.Seal(aead, testID, []byte("same"), nil)
	if bytes.Equal(a[msgNonceOffset:msgHeaderSize], b[msgNonceOffset:msgHeaderSize]) {
		t.Fatal("two Context.Seals of the same plaintext used the same nonce")
	}
}

// Context.Open binds the key, tenant, scope and aad like Open, and fails
// on bytes that are not a message like Open.
func TestContextOpenWrongContext(t *testing.T) {
	aead, other := mustAEAD(t, testKey), mustAEAD(t, otherKey)
	for _, aad := range contextAADs {
		ct := mustContext(t, "tenant", "scope").Seal(aead, testID, []byte("secret"), aad)
		wrongAAD := append(bytes.Clone(aad), 0)
		cases := []struct {
			name string
			c    *Context
			aead cipher.AEAD
			aad  []byte
		}{
			{"wrong key", mustContext(t, "tenant", "scope"), other, aad},
			{"wrong tenant", mustContext(t, "tenanT", "scope"), aead, aad},
			{"wrong scope", mustContext(t, "tenant", "scopE"), aead, aad},
			{"ids moved", mustContext(t, "tenants", "cope"), aead, aad},
			{"wrong aad", mustContext(t, "tenant", "scope"), aead, wrongAAD},
		}
		for _, c := range cases {
			if pt, err := c.c.Open(c.aead, ct, c.aad); err != ErrAuth || pt != nil {
				t.Errorf("%s (aad %d bytes): Context.Open = %q, %v; want ErrAuth", c.name, len(aad), pt, err)
			}
		}
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 1
			_, err := mustContext(t, "tenant", "scope").Open(aead, bad, aad)
			var fe *FormatError
			if i < prefixSize && !errors.As(err, &fe) || i >= prefixSize && err != ErrAuth {
				t.Fatalf("byte %d flipped: Context.Open error %v", i, err)
			}
		}
	}
	c := mustContext(t, "tenant", "scope")
	var fe *FormatError
	for _, b := range [][]byte{nil, []byte("byok"), c.Seal(aead, testID, nil, nil)[:Overhead-1], WrapDEK(aead, testID, "tenant", "scope", testKey)} {
		if _, err := c.Open(aead, b, nil); !errors.As(err, &fe) {
			t.Errorf("Context.Open of %x: %v, want a *FormatError", b, err)
		}
	}
}

// Context.Seal and Context.Open leave plaintext, ciphertext and aad as
// they were, and what they return does not share memory with them.
func TestContextInputsUntouched(t *testing.T) {
	aead := mustAEAD(t, testKey)
	c := mustContext(t, "tenant", strings.Repeat("s", 40))
	pt, aad := []byte("plaintext"), []byte("aad")
	ct := c.Seal(aead, testID, pt, aad)
	ctCopy := bytes.Clone(ct)
	got, err := c.Open(aead, ct, aad)
	if err != nil || string(pt) != "plaintext" || string(aad) != "aad" || !bytes.Equal(ct, ctCopy) {
		t.Fatalf("inputs changed: %q %q %v", pt, aad, err)
	}
	got = append(got, "more"...)
	ct = append(ct, "more"...)
	if !bytes.Equal(ct[:len(ctCopy)], ctCopy) || string(got) != "plaintextmore" {
		t.Fatal("appending to the results changed them")
	}
}
