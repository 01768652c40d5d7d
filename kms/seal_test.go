package kms_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
)

func TestSealOpen(t *testing.T) {
	ctx := context.Background()
	f := kmstest.NewFake()
	id := f.AddKey("prk")
	data := bytes.Repeat([]byte("a certificate credential "), 200) // far more than one wrap
	s, err := kms.Seal(ctx, f, id, data, []byte("tenant acme"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Ciphertext, data[:32]) {
		t.Fatal("the sealed data holds the plaintext")
	}
	got, err := kms.Open(ctx, f, s, []byte("tenant acme"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Open = %d bytes, %v", len(got), err)
	}

	for name, c := range map[string]struct {
		s   kms.Sealed
		aad string
	}{
		"other aad":          {s, "tenant globex"},
		"flipped ciphertext": {func() kms.Sealed { x := s; x.Ciphertext = bytes.Clone(s.Ciphertext); x.Ciphertext[3] ^= 1; return x }(), "tenant acme"},
		"short nonce":        {func() kms.Sealed { x := s; x.Nonce = s.Nonce[:5]; return x }(), "tenant acme"},
	} {
		if _, err := kms.Open(ctx, f, c.s, []byte(c.aad)); !errors.Is(err, kms.ErrSealedAuth) {
			t.Errorf("%s: Open = %v, want ErrSealedAuth", name, err)
		}
	}
	f.Fail(kms.Transient, kms.ReasonUnavailable)
	if _, err := kms.Open(ctx, f, s, []byte("tenant acme")); !errors.Is(err, kms.ErrTransient) {
		t.Fatalf("Open with the provider down = %v, want the provider's transient error", err)
	}
}
