package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"strings"
)

// The algorithms of oct-HSM (AES) keys. Managed HSM wraps with AES key wrap
// (A128KW, A192KW, A256KW: RFC 3394 with a key of that size;
// CKM_AES_KEY_WRAP: RFC 3394 with any AES key; CKM_AES_KEY_WRAP_PAD: RFC
// 5649 with any AES key) and encrypts with AES-GCM. The service's texts for
// these refusals are not published: kvemu's are its own (docs/kvemu.md).

// kwAlgs maps each key-wrap algorithm to the key size it needs (0: any).
var kwAlgs = map[string]int{
	"A128KW": 128, "A192KW": 192, "A256KW": 256,
	"CKM_AES_KEY_WRAP": 0, "CKM_AES_KEY_WRAP_PAD": 0,
}

// gcmAlgs maps each AES-GCM algorithm to its key size.
var gcmAlgs = map[string]int{"A128GCM": 128, "A192GCM": 192, "A256GCM": 256}

// aesResult is the answer of an AES operation; a Managed HSM names the
// algorithm in it (azure-sdk-for-js recordings), which azkeys ignores.
type aesResult struct {
	Alg   string `json:"alg"`
	Kid   string `json:"kid"`
	Value string `json:"value"`
	IV    string `json:"iv,omitempty"`
	Tag   string `json:"tag,omitempty"`
	AAD   string `json:"aad,omitempty"`
}

const wrapAlgList = "A128KW, A192KW, A256KW (for a key of that size), CKM_AES_KEY_WRAP or CKM_AES_KEY_WRAP_PAD"

// runAES performs op with an oct-HSM key.
func runAES(kv *keyVersion, op Op, in cryptoInput) (aesResult, *apiError) {
	bits := kv.size()
	alg := in.alg
	switch op {
	case OpWrapKey, OpUnwrapKey:
		need, ok := kwAlgs[alg]
		switch {
		case strings.HasSuffix(alg, "KWPAD"):
			return aesResult{}, badParameter("Algorithm %s is not supported by %s; it belongs to the secure wrap operation. Use CKM_AES_KEY_WRAP_PAD to wrap a value of any length.", alg, opKeyOp[op])
		case !ok:
			return aesResult{}, badParameter("Algorithm %s is not supported for a key of type %s; %s with it uses %s.", alg, kv.kty, opKeyOp[op], wrapAlgList)
		case need != 0 && need != bits:
			return aesResult{}, badParameter("Algorithm %s needs a %d-bit key; this %s key has %d bits.", alg, need, kv.kty, bits)
		}
		pad := alg == "CKM_AES_KEY_WRAP_PAD"
		var out []byte
		var err error
		switch {
		case op == OpWrapKey && pad:
			out, err = kwpWrap(kv.oct, in.value)
		case op == OpWrapKey:
			out, err = kwWrap(kv.oct, in.value)
		case pad:
			out, err = kwpUnwrap(kv.oct, in.value)
		default:
			out, err = kwUnwrap(kv.oct, in.value)
		}
		switch {
		case errors.Is(err, errKWInput) && op == OpWrapKey && !pad:
			return aesResult{}, badParameter("The value to wrap is %d bytes; %s wraps a multiple of 8 bytes, at least 16. Use CKM_AES_KEY_WRAP_PAD for other lengths.", len(in.value), alg)
		case errors.Is(err, errKWInput) && op == OpWrapKey:
			return aesResult{}, badParameter("The value to wrap is %d bytes; %s wraps 1 byte or more.", len(in.value), alg)
		case errors.Is(err, errKWInput):
			return aesResult{}, badParameter("The wrapped value is %d bytes; %s output is a multiple of 8 bytes, at least %d.", len(in.value), alg, map[bool]int{true: 16, false: 24}[pad])
		case errors.Is(err, errKWIntegrity):
			return aesResult{}, badParameter("The wrapped value failed the %s integrity check: it was altered, or wrapped under another key.", alg)
		case err != nil:
			return aesResult{}, badParameter("The value could not be processed with %s.", alg)
		}
		return aesResult{Value: b64(out)}, nil
	case OpEncrypt, OpDecrypt:
		need, ok := gcmAlgs[alg]
		switch {
		case !ok && strings.Contains(alg, "CBC"):
			return aesResult{}, badParameter("Algorithm %s is not emulated by kvemu; use A128GCM, A192GCM or A256GCM.", alg)
		case !ok:
			return aesResult{}, badParameter("Algorithm %s is not supported for %s with a key of type %s; use A128GCM, A192GCM or A256GCM (key wrap algorithms go with wrapKey).", alg, opKeyOp[op], kv.kty)
		case need != bits:
			return aesResult{}, badParameter("Algorithm %s needs a %d-bit key; this %s key has %d bits.", alg, need, kv.kty, bits)
		}
		return gcm(kv.oct, op, in)
	}
	return aesResult{}, badParameter("Operation %s is not supported for a key of type %s.", opKeyOp[op], kv.kty)
}

// gcm encrypts (with a random 12-byte IV that the answer returns, as the
// service does) or decrypts with AES-GCM.
func gcm(key []byte, op Op, in cryptoInput) (aesResult, *apiError) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return aesResult{}, badParameter("The key could not be used with %s.", in.alg)
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return aesResult{}, badParameter("The key could not be used with %s.", in.alg)
	}
	if op == OpEncrypt {
		if len(in.iv) != 0 || len(in.tag) != 0 {
			return aesResult{}, badParameter("Properties 'iv' and 'tag' must not be set to encrypt with %s; the service generates the IV.", in.alg)
		}
		iv := make([]byte, aead.NonceSize())
		rand.Read(iv)
		sealed := aead.Seal(nil, iv, in.value, in.aad)
		n := len(sealed) - aead.Overhead()
		return aesResult{Value: b64(sealed[:n]), IV: b64(iv), Tag: b64(sealed[n:]), AAD: b64(in.aad)}, nil
	}
	if len(in.iv) != aead.NonceSize() {
		return aesResult{}, badParameter("Property 'iv' must be the %d-byte IV that encrypt returned.", aead.NonceSize())
	}
	if len(in.tag) != aead.Overhead() {
		return aesResult{}, badParameter("Property 'tag' must be the %d-byte tag that encrypt returned.", aead.Overhead())
	}
	ct := append(append([]byte{}, in.value...), in.tag...)
	out, err := aead.Open(nil, in.iv, ct, in.aad)
	if err != nil {
		return aesResult{}, badParameter("The ciphertext failed the %s authentication: it was altered, or encrypted under another key, IV or aad.", in.alg)
	}
	return aesResult{Value: b64(out)}, nil
}
