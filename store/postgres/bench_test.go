package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/openbyok/byok"
)

// BenchmarkRewrapDEKs rewraps a tenant's DEKs in batches of 1000, as a
// re-key job does, moving them back and forth between two epochs, and
// reports DEKs rewrapped per second.
func BenchmarkRewrapDEKs(b *testing.B) {
	const total, batch = 20_000, 1000
	db := openNew(b)
	newTenant(b, db, "acme")
	ds := putDEKs(b, db, "acme", cm, 1, total)
	wrapped := make([]byte, 60)
	recs := make([]byok.DEKRecord, batch)
	ctx := context.Background()
	var n int
	for b.Loop() {
		off := (n * batch) % total
		epoch := uint32(2 - (n*batch/total)%2) // 2 on the first pass, 1 on the next, ...
		for i := range recs {
			recs[i] = ds[off+i]
			recs[i].Epoch, recs[i].Wrapped = epoch, wrapped
		}
		if err := db.RewrapDEKs(ctx, recs); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*batch)/b.Elapsed().Seconds(), "DEKs/s")
}

// BenchmarkDEK measures the calls of the keyring's hot path that reach the
// store: creating a DEK, and reading one on a cache miss.
func BenchmarkDEK(b *testing.B) {
	db := openNew(b)
	newTenant(b, db, "acme")
	ctx := context.Background()
	n := uint64(1 << 32) // above the numbers putDEKs uses; kept across runs of the sub-benchmark
	b.Run("PutDEK", func(b *testing.B) {
		for b.Loop() {
			n++
			if err := db.PutDEK(ctx, dekN("acme", "bot", cm, 1, n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	const stored = 10_000
	ds := putDEKs(b, db, "acme", cm, 1, stored)
	b.Run("DEK", func(b *testing.B) {
		var n int
		for b.Loop() {
			if _, err := db.DEK(ctx, ds[n%stored].ID); err != nil {
				b.Fatal(err)
			}
			n++
		}
	})
	b.Run("DEK/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			var n int
			for pb.Next() {
				if _, err := db.DEK(ctx, ds[n%stored].ID); err != nil {
					b.Error(err)
					return
				}
				n += 7
			}
		})
	})
}

// BenchmarkListDEKs measures a page of the re-key work list.
func BenchmarkListDEKs(b *testing.B) {
	db := openNew(b)
	newTenant(b, db, "acme")
	putDEKs(b, db, "acme", cm, 1, 10_000)
	ctx := context.Background()
	for _, limit := range []int{100, 1000} {
		b.Run(fmt.Sprint(limit), func(b *testing.B) {
			var after byok.DEKID
			for b.Loop() {
				ds, err := db.ListDEKs(ctx, "acme", cm, 2, after, limit)
				if err != nil {
					b.Fatal(err)
				}
				after = byok.DEKID{}
				if len(ds) == limit {
					after = ds[len(ds)-1].ID
				}
			}
			b.ReportMetric(float64(b.N*limit)/b.Elapsed().Seconds(), "DEKs/s")
		})
	}
}
