package gcpkmsemu_test

import (
	"context"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
)

// Round trips through the official client (gRPC over TLS on loopback,
// self-signed JWT per call, the emulator's IAM and AES-GCM): what a byok
// unwrap costs against the emulator.
func BenchmarkEncrypt(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	dek := make([]byte, 32)
	for b.Loop() {
		if _, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: dek, AdditionalAuthenticatedData: []byte("tenant=a")}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	enc, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: make([]byte, 32), AdditionalAuthenticatedData: []byte("tenant=a")})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: enc.Ciphertext, AdditionalAuthenticatedData: []byte("tenant=a")}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptParallel(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	enc, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: make([]byte, 32)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer() // the fixture makes RSA keys
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: enc.Ciphertext}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
