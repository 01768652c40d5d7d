package kms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealed is data of any size sealed under a provider's key: a random
// AES-256 key wrapped by the provider, and the data sealed under that key
// with AES-256-GCM. Providers wrap only short key material (MaxPlaintext);
// Seal is how byok keeps longer secrets — a certificate's private key, a
// certificate credential — under the platform root key.
type Sealed struct {
	Key        Wrapped // the AES-256 key, wrapped by the provider
	Nonce      []byte  // the GCM nonce (12 bytes)
	Ciphertext []byte  // the sealed data; the 16-byte GCM tag is appended
}

// ErrSealedAuth is returned by Open for a Sealed that was altered, or
// sealed with other associated data or under another key.
var ErrSealedAuth = errors.New("kms: sealed data failed authentication: it was altered, or sealed for something else")

// Seal seals data under the provider key keyID, binding aad (which names
// what the data is for, and whose it is) and the versioned key id that
// wraps the AES key. It makes one Wrap call.
func Seal(ctx context.Context, p Provider, keyID string, data, aad []byte) (Sealed, error) {
	key := make([]byte, 32)
	rand.Read(key)
	defer clear(key)
	w, err := p.Wrap(ctx, keyID, key)
	if err != nil {
		return Sealed{}, err
	}
	aead, err := sealAEAD(key)
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return Sealed{Key: w, Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, data, sealAD(w.KeyID, aad))}, nil
}

// Open opens a Sealed made by Seal with the same aad, with one Unwrap call
// to p. The provider's errors are returned as they are (see ClassOf); any
// other failure wraps ErrSealedAuth.
func Open(ctx context.Context, p Provider, s Sealed, aad []byte) ([]byte, error) {
	key, err := p.Unwrap(ctx, s.Key)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	aead, err := sealAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealedAuth, err)
	}
	if len(s.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("%w: the nonce has %d bytes, want %d", ErrSealedAuth, len(s.Nonce), aead.NonceSize())
	}
	data, err := aead.Open(nil, s.Nonce, s.Ciphertext, sealAD(s.Key.KeyID, aad))
	if err != nil {
		return nil, ErrSealedAuth
	}
	return data, nil
}

func sealAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// sealAD is the GCM associated data: a label, the versioned key id that
// wraps the AES key, and the caller's aad, each length-prefixed.
func sealAD(keyID string, aad []byte) []byte {
	ad := []byte("byok sealed v1")
	for _, f := range [][]byte{[]byte(keyID), aad} {
		ad = append(ad, byte(len(f)>>24), byte(len(f)>>16), byte(len(f)>>8), byte(len(f)))
		ad = append(ad, f...)
	}
	return ad
}
