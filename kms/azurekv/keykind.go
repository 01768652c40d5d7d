package azurekv

import (
	"context"
	"errors"
	"fmt"

	"github.com/openbyok/byok/kms"
)

// Algorithms Wrap uses with oct-HSM (AES) keys, which Managed HSM (and Key
// Vault Premium) wrap with AES key wrap.
const (
	// AlgorithmA256KW is AES key wrap (RFC 3394) with a 256-bit key; Wrap
	// uses it for a plaintext of a multiple of 8 bytes, at least 16 (a
	// 32-byte share).
	AlgorithmA256KW = "A256KW"
	// AlgorithmA192KW and AlgorithmA128KW are the same with a 192- or
	// 128-bit key; Unwrap accepts them.
	AlgorithmA192KW = "A192KW"
	AlgorithmA128KW = "A128KW"
	// AlgorithmAESKeyWrap is RFC 3394 with an AES key of any size; Unwrap
	// accepts it.
	AlgorithmAESKeyWrap = "CKM_AES_KEY_WRAP"
	// AlgorithmAESKeyWrapPad is AES key wrap with padding (RFC 5649) with
	// an AES key of any size; Wrap uses it for other plaintext lengths.
	AlgorithmAESKeyWrapPad = "CKM_AES_KEY_WRAP_PAD"
)

// aesAlgorithms are the AES key-wrap algorithms Unwrap accepts.
var aesAlgorithms = map[string]bool{
	AlgorithmA128KW: true, AlgorithmA192KW: true, AlgorithmA256KW: true,
	AlgorithmAESKeyWrap: true, AlgorithmAESKeyWrapPad: true,
}

// keyKind is what a key wraps with: RSA-OAEP or AES key wrap.
type keyKind int

const (
	kindUnknown keyKind = iota
	kindRSA
	kindAES
)

func kindOf(kty string) keyKind {
	switch kty {
	case "RSA", "RSA-HSM":
		return kindRSA
	case "oct", "oct-HSM":
		return kindAES
	}
	return kindUnknown
}

// aesWrapAlgorithm is the algorithm Wrap uses for an n-byte plaintext under
// an AES key: A256KW when RFC 3394 takes the length (byok's 32-byte shares
// and sealing keys), else RFC 5649.
func aesWrapAlgorithm(n int) string {
	if n >= 16 && n%8 == 0 {
		return AlgorithmA256KW
	}
	return AlgorithmAESKeyWrapPad
}

// kind returns the kind of id's key as an earlier Describe recorded it per
// versionless key. Unknown, a key in a vault is taken for RSA (the only
// kind byok's customers use, so Wrap costs no extra call) and a key in a
// Managed HSM is described once, since it may be either.
func (p *Provider) kind(ctx context.Context, op, keyID string, id KeyID) (k keyKind, known bool, err error) {
	if v, ok := p.kinds.Load(id.Versionless().String()); ok {
		return v.(keyKind), true, nil
	}
	if !id.ManagedHSM {
		return kindRSA, false, nil
	}
	if err := p.learnKind(ctx, op, keyID); err != nil {
		return kindUnknown, false, err
	}
	v, _ := p.kinds.Load(id.Versionless().String())
	k, _ = v.(keyKind)
	return k, true, nil
}

// learnKind describes keyID so that its kind is recorded; a failure is
// reported as op's.
func (p *Provider) learnKind(ctx context.Context, op, keyID string) error {
	if _, err := p.Describe(ctx, keyID); err != nil {
		var ke *kms.Error
		if errors.As(err, &ke) {
			e := *ke
			e.Op = op
			return &e
		}
		return err
	}
	return nil
}

// recordKind remembers the kind of a described key.
func (p *Provider) recordKind(id KeyID, kty string) {
	if k := kindOf(kty); k != kindUnknown {
		p.kinds.Store(id.Versionless().String(), k)
	}
}

// unsupportedKind is Wrap's error for a key that wraps with neither RSA nor
// AES key wrap (an EC key), or an AES key in ModeEncrypt.
func unsupportedKind(keyID string, k keyKind, mode Mode) error {
	msg := "azurekv: the key is neither an RSA nor an oct-HSM (AES) key; byok wraps with RSA-OAEP or AES key wrap"
	if k == kindAES && mode == ModeEncrypt {
		msg = fmt.Sprintf("azurekv: an oct-HSM (AES) key wraps with wrapKey (%s); Mode %q needs an RSA key", AlgorithmA256KW, ModeEncrypt)
	}
	return &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest, Err: errors.New(msg)}
}
