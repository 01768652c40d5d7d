// Package memlimit gives the Go runtime a memory limit below the memory
// limit of the process's control group — a container's memory limit —
// when GOMEMLIMIT does not set one. Without it the heap grows to about
// twice its live data between collections (GOGC=100) and freed memory goes
// back to the system lazily, so a process with caches near their limits
// can pass its container's limit and be killed although it needs less.
package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Share is the part of the control group's limit given to the Go runtime;
// the rest is left for memory the runtime does not manage, such as
// SQLite's page caches.
const Share = 0.9

// Cgroup is where the control groups are mounted.
const Cgroup = "/sys/fs/cgroup"

// FromCgroup returns the memory limit in bytes of the control group
// mounted at root: cgroup v2's memory.max, else cgroup v1's
// memory/memory.limit_in_bytes. It reports false if neither file holds a
// limit ("max", or v1's page-rounded maximum for none).
func FromCgroup(root string) (int64, bool) {
	for _, name := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// Set sets the runtime's memory limit to Share of the limit of the control
// group mounted at root, unless getenv("GOMEMLIMIT") already sets one or
// there is no limit. It returns the limit it set, or 0.
func Set(getenv func(string) string, root string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	n, ok := FromCgroup(root)
	if !ok {
		return 0
	}
	limit := For(n)
	debug.SetMemoryLimit(limit)
	return limit
}

// For returns the runtime's memory limit in a control group limited to n
// bytes: Share of n.
func For(n int64) int64 { return int64(float64(n) * Share) }
