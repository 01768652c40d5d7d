//go:build unix

package byok_test

import (
	"syscall"
	"testing"

	"github.com/openbyok/byok/internal/bench"
)

// cpuNanos is the CPU time of the process so far. On a machine shared
// with other work, wall-clock ns/op counts the time a benchmark waited for
// a core; CPU time counts only the time it ran, which makes comparisons
// between runs (and against raw AES-GCM) far steadier. Run with -cpu 1
// so that the process's CPU time is the benchmark's.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func withCPU(f func(*testing.B)) func(*testing.B) {
	return func(b *testing.B) {
		c0 := cpuNanos()
		f(b)
		b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkCPU compares the warm path (Keyring and ScopeHandle) with raw
// AES-256-GCM at 64 B and 1 KiB in one process, reporting CPU time per op:
//
//	go test -run '^$' -bench '^BenchmarkCPU$' -cpu 1 -count 12 .
//
// and compare the minima (the least disturbed runs).
func BenchmarkCPU(b *testing.B) {
	e := benchEnv(b)
	for _, s := range bench.Sizes[:2] {
		b.Run("Raw/"+s.Name, withCPU(bench.RawAESGCM(s.N)))
		b.Run("Encrypt/"+s.Name, withCPU(e.Encrypt(s.N)))
		b.Run("ScopeEncrypt/"+s.Name, withCPU(e.ScopeEncrypt(s.N)))
		b.Run("Decrypt/"+s.Name, withCPU(e.Decrypt(s.N)))
		b.Run("ScopeDecrypt/"+s.Name, withCPU(e.ScopeDecrypt(s.N)))
	}
}
