package lifecycle

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/openbyok/byok/kms"
)

// envelopePrefix marks, in kms.Wrapped.Algorithm, a secret too large for
// one platform wrap (more than kms.MaxPlaintext bytes, such as a
// certificate credential's private key and certificate): a random AES-256
// key is wrapped by the platform key, and the secret is sealed with
// AES-256-GCM under it. The rest of Algorithm is the platform wrap's own
// algorithm and Ciphertext is
//
//	uint16 len(wrapped key) ‖ wrapped key ‖ 12-byte nonce ‖ sealed secret ‖ tag
//
// with the tenant and the platform key id as additional data. Secrets that
// fit one wrap are sealed as before, so stored records keep their format.
const envelopePrefix = "byok-envelope-v1+"

// sealEnvelope seals b, which is larger than one platform wrap takes.
func (s *Service) sealEnvelope(ctx context.Context, tenant string, b []byte) (kms.Wrapped, error) {
	dek := make([]byte, 32)
	rand.Read(dek)
	defer clear(dek)
	w, err := s.cfg.PlatformKMS.Wrap(ctx, s.cfg.PlatformKeyID, dek)
	if err != nil {
		return kms.Wrapped{}, err
	}
	if len(w.Ciphertext) > 0xffff {
		return kms.Wrapped{}, fmt.Errorf("lifecycle: the platform key wrapped 32 bytes into %d bytes, more than an envelope holds", len(w.Ciphertext))
	}
	aead, err := envelopeAEAD(dek)
	if err != nil {
		return kms.Wrapped{}, err
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(w.Ciphertext)))
	out = append(out, w.Ciphertext...)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out = append(out, nonce...)
	out = aead.Seal(out, nonce, b, envelopeAAD(tenant, w.KeyID))
	return kms.Wrapped{KeyID: w.KeyID, Algorithm: envelopePrefix + w.Algorithm, Ciphertext: out}, nil
}

// openSealed opens a secret sealed by seal: one platform wrap, or an
// envelope (see envelopePrefix).
func (s *Service) openSealed(ctx context.Context, tenant string, w kms.Wrapped) ([]byte, error) {
	alg, ok := strings.CutPrefix(w.Algorithm, envelopePrefix)
	if !ok {
		return s.cfg.PlatformKMS.Unwrap(ctx, w)
	}
	c := w.Ciphertext
	if len(c) < 2 || len(c) < 2+int(binary.BigEndian.Uint16(c)) {
		return nil, errors.New("lifecycle: the sealed credential is truncated")
	}
	n := int(binary.BigEndian.Uint16(c))
	dek, err := s.cfg.PlatformKMS.Unwrap(ctx, kms.Wrapped{KeyID: w.KeyID, Algorithm: alg, Ciphertext: c[2 : 2+n]})
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	aead, err := envelopeAEAD(dek)
	if err != nil {
		return nil, err
	}
	rest := c[2+n:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("lifecycle: the sealed credential is truncated")
	}
	b, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], envelopeAAD(tenant, w.KeyID))
	if err != nil {
		return nil, errors.New("lifecycle: the sealed credential failed authentication: it was altered, or sealed for another tenant")
	}
	return b, nil
}

func envelopeAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	return cipher.NewGCM(b)
}

func envelopeAAD(tenant, keyID string) []byte {
	return []byte("byok sealed credential v1\x00" + tenant + "\x00" + keyID)
}
