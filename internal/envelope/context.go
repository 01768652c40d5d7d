package envelope

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
)

// Context is one tenant's scope, checked once and laid out once for the
// associated data of its single-shot messages. [Context.Seal] and
// [Context.Open] are [Seal] and [Open] for that tenant and scope, byte for
// byte the same format, without their per-call checks: a caller that
// seals or opens many messages of one scope makes a Context once.
//
// The AEADs given to its methods must come from [NewAEAD]; unlike Seal and
// Open, they do not check them. A Context is immutable and safe for
// concurrent use.
type Context struct {
	tenant, scope string
	// ids is the middle of the associated data: lp8(tenant) ‖ lp8(scope).
	ids []byte
}

// NewContext returns the Context of tenant and scope, or an
// [*InputError] if either id is invalid (see [ValidateIDs]).
func NewContext(tenant, scope string) (Context, error) {
	if err := ValidateIDs(tenant, scope); err != nil {
		return Context{}, err
	}
	ids := make([]byte, 0, 2+len(tenant)+len(scope))
	ids = append(ids, byte(len(tenant)))
	ids = append(ids, tenant...)
	ids = append(ids, byte(len(scope)))
	ids = append(ids, scope...)
	return Context{tenant: tenant, scope: scope, ids: ids}, nil
}

// Tenant returns the Context's tenant id.
func (c *Context) Tenant() string { return c.tenant }

// Scope returns the Context's scope id.
func (c *Context) Scope() string { return c.scope }

// adLen is the length of the associated data of a message with aad.
func (c *Context) adLen(aad []byte) int { return msgHeaderSize + len(c.ids) + 8 + len(aad) }

// putAD writes into ad, of length c.adLen(aad), the associated data of a
// message with header and aad (docs/format.md: header ‖ lp8(tenant) ‖
// lp8(scope) ‖ lp64(aad)).
func (c *Context) putAD(ad, header, aad []byte) {
	copy(ad, header[:msgHeaderSize])
	i := msgHeaderSize + copy(ad[msgHeaderSize:], c.ids)
	binary.BigEndian.PutUint64(ad[i:], uint64(len(aad)))
	copy(ad[i+8:], aad)
}

// maxInlineAD is the size of the largest associated data that Context.Seal
// and Context.Open build in the allocation of their result, after the
// result and beyond its capacity, rather than in a pooled buffer: one
// allocation and no pool, for up to maxInlineAD bytes more memory held by
// the result. The associated data is no secret: the ids, the header and
// the caller's aad.
const maxInlineAD = 256

// alloc returns a new result buffer of n bytes and room for adLen bytes of
// associated data: after the buffer in the same allocation when adLen is
// at most maxInlineAD, else in a pooled buffer (adp, to be put back).
func alloc(n, adLen int) (buf, ad []byte, adp *[]byte) {
	if adLen <= maxInlineAD {
		buf = make([]byte, n+adLen)
		return buf, buf[n:], nil
	}
	adp = getAD()
	return make([]byte, n), append(*adp, make([]byte, adLen)...), adp
}

// msgPrefix is the common prefix of a single-shot message.
const msgPrefix = magic + string(rune(version1)) + string(rune(typeMessage))

// Seal is [Seal] for the Context's tenant and scope into a new slice: it
// encrypts and authenticates plaintext under aead (the DEK whose id is id,
// made by [NewAEAD]) with a random nonce and returns the v1 message, of
// exactly len(plaintext)+[Overhead] bytes and capacity.
func (c *Context) Seal(aead cipher.AEAD, id KeyID, plaintext, aad []byte) []byte {
	return c.seal(aead, id, nil, plaintext, aad)
}

// seal is Seal with the nonce given, or random if nonce is nil.
//
// The message is laid out as header ‖ ciphertext ‖ tag and, when it is
// short (maxInlineAD), the associated data goes in the same allocation
// after the tag: AES-GCM writes its output next to it, never over it.
func (c *Context) seal(aead cipher.AEAD, id KeyID, nonce, plaintext, aad []byte) []byte {
	n := msgHeaderSize + len(plaintext) + tagSize
	buf, ad, adp := alloc(n, c.adLen(aad))
	header := buf[:msgHeaderSize]
	copy(header, msgPrefix)
	copy(header[msgIDOffset:], id[:])
	if nonce == nil {
		rand.Read(header[msgNonceOffset:])
	} else {
		copy(header[msgNonceOffset:], nonce)
	}
	c.putAD(ad, header, aad)
	out := aead.Seal(header, header[msgNonceOffset:], plaintext, ad)
	if adp != nil {
		*adp = ad
		putAD(adp)
	}
	return out[:n:n]
}

// Open is [Open] for the Context's tenant and scope into a new slice: it
// authenticates and decrypts a v1 message made with the same DEK (aead,
// made by [NewAEAD]), tenant, scope and aad and returns the plaintext, of
// exactly len(ciphertext)-[Overhead] bytes and capacity.
//
// Errors: a [*FormatError] if ciphertext is not a v1 single-shot message
// (see [ParseID]); [ErrAuth] if it fails authentication, for whatever
// reason.
func (c *Context) Open(aead cipher.AEAD, ciphertext, aad []byte) ([]byte, error) {
	if err := checkPrefix(ciphertext, typeMessage, Overhead); err != nil {
		return nil, err
	}
	n := len(ciphertext) - Overhead
	buf, ad, adp := alloc(n, c.adLen(aad))
	c.putAD(ad, ciphertext, aad)
	out, err := aead.Open(buf[:0:n], ciphertext[msgNonceOffset:msgHeaderSize], ciphertext[msgHeaderSize:], ad)
	if adp != nil {
		*adp = ad
		putAD(adp)
	}
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}
