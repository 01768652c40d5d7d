package envelope

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// Layout of a wrapped DEK (docs/format.md, "Wrapped DEK").
const (
	wrapNonceOffset = prefixSize                  // 6
	wrapHeaderSize  = wrapNonceOffset + nonceSize // 18

	// WrappedDEKSize is the exact size of a v1 wrapped DEK: an 18-byte
	// header (magic, version, type, nonce), the 32 encrypted key bytes and
	// a 16-byte tag.
	WrappedDEKSize = wrapHeaderSize + KeySize + tagSize
)

// WrapDEK encrypts the 32-byte dek under the tenant key tk and returns a
// self-contained, versioned blob of [WrappedDEKSize] bytes. The associated
// data binds the blob's header (whose type byte is the domain-separation
// label), the DEK's id, the tenant and the scope, so the blob unwraps only
// for the same id, tenant and scope. The nonce is random.
//
// WrapDEK panics if tk does not come from [NewAEAD], if dek is not 32 bytes
// or if tenant or scope is invalid: callers validate them first.
func WrapDEK(tk cipher.AEAD, id KeyID, tenant, scope string, dek []byte) []byte {
	return wrapDEK(tk, id, nil, tenant, scope, dek)
}

// wrapDEK is WrapDEK with the nonce given, or random if nonce is nil.
func wrapDEK(tk cipher.AEAD, id KeyID, nonce []byte, tenant, scope string, dek []byte) []byte {
	mustValid(tk, tenant, scope)
	if err := checkKey("dek", dek); err != nil {
		panic(err.Error())
	}
	b, _ := sealDEK(make([]byte, 0, WrappedDEKSize), make([]byte, 0, wrapADSize(tenant, scope)), tk, id, nonce, tenant, scope, dek)
	return b
}

// sealDEK appends to b the wrapped DEK of dek under tk, with nonce (random
// if nil), building its associated data in ad; it returns b and ad, whose
// buffers a caller may reuse. The arguments are valid. The nonce is
// written in place in b: a copy passed to the AEAD would escape.
func sealDEK(b, ad []byte, tk cipher.AEAD, id KeyID, nonce []byte, tenant, scope string, dek []byte) ([]byte, []byte) {
	start := len(b)
	var h wrapHeader
	b = h.appendTo(b)
	n := b[start+wrapNonceOffset : start+wrapHeaderSize]
	if nonce == nil {
		rand.Read(n)
	} else {
		copy(n, nonce)
	}
	ad = appendWrapAD(ad[:0], b[start:], id, tenant, scope)
	return tk.Seal(b, n, dek, ad), ad
}

// UnwrapDEK authenticates and decrypts a blob made by [WrapDEK] with the
// same tenant key, id, tenant and scope, and returns the 32-byte DEK.
//
// Errors, checked in this order: an [*InputError] for an invalid tk, tenant
// or scope; a [*FormatError] if wrapped is not a v1 wrapped DEK of exactly
// [WrappedDEKSize] bytes; [ErrAuth] if it fails authentication.
func UnwrapDEK(tk cipher.AEAD, id KeyID, tenant, scope string, wrapped []byte) ([]byte, error) {
	dek, _, err := openDEK(make([]byte, 0, KeySize), make([]byte, 0, wrapADSize(tenant, scope)), tk, id, tenant, scope, wrapped)
	return dek, err
}

// openDEK is UnwrapDEK decrypting into dek and building the associated
// data in ad; it returns both, whose buffers a caller may reuse.
func openDEK(dek, ad []byte, tk cipher.AEAD, id KeyID, tenant, scope string, wrapped []byte) ([]byte, []byte, error) {
	if err := checkAEAD(tk); err != nil {
		return dek, ad, err
	}
	if err := ValidateIDs(tenant, scope); err != nil {
		return dek, ad, err
	}
	if err := checkWrapped(wrapped); err != nil {
		return dek, ad, err
	}
	ad = appendWrapAD(ad[:0], wrapped, id, tenant, scope)
	out, err := tk.Open(dek[:0], wrapped[wrapNonceOffset:wrapHeaderSize], wrapped[wrapHeaderSize:], ad)
	if err != nil {
		return dek, ad, ErrAuth
	}
	return out, ad, nil
}

// wrapHeader is the header of a wrapped DEK.
type wrapHeader struct {
	nonce [nonceSize]byte
}

func (h *wrapHeader) appendTo(b []byte) []byte {
	return append(appendPrefix(b, typeWrappedDEK), h.nonce[:]...)
}

// parseWrapHeader checks that b is long enough to be a wrapped DEK and
// parses its header.
func parseWrapHeader(b []byte) (wrapHeader, error) {
	if err := checkPrefix(b, typeWrappedDEK, WrappedDEKSize); err != nil {
		return wrapHeader{}, err
	}
	var h wrapHeader
	copy(h.nonce[:], b[wrapNonceOffset:])
	return h, nil
}

// checkWrapped checks that b is exactly a v1 wrapped DEK.
func checkWrapped(b []byte) error {
	if _, err := parseWrapHeader(b); err != nil {
		return err
	}
	if len(b) != WrappedDEKSize {
		return &FormatError{Reason: fmt.Sprintf("wrapped DEK is %d bytes; a v%d wrapped DEK is exactly %d", len(b), version1, WrappedDEKSize)}
	}
	return nil
}

// wrapADSize is the size of the associated data of a wrapped DEK of
// tenant and scope: its header, the DEK id and the length-prefixed tenant
// and scope ids (appendWrapAD).
func wrapADSize(tenant, scope string) int {
	return wrapHeaderSize + idSize + 2 + len(tenant) + len(scope)
}

// appendWrapAD appends to ad the associated data of the wrapped DEK whose
// header starts blob.
func appendWrapAD(ad, blob []byte, id KeyID, tenant, scope string) []byte {
	ad = append(ad, blob[:wrapHeaderSize]...)
	ad = append(ad, id[:]...)
	ad = append(ad, byte(len(tenant)))
	ad = append(ad, tenant...)
	ad = append(ad, byte(len(scope)))
	return append(ad, scope...)
}
