package byok_test

import (
	"testing"

	"github.com/openbyok/byok/internal/bench"
)

func benchEnv(b *testing.B) *bench.Env {
	e, err := bench.NewEnv(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

func BenchmarkEncrypt(b *testing.B) {
	e := benchEnv(b)
	for _, s := range bench.Sizes {
		b.Run(s.Name, e.Encrypt(s.N))
	}
}

func BenchmarkDecrypt(b *testing.B) {
	e := benchEnv(b)
	for _, s := range bench.Sizes {
		b.Run(s.Name, e.Decrypt(s.N))
	}
}

func BenchmarkScopeEncrypt(b *testing.B) {
	e := benchEnv(b)
	for _, s := range bench.Sizes {
		b.Run(s.Name, e.ScopeEncrypt(s.N))
	}
}

func BenchmarkScopeDecrypt(b *testing.B) {
	e := benchEnv(b)
	for _, s := range bench.Sizes {
		b.Run(s.Name, e.ScopeDecrypt(s.N))
	}
}

func BenchmarkRawAESGCM(b *testing.B) {
	for _, s := range bench.Sizes {
		b.Run(s.Name, bench.RawAESGCM(s.N))
	}
}

func BenchmarkColdDecrypt(b *testing.B) {
	benchEnv(b).ColdDecrypt(b)
}
