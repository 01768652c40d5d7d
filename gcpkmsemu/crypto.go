package gcpkmsemu

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"hash/crc32"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Ciphertext format (the emulator's own; the service's is opaque too):
//
//	0x01 || version id (uint32, big-endian) || nonce (12 bytes) || AES-256-GCM sealed plaintext
//
// with the GCM additional data the crypto key's name, a zero byte and the
// caller's additional authenticated data. The version id lets Decrypt use
// the right version after rotation.
const (
	ciphertextFormat = 0x01
	headerLen        = 1 + 4 + 12
	// msgDecryptFailed is the service's text for a ciphertext it cannot
	// open with the key named (another key's, altered, or other AAD).
	msgDecryptFailed = "Decryption failed: verify that 'name' refers to the correct CryptoKey."
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) *wrapperspb.Int64Value {
	return wrapperspb.Int64(int64(crc32.Checksum(b, castagnoli)))
}

// checkCRC verifies a client's CRC32C of data field: absent is not
// verified; wrong is INVALID_ARGUMENT with the service's text.
func checkCRC(sum *wrapperspb.Int64Value, data []byte, crcField, dataField string) (verified bool, err error) {
	if sum == nil {
		return false, nil
	}
	if sum.GetValue() != int64(crc32.Checksum(data, castagnoli)) {
		return false, invalidArgument("The checksum in field %s did not match the data in field %s.", crcField, dataField)
	}
	return true, nil
}

// Encrypt seals plaintext with the key's primary version, or with the
// version the name gives. Plaintext and additional data are at most
// 64 KiB each; the optional CRC32C fields are checked and reported as the
// service does.
func (s *kmsServer) Encrypt(ctx context.Context, req *kmspb.EncryptRequest) (*kmspb.EncryptResponse, error) {
	e := s.e
	n, err := parseName(req.GetName(), "keyOrVersion")
	if err != nil {
		return nil, err
	}
	if len(req.GetPlaintext()) > maxPayload {
		return nil, invalidArgument("The plaintext must be at most %d bytes; it has %d.", maxPayload, len(req.GetPlaintext()))
	}
	if len(req.GetAdditionalAuthenticatedData()) > maxPayload {
		return nil, invalidArgument("The additional_authenticated_data must be at most %d bytes; it has %d.", maxPayload, len(req.GetAdditionalAuthenticatedData()))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.authorize(ctx, PermUseToEncrypt, req.GetName(), n); err != nil {
		return nil, err
	}
	verifiedPT, err := checkCRC(req.GetPlaintextCrc32C(), req.GetPlaintext(), "plaintext_crc32c", "plaintext")
	if err != nil {
		return nil, err
	}
	verifiedAAD, err := checkCRC(req.GetAdditionalAuthenticatedDataCrc32C(), req.GetAdditionalAuthenticatedData(),
		"additional_authenticated_data_crc32c", "additional_authenticated_data")
	if err != nil {
		return nil, err
	}
	k := e.keys[n.keyName()]
	if k == nil {
		if n.version != 0 {
			return nil, notFound("CryptoKeyVersion", req.GetName())
		}
		return nil, notFound("CryptoKey", req.GetName())
	}
	k.tick(e.keyNow())
	if k.purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		return nil, invalidArgument("%s has purpose %s; Encrypt needs a key with purpose ENCRYPT_DECRYPT.", k.name, k.purpose)
	}
	id := n.version
	if id == 0 {
		if id = k.primary; id == 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "%s has no primary version.", k.name)
		}
	}
	v := k.version(id)
	if v == nil {
		return nil, notFound("CryptoKeyVersion", versionName(k.name, id))
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED {
		return nil, notEnabled(versionName(k.name, id), v.state)
	}
	out := make([]byte, headerLen, headerLen+len(req.GetPlaintext())+v.aead.Overhead())
	out[0] = ciphertextFormat
	binary.BigEndian.PutUint32(out[1:5], uint32(v.id))
	rand.Read(out[5:headerLen]) // crypto/rand never fails
	out = v.aead.Seal(out, out[5:headerLen], req.GetPlaintext(), aeadData(k.name, req.GetAdditionalAuthenticatedData()))
	return &kmspb.EncryptResponse{
		Name:                    versionName(k.name, v.id),
		Ciphertext:              out,
		CiphertextCrc32C:        crc32c(out),
		VerifiedPlaintextCrc32C: verifiedPT,
		VerifiedAdditionalAuthenticatedDataCrc32C: verifiedAAD,
		ProtectionLevel: k.protection,
	}, nil
}

// Decrypt opens a ciphertext made by Encrypt with any ENABLED version of
// the key named (a crypto key, not a version).
func (s *kmsServer) Decrypt(ctx context.Context, req *kmspb.DecryptRequest) (*kmspb.DecryptResponse, error) {
	e := s.e
	n, err := parseName(req.GetName(), "key")
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.authorize(ctx, PermUseToDecrypt, req.GetName(), n); err != nil {
		return nil, err
	}
	if _, err := checkCRC(req.GetCiphertextCrc32C(), req.GetCiphertext(), "ciphertext_crc32c", "ciphertext"); err != nil {
		return nil, err
	}
	if _, err := checkCRC(req.GetAdditionalAuthenticatedDataCrc32C(), req.GetAdditionalAuthenticatedData(),
		"additional_authenticated_data_crc32c", "additional_authenticated_data"); err != nil {
		return nil, err
	}
	k := e.keys[req.GetName()]
	if k == nil {
		return nil, notFound("CryptoKey", req.GetName())
	}
	k.tick(e.keyNow())
	if k.purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		return nil, invalidArgument("%s has purpose %s; Decrypt needs a key with purpose ENCRYPT_DECRYPT.", k.name, k.purpose)
	}
	ct := req.GetCiphertext()
	if len(ct) < headerLen+16 || ct[0] != ciphertextFormat {
		return nil, invalidArgument(msgDecryptFailed)
	}
	v := k.version(int(binary.BigEndian.Uint32(ct[1:5])))
	if v == nil {
		return nil, invalidArgument(msgDecryptFailed)
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED {
		return nil, notEnabled(versionName(k.name, v.id), v.state)
	}
	pt, err := v.aead.Open(nil, ct[5:headerLen], ct[headerLen:], aeadData(k.name, req.GetAdditionalAuthenticatedData()))
	if err != nil {
		return nil, invalidArgument(msgDecryptFailed)
	}
	return &kmspb.DecryptResponse{
		Plaintext:       pt,
		PlaintextCrc32C: crc32c(pt),
		UsedPrimary:     v.id == k.primary,
		ProtectionLevel: k.protection,
	}, nil
}

func aeadData(keyName string, aad []byte) []byte {
	b := make([]byte, 0, len(keyName)+1+len(aad))
	b = append(append(append(b, keyName...), 0), aad...)
	return b
}
