package gcpkms

import (
	"context"
	"testing"

	"github.com/openbyok/byok/kms"
)

// Round trips through the Provider and the official client against
// gcpkmsemu (gRPC over TLS on loopback, self-signed JWT, IAM, AES-GCM).
// Wrap of a crypto key is two Encrypt calls (the probe, then the share);
// Wrap of a version one.

func BenchmarkWrapKey(b *testing.B) {
	e := newEnv(b)
	p := e.provider(b, e.config())
	ctx := kms.WithBinding(context.Background(), kms.Binding{Kind: "customer-managed", Epoch: 1})
	dek := make([]byte, 32)
	for b.Loop() {
		if _, err := p.Wrap(ctx, keyA, dek); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrapVersion(b *testing.B) {
	e := newEnv(b)
	p := e.provider(b, e.config())
	ctx := kms.WithBinding(context.Background(), kms.Binding{Kind: "customer-managed", Epoch: 1})
	dek := make([]byte, 32)
	for b.Loop() {
		if _, err := p.Wrap(ctx, keyA+"/cryptoKeyVersions/1", dek); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrap(b *testing.B) {
	e := newEnv(b)
	p := e.provider(b, e.config())
	ctx := kms.WithBinding(context.Background(), kms.Binding{Kind: "customer-managed", Epoch: 1})
	w, err := p.Wrap(ctx, keyA, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Unwrap(ctx, w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrapParallel(b *testing.B) {
	e := newEnv(b)
	p := e.provider(b, e.config())
	w, err := p.Wrap(context.Background(), keyA, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Unwrap(context.Background(), w); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
