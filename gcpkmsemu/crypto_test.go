package gcpkmsemu_test

import (
	"bytes"
	"context"
	"hash/crc32"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func crc(b []byte) *wrapperspb.Int64Value {
	return wrapperspb.Int64(int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))))
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	f := newFixture(t)
	pt, aad := []byte("a data encryption key"), []byte("tenant=a")
	resp := encrypt(t, f.user, keyName, pt, aad)
	if resp.Name != keyName+"/cryptoKeyVersions/1" || resp.ProtectionLevel != kmspb.ProtectionLevel_SOFTWARE {
		t.Fatalf("Encrypt answered %s %v", resp.Name, resp.ProtectionLevel)
	}
	if resp.CiphertextCrc32C.GetValue() != crc(resp.Ciphertext).Value {
		t.Fatal("ciphertext_crc32c does not match the ciphertext")
	}
	if resp.VerifiedPlaintextCrc32C || resp.VerifiedAdditionalAuthenticatedDataCrc32C {
		t.Fatal("verified flags set without checksums sent")
	}
	out, err := f.user.Decrypt(context.Background(), &kmspb.DecryptRequest{Name: keyName, Ciphertext: resp.Ciphertext, AdditionalAuthenticatedData: aad})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Plaintext, pt) || out.PlaintextCrc32C.GetValue() != crc(pt).Value || !out.UsedPrimary {
		t.Fatalf("Decrypt = %q crc %v usedPrimary %v", out.Plaintext, out.PlaintextCrc32C, out.UsedPrimary)
	}
	if again := encrypt(t, f.user, keyName, pt, aad); bytes.Equal(again.Ciphertext, resp.Ciphertext) {
		t.Fatal("two encryptions gave the same ciphertext")
	}
}

func TestDecryptRefusesOtherAADOrKeyOrAlteredCiphertext(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := ring + "/cryptoKeys/other"
	if _, err := f.admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring, CryptoKeyId: "other",
		CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}}); err != nil {
		t.Fatal(err)
	}
	if err := f.emu.AddBinding(other, "roles/cloudkms.cryptoKeyEncrypterDecrypter", "serviceAccount:"+f.userSA); err != nil {
		t.Fatal(err)
	}
	ct := encrypt(t, f.user, keyName, []byte("dek"), []byte("tenant=a")).Ciphertext
	altered := bytes.Clone(ct)
	altered[len(altered)-1] ^= 1
	const msg = "Decryption failed: verify that 'name' refers to the correct CryptoKey."
	for _, tc := range []struct {
		name, key string
		ct, aad   []byte
	}{
		{"other AAD", keyName, ct, []byte("tenant=b")},
		{"no AAD", keyName, ct, nil},
		{"other key", other, ct, []byte("tenant=a")},
		{"altered", keyName, altered, []byte("tenant=a")},
		{"garbage", keyName, []byte("not a ciphertext at all, not at all"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: tc.key, Ciphertext: tc.ct, AdditionalAuthenticatedData: tc.aad})
			wantStatus(t, err, codes.InvalidArgument, msg)
		})
	}
}

func TestCRC32CChecksBothWays(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pt, aad := []byte("plaintext"), []byte("aad")
	resp, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: pt, AdditionalAuthenticatedData: aad,
		PlaintextCrc32C: crc(pt), AdditionalAuthenticatedDataCrc32C: crc(aad)})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.VerifiedPlaintextCrc32C || !resp.VerifiedAdditionalAuthenticatedDataCrc32C {
		t.Fatalf("verified flags = %v %v, want both", resp.VerifiedPlaintextCrc32C, resp.VerifiedAdditionalAuthenticatedDataCrc32C)
	}
	out, err := f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: resp.Ciphertext, AdditionalAuthenticatedData: aad,
		CiphertextCrc32C: crc(resp.Ciphertext), AdditionalAuthenticatedDataCrc32C: crc(aad)})
	if err != nil || out.PlaintextCrc32C.GetValue() != crc(pt).Value {
		t.Fatalf("Decrypt with checksums: %v, crc %v", err, out.GetPlaintextCrc32C())
	}
	wrong := wrapperspb.Int64(12345)
	for _, tc := range []struct {
		name string
		call func() error
		msg  string
	}{
		{"plaintext", func() error {
			_, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: pt, PlaintextCrc32C: wrong})
			return err
		}, "The checksum in field plaintext_crc32c did not match the data in field plaintext."},
		{"encrypt aad", func() error {
			_, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: pt, AdditionalAuthenticatedData: aad, AdditionalAuthenticatedDataCrc32C: wrong})
			return err
		}, "The checksum in field additional_authenticated_data_crc32c did not match the data in field additional_authenticated_data."},
		{"ciphertext", func() error {
			_, err := f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: resp.Ciphertext, CiphertextCrc32C: wrong})
			return err
		}, "The checksum in field ciphertext_crc32c did not match the data in field ciphertext."},
		{"decrypt aad", func() error {
			_, err := f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: resp.Ciphertext, AdditionalAuthenticatedData: aad, AdditionalAuthenticatedDataCrc32C: wrong})
			return err
		}, "The checksum in field additional_authenticated_data_crc32c did not match the data in field additional_authenticated_data."},
	} {
		t.Run(tc.name, func(t *testing.T) { wantStatus(t, tc.call(), codes.InvalidArgument, tc.msg) })
	}
}

func TestEncryptLimitsAndNames(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: make([]byte, 64*1024+1)})
	wantStatus(t, err, codes.InvalidArgument, "")
	if resp := encrypt(t, f.user, keyName, make([]byte, 64*1024), nil); len(resp.Ciphertext) == 0 {
		t.Fatal("64 KiB plaintext refused")
	}
	_, err = f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: "projects/customer/keyRings/byok", Plaintext: []byte("x")})
	wantStatus(t, err, codes.InvalidArgument, "Resource name [projects/customer/keyRings/byok] does not represent a valid crypto key.")
	// Decrypt takes a crypto key, not a version.
	ct := encrypt(t, f.user, keyName, []byte("x"), nil).Ciphertext
	_, err = f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName + "/cryptoKeyVersions/1", Ciphertext: ct})
	wantStatus(t, err, codes.InvalidArgument, "")
}

// Methods the emulator does not serve answer UNIMPLEMENTED, so a test
// never mistakes them for real behaviour.
func TestUnemulatedMethodsAreUnimplemented(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.admin.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{Name: keyName + "/cryptoKeyVersions/1"}, noRetry)
	wantStatus(t, err, codes.Unimplemented, "")
	_, err = f.admin.GenerateRandomBytes(ctx, &kmspb.GenerateRandomBytesRequest{Location: "projects/customer/locations/global", LengthBytes: 32}, noRetry)
	wantStatus(t, err, codes.Unimplemented, "")
}
