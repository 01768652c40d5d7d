package vault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"math/big"
	"strings"
)

// cryptoParams is the body of the six key operations.
type cryptoParams struct {
	Alg    string  `json:"alg"`
	Value  *string `json:"value"`
	Digest *string `json:"digest"` // verify only
	// AES-GCM only.
	IV  *string `json:"iv"`
	Tag *string `json:"tag"`
	AAD *string `json:"aad"`
}

// cryptoInput is a decoded crypto request.
type cryptoInput struct {
	alg                         string
	value, digest, iv, tag, aad []byte
}

// opKeyOp is the key_ops entry each crypto operation needs.
var opKeyOp = map[Op]string{
	OpEncrypt: "encrypt", OpDecrypt: "decrypt", OpWrapKey: "wrapKey",
	OpUnwrapKey: "unwrapKey", OpSign: "sign", OpVerify: "verify",
}

// parseCryptoParams reads and decodes a crypto request body.
func parseCryptoParams(op Op, body []byte) (in cryptoInput, aerr *apiError) {
	var p cryptoParams
	if aerr := decodeJSON(body, &p); aerr != nil {
		return in, aerr
	}
	if p.Alg == "" {
		return in, badParameter("Property 'alg' is required.")
	}
	in.alg = p.Alg
	if p.Value == nil || *p.Value == "" {
		return in, badParameter("Property 'value' is required.")
	}
	if in.value, aerr = decodeB64("value", *p.Value); aerr != nil {
		return in, aerr
	}
	if op == OpVerify {
		if p.Digest == nil || *p.Digest == "" {
			return in, badParameter("Property 'digest' is required.")
		}
		if in.digest, aerr = decodeB64("digest", *p.Digest); aerr != nil {
			return in, aerr
		}
	}
	for _, f := range []struct {
		name string
		val  *string
		dst  *[]byte
	}{{"iv", p.IV, &in.iv}, {"tag", p.Tag, &in.tag}, {"aad", p.AAD, &in.aad}} {
		if f.val != nil && *f.val != "" {
			if *f.dst, aerr = decodeB64(f.name, *f.val); aerr != nil {
				return in, aerr
			}
		}
	}
	return in, nil
}

// crypto runs encrypt, decrypt, wrapKey, unwrapKey, sign or verify. The key
// checks run under the lock; the private-key operation runs outside it.
func (s *Service) crypto(req *request) (result, *apiError) {
	in, aerr := parseCryptoParams(req.op, req.body)
	if aerr != nil {
		return result{}, aerr
	}
	s.mu.Lock()
	k, kv, aerr := s.lookup(req)
	var kid string
	if aerr == nil {
		kid = req.kid(k, kv)
		aerr = usable(kv, req.op, s)
	}
	s.mu.Unlock()
	if aerr != nil {
		return result{}, aerr
	}
	if kv.oct != nil {
		out, aerr := runAES(kv, req.op, in)
		if aerr != nil {
			return result{}, aerr
		}
		out.Alg, out.Kid = in.alg, kid
		return result{body: out}, nil
	}
	out, ok, aerr := run(kv, req.op, in.alg, in.value, in.digest)
	if aerr != nil {
		return result{}, aerr
	}
	if req.op == OpVerify {
		return result{body: map[string]bool{"value": ok}}, nil
	}
	return result{body: map[string]string{"kid": kid, "value": b64(out)}}, nil
}

// usable applies the enabled, key_ops and nbf/exp rules; the caller holds
// s.mu. An expired or not-yet-valid key still decrypts, unwraps and
// verifies, as in Azure.
func usable(kv *keyVersion, op Op, s *Service) *apiError {
	name := opKeyOp[op]
	if !kv.enabled {
		return forbidden("KeyDisabled", "Operation %s is not allowed on a disabled key.", name)
	}
	permitted := false
	for _, o := range kv.ops {
		permitted = permitted || o == name
	}
	if !permitted {
		return forbidden("KeyOperationForbidden", "Operation %s is not permitted on this key.", name)
	}
	if op == OpEncrypt || op == OpWrapKey || op == OpSign {
		now := s.now()
		if !kv.exp.IsZero() && !now.Before(kv.exp) {
			return forbidden("KeyExpired", "Operation %s is not allowed on an expired key.", name)
		}
		if !kv.nbf.IsZero() && now.Before(kv.nbf) {
			return forbidden("KeyNotYetValid", "Operation %s is not allowed on a key that is not yet valid.", name)
		}
	}
	return nil
}

var encryptionAlgs = []string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"}

var signatureHashes = map[string]crypto.Hash{
	"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512,
	"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512,
	"ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512,
}

// ecCurveAlg is the only signature algorithm each curve accepts.
var ecCurveAlg = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

