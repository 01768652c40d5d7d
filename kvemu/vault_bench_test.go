package kvemu

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// benchRoundTrip wraps and unwraps a 32-byte share with RSA-OAEP-256 on an
// RSA-2048 key through azkeys, as byok's tenant-key check does.
func benchRoundTrip(b *testing.B, c *azkeys.Client, version string) {
	alg := to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256)
	w, err := c.WrapKey(ctx, "cmk", version, azkeys.KeyOperationParameters{Algorithm: alg, Value: share32}, nil)
	if err != nil {
		b.Fatalf("WrapKey: %v", err)
	}
	u, err := c.UnwrapKey(ctx, "cmk", version, azkeys.KeyOperationParameters{Algorithm: alg, Value: w.Result}, nil)
	if err != nil {
		b.Fatalf("UnwrapKey: %v", err)
	}
	if string(u.Result) != string(share32) {
		b.Fatal("round trip lost the share")
	}
}

// reportLatency reports p50 and p99 of samples and the round-trip rate.
func reportLatency(b *testing.B, samples []time.Duration, elapsed time.Duration) {
	slices.Sort(samples)
	q := func(p float64) float64 { return float64(samples[int(p*float64(len(samples)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(len(samples))/elapsed.Seconds(), "roundtrips/s")
}

func benchSetup(b *testing.B) (*vaultEnv, string) {
	env := newVaultEnv(b)
	k, err := env.emu.CreateKey("contoso", "cmk", KeySpec{Size: 2048})
	if err != nil {
		b.Fatal(err)
	}
	return env, k.Version
}

// BenchmarkVaultWrapUnwrap measures one client's wrap+unwrap round trip
// (two HTTPS requests, one RSA-2048 private operation) through the official
// SDK against kvemu on loopback.
func BenchmarkVaultWrapUnwrap(b *testing.B) {
	env, version := benchSetup(b)
	c := env.keys(b, contosoURL)
	benchRoundTrip(b, c, version) // challenge and token outside the timing
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		t0 := time.Now()
		benchRoundTrip(b, c, version)
		samples = append(samples, time.Since(t0))
	}
	reportLatency(b, samples, time.Since(start))
}

// BenchmarkVaultWrapUnwrapParallel runs round trips from GOMAXPROCS
// goroutines sharing one client, as replicas' tenant-key checks would.
func BenchmarkVaultWrapUnwrapParallel(b *testing.B) {
	env, version := benchSetup(b)
	c := env.keys(b, contosoURL)
	benchRoundTrip(b, c, version)
	var mu sync.Mutex
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		for pb.Next() {
			t0 := time.Now()
			benchRoundTrip(b, c, version)
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		samples = append(samples, local...)
		mu.Unlock()
	})
	reportLatency(b, samples, time.Since(start))
}
