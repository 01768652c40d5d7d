package lifecycle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/openbyok/byok/kms"
)

// sealedPrefix marks, in kms.Wrapped.Algorithm, a credential sealed with
// kms.Seal under the platform root key. The rest of Algorithm is the
// platform wrap's own algorithm, and Ciphertext is
//
//	uint16 len(wrapped AES key) ‖ wrapped AES key ‖ 12-byte nonce ‖ sealed credential ‖ tag
//
// The tenant is bound as associated data, so a sealed credential copied
// into another tenant's record does not open.
const sealedPrefix = "byok-sealed-v1+"

// credentialAAD names what a sealed credential is for and whose it is.
func credentialAAD(tenant string) []byte { return []byte("lifecycle credential\x00" + tenant) }

// seal seals a tenant's secret under the platform root key.
func (s *Service) seal(ctx context.Context, tenant string, sec Secret) (kms.Wrapped, error) {
	return s.sealUnder(ctx, tenant, s.cfg.PlatformKeyID, sec)
}

// sealUnder seals a tenant's secret under keyID, a version of the
// platform root key or its versionless id.
func (s *Service) sealUnder(ctx context.Context, tenant, keyID string, sec Secret) (kms.Wrapped, error) {
	sl, err := kms.Seal(ctx, s.cfg.PlatformKMS, keyID, sec.k.Bytes(), credentialAAD(tenant))
	if err != nil {
		return kms.Wrapped{}, fmt.Errorf("lifecycle: sealing the credential of tenant %q under the platform key: %w", tenant, err)
	}
	if len(sl.Key.Ciphertext) > 0xffff {
		return kms.Wrapped{}, fmt.Errorf("lifecycle: the platform key wrapped 32 bytes into %d bytes, more than a sealed credential holds", len(sl.Key.Ciphertext))
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(sl.Key.Ciphertext)))
	out = append(out, sl.Key.Ciphertext...)
	out = append(out, sl.Nonce...)
	out = append(out, sl.Ciphertext...)
	return kms.Wrapped{KeyID: sl.Key.KeyID, Algorithm: sealedPrefix + sl.Key.Algorithm, Ciphertext: out}, nil
}

// openSealed opens a credential sealed by seal.
func (s *Service) openSealed(ctx context.Context, tenant string, w kms.Wrapped) ([]byte, error) {
	alg, ok := strings.CutPrefix(w.Algorithm, sealedPrefix)
	c := w.Ciphertext
	const nonceSize = 12
	if !ok || len(c) < 2 || len(c) < 2+int(binary.BigEndian.Uint16(c))+nonceSize {
		return nil, errors.New("lifecycle: the sealed credential is malformed or truncated")
	}
	n := int(binary.BigEndian.Uint16(c))
	sl := kms.Sealed{
		Key:        kms.Wrapped{KeyID: w.KeyID, Algorithm: alg, Ciphertext: c[2 : 2+n]},
		Nonce:      c[2+n : 2+n+nonceSize],
		Ciphertext: c[2+n+nonceSize:],
	}
	b, err := kms.Open(ctx, s.cfg.PlatformKMS, sl, credentialAAD(tenant))
	if errors.Is(err, kms.ErrSealedAuth) {
		return nil, errors.New("lifecycle: the sealed credential failed authentication: it was altered, or sealed for another tenant")
	}
	return b, err
}
