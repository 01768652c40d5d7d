package azurekv

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDocumentedLimits(t *testing.T) {
	for _, tc := range []struct {
		kty   string
		bits  int
		limit int
		cost  float64
	}{
		{"RSA", 2048, 4000, 1}, {"RSA", 3072, 1000, 4}, {"RSA", 4096, 500, 8},
		{"RSA-HSM", 2048, 2000, 2}, {"RSA-HSM", 3072, 500, 8}, {"RSA-HSM", 4096, 250, 16}, {"RSA", 0, 4000, 1},
	} {
		if l, c := documentedLimit(tc.kty, tc.bits), opCost(tc.kty, tc.bits); l != tc.limit || c != tc.cost {
			t.Errorf("%s %d: limit %d cost %v, want %d %v", tc.kty, tc.bits, l, c, tc.limit, tc.cost)
		}
	}
}

func TestBucket(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	b := newBucket(10, 10*time.Second, clk.Now) // 1 token per second
	for range 10 {
		if d, err := b.reserve(bg, 1); d != 0 || err != nil {
			t.Fatalf("reserve within capacity: wait %v, %v", d, err)
		}
	}
	if d, _ := b.reserve(bg, 1); d != time.Second {
		t.Errorf("reserve on an empty bucket: wait %v, want 1s", d)
	}
	// The deadline is nearer than the wait: refused, nothing taken.
	ctx, cancel := context.WithDeadline(bg, clk.Now().Add(500*time.Millisecond))
	defer cancel()
	if _, err := b.reserve(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reserve beyond the deadline: %v, want DeadlineExceeded", err)
	}
	clk.Advance(3 * time.Second) // pays the debt of one, refills two
	if got := b.available(); got != 2 {
		t.Errorf("available after 3 s = %v, want 2", got)
	}
	clk.Advance(time.Hour)
	if got := b.available(); got != 10 {
		t.Errorf("available after an hour = %v, want the capacity 10", got)
	}
	canceled, cancel2 := context.WithCancel(bg)
	cancel2()
	if err := b.wait(canceled, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled ctx: %v", err)
	}
	if budgetFor("a.vault.azure.net") != budgetFor("a.vault.azure.net") || budgetFor("a.vault.azure.net") == budgetFor("b.vault.azure.net") {
		t.Error("budgets are not one per vault host")
	}
}
