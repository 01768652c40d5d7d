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
	var h wrapHeader
	if nonce == nil {
		rand.Read(h.nonce[:])
	} else {
		copy(h.nonce[:], nonce)
	}
	b := h.appendTo(make([]byte, 0, WrappedDEKSize))
	return tk.Seal(b, h.nonce[:], dek, wrapAD(b, id, tenant, scope))
}

// UnwrapDEK authenticates and decrypts a blob made by [WrapDEK] with the
// same tenant key, id, tenant and scope, and returns the 32-byte DEK.
//
// Errors, checked in this order: an [*InputError] for an invalid tk, tenant
// or scope; a [*FormatError] if wrapped is not a v1 wrapped DEK of exactly
// [WrappedDEKSize] bytes; [ErrAuth] if it fails authentication.
func UnwrapDEK(tk cipher.AEAD, id KeyID, tenant, scope string, wrapped []byte) ([]byte, error) {
	if err := checkAEAD(tk); err != nil {
		return nil, err
	}
	if err := ValidateIDs(tenant, scope); err != nil {
		return nil, err
	}
	h, err := parseWrapped(wrapped)
	if err != nil {
		return nil, err
	}
	dek, err := tk.Open(make([]byte, 0, KeySize), h.nonce[:], wrapped[wrapHeaderSize:], wrapAD(wrapped, id, tenant, scope))
	if err != nil {
		return nil, ErrAuth
	}
	return dek, nil
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

// parseWrapped checks that b is exactly a v1 wrapped DEK and parses its
// header.
func parseWrapped(b []byte) (wrapHeader, error) {
	h, err := parseWrapHeader(b)
	if err == nil && len(b) != WrappedDEKSize {
		err = &FormatError{Reason: fmt.Sprintf("wrapped DEK is %d bytes; a v%d wrapped DEK is exactly %d", len(b), version1, WrappedDEKSize)}
	}
	return h, err
}

// wrapAD is the associated data of a wrapped DEK: its header, the DEK id
// and the length-prefixed tenant and scope ids.
func wrapAD(blob []byte, id KeyID, tenant, scope string) []byte {
	return appendWrapAD(make([]byte, 0, wrapHeaderSize+idSize+2+len(tenant)+len(scope)), blob, id, tenant, scope)
}

// appendWrapAD appends wrapAD's associated data to ad.
func appendWrapAD(ad, blob []byte, id KeyID, tenant, scope string) []byte {
	ad = append(ad, blob[:wrapHeaderSize]...)
	ad = append(ad, id[:]...)
	ad = append(ad, byte(len(tenant)))
	ad = append(ad, tenant...)
	ad = append(ad, byte(len(scope)))
	return append(ad, scope...)
}
