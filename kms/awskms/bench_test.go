package awskms

import (
	"context"
	"testing"

	"github.com/openbyok/byok/kms"
)

// BenchmarkRoundTrip measures one Wrap (Encrypt) and one Unwrap (Decrypt)
// of a 32-byte share through the SDK against awsemu over HTTPS (loopback,
// SigV4 signing and verification, key policy evaluation, local-kms).
func BenchmarkRoundTrip(b *testing.B) {
	for _, mode := range []string{"key-policy", "assumed-role"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b)
			cfg := e.config()
			if mode == "assumed-role" {
				cfg = e.roleConfig(b)
			}
			p := e.provider(b, cfg)
			ctx := kms.WithBinding(context.Background(), Binding{Kind: "customer-managed", Epoch: 1})
			share := make([]byte, 32)
			for b.Loop() {
				w, err := p.Wrap(ctx, aliasARN, share)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Unwrap(ctx, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnwrap measures the call byok makes per tenant key per check
// interval: one Decrypt.
func BenchmarkUnwrap(b *testing.B) {
	e := newEnv(b)
	p := e.provider(b, e.config())
	w, err := p.Wrap(context.Background(), e.cmk.ARN, make([]byte, 32))
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