// run performs op with kv's key material.
func run(kv *keyVersion, op Op, alg string, value, digest []byte) (out []byte, verified bool, aerr *apiError) {
	switch op {
	case OpEncrypt, OpWrapKey, OpDecrypt, OpUnwrapKey:
		if kv.rsa == nil {
			return nil, false, badParameter("Algorithm %s is not supported for a key of type %s; %s keys only sign and verify.", alg, kv.kty, kv.kty)
		}
		h, aerr := encryptionHash(alg)
		if aerr != nil {
			return nil, false, aerr
		}
		if op == OpEncrypt || op == OpWrapKey {
			out, aerr = rsaEncrypt(&kv.rsa.PublicKey, alg, h, value)
		} else {
			out, aerr = rsaDecrypt(kv.rsa, alg, h, value)
		}
		return out, false, aerr
	}
	h, ok := signatureHashes[alg]
	if !ok {
		return nil, false, badParameter("Invalid signature algorithm: %s. Use PS256, PS384, PS512, RS256, RS384, RS512, ES256, ES384 or ES512.", alg)
	}
	msg := value
	if op == OpVerify {
		msg = digest
	}
	if len(msg) != h.Size() {
		return nil, false, badParameter("The digest is %d bytes; %s needs a %d-byte %v digest.", len(msg), alg, h.Size(), h)
	}
	if kv.rsa != nil {
		if strings.HasPrefix(alg, "ES") {
			return nil, false, badParameter("Algorithm %s is not supported for a key of type %s.", alg, kv.kty)
		}
		pss := strings.HasPrefix(alg, "PS")
		if op == OpSign {
			var err error
			if pss {
				out, err = rsa.SignPSS(rand.Reader, kv.rsa, h, msg, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			} else {
				out, err = rsa.SignPKCS1v15(rand.Reader, kv.rsa, h, msg)
			}
			if err != nil {
				return nil, false, badParameter("The digest could not be signed with %s.", alg)
			}
			return out, false, nil
		}
		if pss {
			return nil, rsa.VerifyPSS(&kv.rsa.PublicKey, h, msg, value, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil, nil
		}
		return nil, rsa.VerifyPKCS1v15(&kv.rsa.PublicKey, h, msg, value) == nil, nil
	}
	crv := curveName(kv.ec.Curve)
	if ecCurveAlg[crv] != alg {
		return nil, false, badParameter("Algorithm %s is not supported for a key of type %s on curve %s; use %s.", alg, kv.kty, crv, ecCurveAlg[crv])
	}
	size := (kv.ec.Curve.Params().BitSize + 7) / 8
	if op == OpSign {
		r, s, err := ecdsa.Sign(rand.Reader, kv.ec, msg)
		if err != nil {
			return nil, false, badParameter("The digest could not be signed with %s.", alg)
		}
		out = make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, false, nil
	}
	if len(value) != 2*size {
		return nil, false, nil
	}
	r, s := new(big.Int).SetBytes(value[:size]), new(big.Int).SetBytes(value[size:])
	return nil, ecdsa.Verify(&kv.ec.PublicKey, msg, r, s), nil
}

func encryptionHash(alg string) (func() hash.Hash, *apiError) {
	switch alg {
	case "RSA-OAEP":
		return sha1.New, nil
	case "RSA-OAEP-256":
		return sha256.New, nil
	case "RSA1_5":
		return nil, nil
	}
	return nil, badParameter("Invalid algorithm: %s. A vault's RSA keys encrypt and wrap with %s.", alg, strings.Join(encryptionAlgs, ", "))
}

func rsaEncrypt(pub *rsa.PublicKey, alg string, h func() hash.Hash, plain []byte) ([]byte, *apiError) {
	k := pub.Size()
	limit := k - 11
	if h != nil {
		limit = k - 2*h().Size() - 2
	}
	if len(plain) > limit {
		return nil, badParameter("The value is %d bytes; %s with a %d-bit key encrypts at most %d bytes.", len(plain), alg, pub.N.BitLen(), limit)
	}
	var out []byte
	var err error
	if h == nil {
		out, err = rsa.EncryptPKCS1v15(rand.Reader, pub, plain) //nolint:staticcheck // RSA1_5 is a Key Vault algorithm
	} else {
		out, err = rsa.EncryptOAEP(h(), rand.Reader, pub, plain, nil)
	}
	if err != nil {
		return nil, badParameter("The value could not be encrypted with %s.", alg)
	}
	return out, nil
}

func rsaDecrypt(priv *rsa.PrivateKey, alg string, h func() hash.Hash, ct []byte) ([]byte, *apiError) {
	if len(ct) != priv.Size() {
		return nil, badParameter("The ciphertext is %d bytes; a %d-bit key needs %d.", len(ct), priv.N.BitLen(), priv.Size())
	}
	var out []byte
	var err error
	if h == nil {
		out, err = rsa.DecryptPKCS1v15(nil, priv, ct) //nolint:staticcheck // RSA1_5 is a Key Vault algorithm
		if err != nil {
			return nil, badParameter("Error occurred while decoding PKCS1 padding.")
		}
		return out, nil
	}
	out, err = rsa.DecryptOAEP(h(), nil, priv, ct, nil)
	if err != nil {
		return nil, badParameter("Error occurred while decoding OAEP padding.")
	}
	return out, nil
}
