package bench

import (
	"crypto/sha256"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{2, 2, 9, 1, 2}, 2},
	} {
		in := slices.Clone(tt.in)
		if got := Median(in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Median changed its input %v to %v", tt.in, in)
		}
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Errorf("Median(nil) = %v, want NaN", got)
	}
}

// TestPairOrder checks the order and length of Pair's runs (base, op, op,
// base for each op in every round, each of its calibrated number of calls)
// and that what it returns is consistent: each ratio is its round's op
// time over the mean of the base runs around it.
func TestPairOrder(t *testing.T) {
	var log strings.Builder
	mark := func(c byte) Op { return func() error { log.WriteByte(c); return nil } }
	p, err := Pair(mark('b'), []Op{mark('x'), mark('y')}, 3, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Calls) != 3 || slices.Min(p.Calls) < 1 {
		t.Fatalf("calls per run %v, want three counts of at least one", p.Calls)
	}
	// After the calibration (its calls are not counted: strip what comes
	// before the rounds, which are exactly this long), three rounds.
	b, x, y := strings.Repeat("b", p.Calls[0]), strings.Repeat("x", p.Calls[1]), strings.Repeat("y", p.Calls[2])
	round := b + x + x + b + b + y + y + b
	want := strings.Repeat(round, 3)
	if got := log.String(); !strings.HasSuffix(got, want) {
		t.Errorf("runs end with %.80q…, want three rounds of b×%d x×%d x×%d b×%d b×%d y×%d y×%d b×%d",
			got[max(0, len(got)-len(want)):], p.Calls[0], p.Calls[1], p.Calls[1], p.Calls[0], p.Calls[0], p.Calls[2], p.Calls[2], p.Calls[0])
	} else if calib := got[:len(got)-len(want)]; strings.Trim(calib, "bxy") != "" || !strings.Contains(calib, "x") || !strings.Contains(calib, "y") {
		t.Errorf("calibration runs %.80q…, want runs of b, x and y", calib)
	}
	if len(p.Base) != 2*3*2 || len(p.Op) != 2 || len(p.Ratio) != 2 {
		t.Fatalf("got %d base runs, %d ops, %d ratio rows; want 12, 2, 2", len(p.Base), len(p.Op), len(p.Ratio))
	}
	for i := range p.Op {
		if len(p.Op[i]) != 3 || len(p.Ratio[i]) != 3 {
			t.Fatalf("op %d: %d times, %d ratios; want 3 each", i, len(p.Op[i]), len(p.Ratio[i]))
		}
		for r := range 3 {
			k := 2 * (r*2 + i) // this round's base runs around op i
			if want := 2 * p.Op[i][r] / (p.Base[k] + p.Base[k+1]); p.Ratio[i][r] != want {
				t.Errorf("op %d round %d: ratio %v, want %v", i, r, p.Ratio[i][r], want)
			}
		}
	}
}

// TestPairRatio checks that an op doing four times the base's work
// measures well above it: a ratio turned upside down would be near 1/4.
// The work allocates nothing, so that no collection lands on one run.
func TestPairRatio(t *testing.T) {
	buf := make([]byte, 1<<10)
	var sink [sha256.Size]byte
	one := func() error { sink = sha256.Sum256(buf); return nil }
	four := func() error {
		for range 4 {
			one()
		}
		return nil
	}
	p, err := Pair(one, []Op{four}, 7, 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r := Median(p.Ratio[0]); r < 2 {
		t.Errorf("four hashes against one: ratio %.2f, want about 4", r)
	}
	_ = sink
}

// An op's error in a round, not only in the calibration, stops Pair. The
// op sleeps 100 µs a call, so the calibration of a 1 ms run makes at most
// five calls (one, then four) and the eighth is in the rounds.
func TestPairError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	failing := func() error {
		time.Sleep(100 * time.Microsecond)
		if calls++; calls >= 8 {
			return boom
		}
		return nil
	}
	if _, err := Pair(func() error { return nil }, []Op{failing}, 100, time.Millisecond); !errors.Is(err, boom) || calls != 8 {
		t.Errorf("Pair with an op failing on its 8th call: %v after %d calls, want %v after 8", err, calls, boom)
	}
}

// TestCompare runs the table's measure once, briefly, on a real Env: every
// row is there, measured.
func TestCompare(t *testing.T) {
	e, err := NewEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rows, err := e.compare(1, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(Sizes) {
		t.Fatalf("%d rows, want %d", len(rows), len(Sizes))
	}
	for i, r := range rows {
		if r.Size != Sizes[i].Name || r.Raw <= 0 || r.Enc <= 0 || r.Dec <= 0 || r.ScopeEnc <= 0 || r.EncRatio <= 0 || r.ScopeRatio <= 0 || r.ADRatio <= 0 || r.RawRatio <= 0 {
			t.Errorf("row %d: %+v; want size %s and every time and ratio measured", i, r, Sizes[i].Name)
		}
		if r.EncAllocs < 1 || r.DecAllocs < 1 { // each returns a new slice
			t.Errorf("%s: %v allocs per Encrypt, %v per Decrypt; want at least one each", r.Size, r.EncAllocs, r.DecAllocs)
		}
	}
}
