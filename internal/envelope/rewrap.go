package envelope

import (
	"crypto/cipher"
	"crypto/rand"
)

// A Rewrapper moves wrapped DEKs from one tenant key to another, as
// [UnwrapDEK] then [WrapDEK] do, with buffers it reuses from one call to
// the next: for the batches of a re-key, where a DEK's allocations are a
// good part of its cost. The unwrapped DEK only ever sits in one buffer,
// cleared before each call returns. A Rewrapper is not safe for concurrent
// use; its zero value is ready to use.
type Rewrapper struct {
	ad  []byte // associated data
	dek []byte // the unwrapped DEK, cleared after use
	out []byte // the block results are cut from; never reused
}

// rewrapBlock is how many results a Rewrapper cuts from one allocation.
const rewrapBlock = 64

// Rewrap returns wrapped, a DEK wrapped under the tenant key from for id,
// tenant and scope, wrapped under the tenant key to instead, with a random
// nonce: the bytes WrapDEK would make. The result stays valid and unshared
// after later calls.
//
// Errors, checked in this order: an [*InputError] for an invalid from, to,
// tenant or scope; a [*FormatError] if wrapped is not a v1 wrapped DEK of
// exactly [WrappedDEKSize] bytes; [ErrAuth] if it fails authentication.
func (r *Rewrapper) Rewrap(from, to cipher.AEAD, id KeyID, tenant, scope string, wrapped []byte) ([]byte, error) {
	if err := checkAEAD(from); err != nil {
		return nil, err
	}
	if err := checkAEAD(to); err != nil {
		return nil, err
	}
	if err := ValidateIDs(tenant, scope); err != nil {
		return nil, err
	}
	if _, err := parseWrapped(wrapped); err != nil {
		return nil, err
	}
	// Nonces are read in place: a copy passed to the AEAD would escape.
	r.ad = appendWrapAD(r.ad[:0], wrapped, id, tenant, scope)
	dek, err := from.Open(r.dek[:0], wrapped[wrapNonceOffset:wrapHeaderSize], wrapped[wrapHeaderSize:], r.ad)
	if err != nil {
		return nil, ErrAuth
	}
	r.dek = dek
	defer clear(dek)

	if cap(r.out)-len(r.out) < WrappedDEKSize {
		r.out = make([]byte, 0, rewrapBlock*WrappedDEKSize)
	}
	start := len(r.out)
	b := append(appendPrefix(r.out, typeWrappedDEK), make([]byte, nonceSize)...)
	nonce := b[start+wrapNonceOffset : start+wrapHeaderSize]
	rand.Read(nonce)
	r.ad = appendWrapAD(r.ad[:0], b[start:], id, tenant, scope)
	r.out = to.Seal(b, nonce, dek, r.ad)
	return r.out[start:len(r.out):len(r.out)], nil
}
