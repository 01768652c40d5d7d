package bench

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMeasureMonitor runs MeasureMonitor with tiny numbers and checks that
// it measures what it says. BYOK_BENCH_MONITOR="tenants,latency,interval"
// (e.g. "10000,20ms,60s") runs it at full size and prints the table.
func TestMeasureMonitor(t *testing.T) {
	o := MonitorOptions{Dir: t.TempDir(), Tenants: 20, Latency: time.Millisecond, Interval: 2 * time.Second}
	full := os.Getenv("BYOK_BENCH_MONITOR")
	if full != "" {
		f := strings.Split(full, ",")
		if len(f) != 3 {
			t.Fatalf("BYOK_BENCH_MONITOR=%q: want tenants,latency,interval", full)
		}
		var err error
		if o.Tenants, err = strconv.Atoi(f[0]); err != nil {
			t.Fatal(err)
		}
		if o.Latency, err = time.ParseDuration(f[1]); err != nil {
			t.Fatal(err)
		}
		if o.Interval, err = time.ParseDuration(f[2]); err != nil {
			t.Fatal(err)
		}
		if dir, err := os.MkdirTemp("/dev/shm", "byok-bench-"); err == nil { // tmpfs: a short setup
			o.Dir = dir
			defer os.RemoveAll(dir)
		}
		o.Progress = os.Stderr
	}
	r, err := MeasureMonitor(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	r.Print(&b)
	t.Log("\n" + b.String())
	if r.Activated != o.Tenants || r.Warm != o.Tenants {
		t.Errorf("activated %d, warmed %d of %d tenants", r.Activated, r.Warm, o.Tenants)
	}
	// Whether every tenant is checked within the interval depends on the
	// machine (a loaded CI runner misses a 2 s interval): the test holds
	// that the measure counts checks and detects the revocation, and the
	// goal is reported, not asserted.
	if r.CheckedInInterval == 0 || r.CallsPerTenant <= 0 || r.Detection <= 0 || r.MaxGap <= 0 {
		t.Errorf("the measure counted nothing: %d tenants checked in an interval, %.2f calls per tenant, detection %v, longest gap %v",
			r.CheckedInInterval, r.CallsPerTenant, r.Detection, r.MaxGap)
	}
	if full == "" {
		return
	}
	// At full size the goals of issue 11 are reported, not asserted: the
	// figures depend on the machine.
}
