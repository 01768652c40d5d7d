package envelope

import (
	"crypto/cipher"
	"crypto/rand"
	"slices"
)

// Layout of a single-shot message (docs/format.md, "Single-shot message").
const (
	msgIDOffset    = prefixSize                 // 6
	msgNonceOffset = msgIDOffset + idSize       // 22
	msgHeaderSize  = msgNonceOffset + nonceSize // 34

	// Overhead is the number of bytes Seal adds to a plaintext: a 34-byte
	// header (magic, version, type, key id, nonce) and a 16-byte tag.
	Overhead = msgHeaderSize + tagSize
)

// Seal encrypts and authenticates plaintext under aead (the DEK whose id is
// id), appends the v1 message to dst and returns the extended slice.
//
// The associated data authenticated by AES-GCM is the 34-byte header, the
// length-prefixed tenant and scope ids and the length-prefixed aad, so the
// message opens only with the same tenant, scope and aad; nil and empty aad
// are the same. The 96-bit nonce is random: the caller must stay far below
// 2^32 messages per DEK.
//
// Seal does not allocate when cap(dst)-len(dst) >= len(plaintext)+Overhead
// and len(aad) is at most 64 KiB (it reuses pooled buffers). The spare
// capacity of dst must not overlap plaintext.
//
// aead must come from [NewAEAD]: Seal checks only its nonce and tag sizes,
// and panics if they are wrong or if tenant or scope is invalid; callers
// check the ids with [ValidateIDs] first.
func Seal(dst []byte, aead cipher.AEAD, id KeyID, tenant, scope string, plaintext, aad []byte) []byte {
	return seal(dst, aead, id, nil, tenant, scope, plaintext, aad)
}

// seal is Seal with the nonce given, or random if nonce is nil.
func seal(dst []byte, aead cipher.AEAD, id KeyID, nonce []byte, tenant, scope string, plaintext, aad []byte) []byte {
	mustValid(aead, tenant, scope)
	h := msgHeader{id: id}
	if nonce == nil {
		rand.Read(h.nonce[:])
	} else {
		copy(h.nonce[:], nonce)
	}
	dst = slices.Grow(dst, len(plaintext)+Overhead)
	start := len(dst)
	dst = h.appendTo(dst)
	header := dst[start:]
	adp := getAD()
	ad := appendContext(append(*adp, header...), tenant, scope, aad)
	dst = aead.Seal(dst, header[msgNonceOffset:], plaintext, ad)
	*adp = ad
	putAD(adp)
	return dst
}

// msgHeader is the header of a single-shot message.
type msgHeader struct {
	id    KeyID
	nonce [nonceSize]byte
}

func (h *msgHeader) appendTo(b []byte) []byte {
	b = appendPrefix(b, typeMessage)
	b = append(b, h.id[:]...)
	return append(b, h.nonce[:]...)
}

// parseMsgHeader checks that b is long enough to be a message and parses
// its header.
func parseMsgHeader(b []byte) (msgHeader, error) {
	if err := checkPrefix(b, typeMessage, Overhead); err != nil {
		return msgHeader{}, err
	}
	var h msgHeader
	copy(h.id[:], b[msgIDOffset:])
	copy(h.nonce[:], b[msgNonceOffset:])
	return h, nil
}

// ParseID checks that ciphertext is a v1 single-shot message (magic,
// version, type and minimum length) and returns the id of its DEK, so that
// the caller can look the DEK up before calling [Open]. Any problem is a
// [*FormatError]; ParseID authenticates nothing.
func ParseID(ciphertext []byte) (KeyID, error) {
	h, err := parseMsgHeader(ciphertext)
	return h.id, err
}

// Open authenticates and decrypts a v1 message made by [Seal] with the same
// DEK, tenant, scope and aad, appends the plaintext to dst and returns the
// extended slice. The spare capacity of dst must not overlap ciphertext.
//
// Errors, checked in this order: an [*InputError] for an invalid aead,
// tenant or scope; a [*FormatError] if ciphertext is not a v1 single-shot
// message (see [ParseID]); [ErrAuth] if it fails authentication, for
// whatever reason. On error Open returns nil, and it may have overwritten
// the spare capacity of dst.
func Open(dst []byte, aead cipher.AEAD, tenant, scope string, ciphertext, aad []byte) ([]byte, error) {
	if err := checkAEAD(aead); err != nil {
		return nil, err
	}
	if err := ValidateIDs(tenant, scope); err != nil {
		return nil, err
	}
	if _, err := parseMsgHeader(ciphertext); err != nil {
		return nil, err
	}
	adp := getAD()
	ad := appendContext(append(*adp, ciphertext[:msgHeaderSize]...), tenant, scope, aad)
	out, err := aead.Open(dst, ciphertext[msgNonceOffset:msgHeaderSize], ciphertext[msgHeaderSize:], ad)
	*adp = ad
	putAD(adp)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}
