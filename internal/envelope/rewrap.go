package envelope

import "crypto/cipher"

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
	if err := checkAEAD(to); err != nil {
		return nil, err
	}
	dek, ad, err := openDEK(r.dek, r.ad, from, id, tenant, scope, wrapped)
	r.dek, r.ad = dek, ad
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	if cap(r.out)-len(r.out) < WrappedDEKSize {
		r.out = make([]byte, 0, rewrapBlock*WrappedDEKSize)
	}
	start := len(r.out)
	r.out, r.ad = sealDEK(r.out, r.ad, to, id, nil, tenant, scope, dek)
	return r.out[start:len(r.out):len(r.out)], nil
}
