package bench

import (
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

// TestPairOrder checks the order of Pair's runs (base, op, op, base for
// each op in every round) and that what it returns is consistent: each
// ratio is its round's op time over the mean of the base runs around it.
func TestPairOrder(t *testing.T) {
	var log strings.Builder
	mark := func(c byte) Op { return func() error { log.WriteByte(c); return nil } }
	p, err := Pair(mark('b'), []Op{mark('x'), mark('y')}, 3, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// Collapse each run of one letter to one letter.
	runs := log.String()
	var got []byte
	for i := range runs {
		if i == 0 || runs[i] != runs[i-1] {
			got = append(got, runs[i])
		}
	}
	// The calibration (b, x, y), then three rounds of b x x b b y y b.
	if g, want := string(got), "bxy"+"bxbyb"+"xbyb"+"xbyb"; g != want {
		t.Errorf("runs %q, want %q", g, want)
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
func TestPairRatio(t *testing.T) {
	op, err := rawOp(1 << 10)
	if err != nil {
		t.Fatal(err)
	}
	four := func() error {
		for range 4 {
			op()
		}
		return nil
	}
	p, err := Pair(op, []Op{four}, 5, 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r := Median(p.Ratio[0]); r < 2 {
		t.Errorf("four seals against one: ratio %.2f, want about 4", r)
	}
}

func TestPairError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	failing := func() error {
		if calls++; calls > 10 {
			return boom
		}
		return nil
	}
	if _, err := Pair(func() error { return nil }, []Op{failing}, 100, time.Millisecond); !errors.Is(err, boom) {
		t.Errorf("Pair with a failing op: %v, want %v", err, boom)
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
