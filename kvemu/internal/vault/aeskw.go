package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// AES key wrap (RFC 3394) and AES key wrap with padding (RFC 5649), on
// crypto/aes: the standard library has neither.

// errKWInput is returned for a plaintext or ciphertext of a length the
// algorithm does not take.
var errKWInput = errors.New("aes key wrap: input length not supported")

// errKWIntegrity is returned when unwrapping fails its integrity check: the
// ciphertext was altered or wrapped under another key.
var errKWIntegrity = errors.New("aes key wrap: integrity check failed")

// kwIV is the default initial value of RFC 3394 §2.2.3.1.
var kwIV = [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

// kwpPrefix is the first half of RFC 5649's alternative initial value.
var kwpPrefix = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// wrapRaw runs the wrapping process of RFC 3394 §2.2.1 over the 64-bit
// blocks of p (len(p) a multiple of 8, at least 8) with initial value iv.
func wrapRaw(b cipher.Block, iv [8]byte, p []byte) []byte {
	n := len(p) / 8
	out := make([]byte, 8+len(p))
	copy(out[8:], p)
	var buf [16]byte
	copy(buf[:8], iv[:])
	for j := range 6 {
		for i := 1; i <= n; i++ {
			copy(buf[8:], out[8*i:8*i+8])
			b.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(out[8*i:8*i+8], buf[8:])
		}
	}
	copy(out[:8], buf[:8])
	return out
}

// unwrapRaw inverts wrapRaw (RFC 3394 §2.2.2) and returns the recovered
// initial value with the plaintext blocks.
func unwrapRaw(b cipher.Block, c []byte) (iv [8]byte, p []byte) {
	n := len(c)/8 - 1
	p = make([]byte, 8*n)
	copy(p, c[8:])
	var buf [16]byte
	copy(buf[:8], c[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(buf[8:], p[8*(i-1):8*i])
			b.Decrypt(buf[:], buf[:])
			copy(p[8*(i-1):8*i], buf[8:])
		}
	}
	copy(iv[:], buf[:8])
	return iv, p
}

// kwWrap wraps p (a multiple of 8 bytes, at least 16) under kek with AES
// key wrap, RFC 3394.
func kwWrap(kek, p []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(p) < 16 || len(p)%8 != 0 {
		return nil, errKWInput
	}
	return wrapRaw(b, kwIV, p), nil
}

// kwUnwrap unwraps c under kek with AES key wrap, RFC 3394.
func kwUnwrap(kek, c []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(c) < 24 || len(c)%8 != 0 {
		return nil, errKWInput
	}
	iv, p := unwrapRaw(b, c)
	if subtle.ConstantTimeCompare(iv[:], kwIV[:]) != 1 {
		clear(p)
		return nil, errKWIntegrity
	}
	return p, nil
}

// kwpWrap wraps p (1 byte or more) under kek with AES key wrap with
// padding, RFC 5649.
func kwpWrap(kek, p []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 || uint64(len(p)) > 1<<32-1 {
		return nil, errKWInput
	}
	var aiv [8]byte
	copy(aiv[:4], kwpPrefix[:])
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(p)))
	padded := make([]byte, (len(p)+7)/8*8)
	copy(padded, p)
	defer clear(padded)
	if len(padded) == 8 {
		// One block: a single AES encryption of AIV || P (§4.1).
		out := make([]byte, 16)
		copy(out, aiv[:])
		copy(out[8:], padded)
		b.Encrypt(out, out)
		return out, nil
	}
	return wrapRaw(b, aiv, padded), nil
}

// kwpUnwrap unwraps c under kek with AES key wrap with padding, RFC 5649.
func kwpUnwrap(kek, c []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(c) < 16 || len(c)%8 != 0 {
		return nil, errKWInput
	}
	var aiv [8]byte
	var p []byte
	if len(c) == 16 {
		buf := make([]byte, 16)
		b.Decrypt(buf, c)
		copy(aiv[:], buf[:8])
		p = buf[8:]
	} else {
		aiv, p = unwrapRaw(b, c)
	}
	// §3: the prefix must match, the length must fit the padded size, and
	// the padding must be zero; all checked before answering.
	ok := subtle.ConstantTimeCompare(aiv[:4], kwpPrefix[:])
	mli := int(binary.BigEndian.Uint32(aiv[4:]))
	if mli <= len(p)-8 || mli > len(p) {
		ok = 0
	} else {
		var pad byte
		for _, x := range p[mli:] {
			pad |= x
		}
		ok &= subtle.ConstantTimeByteEq(pad, 0)
	}
	if ok != 1 {
		clear(p)
		return nil, errKWIntegrity
	}
	return p[:mli], nil
}
