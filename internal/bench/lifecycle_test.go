package bench

import (
	"context"
	"testing"
	"time"
)

// The measurements of `byok-bench lifecycle` measure what they say: a
// rotation makes at most two vault calls, a re-key re-wraps every DEK, a
// revocation fails closed and a restoration brings service back.
func TestLifecycleEnv(t *testing.T) {
	const interval = 200 * time.Millisecond
	e, err := NewLifecycleEnv(t.TempDir(), interval)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.AddDEKs(500); err != nil {
		t.Fatal(err)
	}
	crypto, other, _, err := e.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if crypto != 2 || other != 0 {
		t.Fatalf("rotation: %d wrap/unwrap and %d other vault calls, want 2 and 0", crypto, other)
	}
	n, _, err := e.Rekey()
	if err != nil {
		t.Fatal(err)
	}
	if n < 500 {
		t.Fatalf("re-key re-wrapped %d DEKs, want at least the 500 added", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Service.Run(ctx)
	revoked, restored, err := e.RevocationLatency(ctx, interval)
	if err != nil {
		t.Fatal(err)
	}
	if revoked <= 0 || restored <= 0 {
		t.Fatalf("latencies %v and %v", revoked, restored)
	}
	ops, p50, p99, err := e.HTTPEncrypt(2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if ops <= 0 || p50 > p99 {
		t.Fatalf("HTTP encrypt: %.0f ops/s, p50 %v, p99 %v", ops, p50, p99)
	}
}

// The platform re-key measure moves every share of every tenant onto the
// root key's new version with one unwrap and one wrap each, and re-wraps
// no DEK.
func TestPlatformRekeyMeasure(t *testing.T) {
	r, err := PlatformRekey(t.TempDir(), 20, 300)
	if err != nil {
		t.Fatal(err)
	}
	if r.Moved != 40 || r.VaultCalls != 80 || r.DEKsRewrapped != 0 {
		t.Fatalf("platform re-key of 20 tenants: %+v; want 40 shares moved with 80 vault calls and no DEK re-wrapped", r)
	}
}

// The scale measure runs its traffic without errors, stays within the
// cache limits, and counts vault calls against a floor.
func TestScaleMeasure(t *testing.T) {
	r, err := Scale(t.TempDir(), ScaleOptions{Tenants: 200, BYOKPercent: 10, Scopes: 3, Latency: time.Millisecond,
		Duration: 400 * time.Millisecond, Workers: 2, CheckInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []TrafficResult{r.Cold, r.Warm} {
		if p.Errors != 0 || p.Ops == 0 || p.BYOK == 0 {
			t.Fatalf("scale pass: %+v (first error %v)", p, p.FirstErr)
		}
	}
	// The cold pass loads every tenant key it uses; the warm pass makes
	// the same calls and loads none it still caches.
	if r.Cold.PlatformCalls == 0 || r.Cold.CustomerCalls == 0 || r.PeakRSS == 0 || r.BaselineP99 == 0 {
		t.Fatalf("scale run: %+v", r)
	}
	if r.Warm.PlatformCalls != 0 || r.Revalidate == 0 {
		t.Fatalf("warm pass loaded tenant keys (%d platform calls) or nothing was re-checked before it (%v)", r.Warm.PlatformCalls, r.Revalidate)
	}
	if r.Stats.TenantKeys.Entries > r.TenantKeyLimit || r.Stats.DEKs.Entries > r.DEKLimit {
		t.Fatalf("caches beyond their limits: %+v", r.Stats)
	}
	// Every pair has an old DEK in the store, and the decrypts read data
	// under them: each pair used loads its old DEK, besides the DEK its
	// encrypts make, so the DEK cache holds two per pair.
	if r.OldDEKs != 200*3 {
		t.Fatalf("%d old DEKs seeded, want %d", r.OldDEKs, 200*3)
	}
	if pairs := r.Steady.Pairs; r.Stats.DEKs.Misses < uint64(pairs) || r.Stats.DEKs.Entries < 2*pairs {
		t.Fatalf("DEK cache %+v after %d pairs were used: want a miss for each pair's old DEK and two DEKs cached per pair",
			r.Stats.DEKs, pairs)
	}
}
