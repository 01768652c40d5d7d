package console

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/lifecycle"
)

func testEvent(t *testing.T, at time.Time, outcome audit.Outcome, latency string) audit.Event {
	t.Helper()
	checks := []lifecycle.Check{{Name: "round-trip", Outcome: lifecycle.Pass}, {Name: "latency", Outcome: lifecycle.Pass, Detail: latency}}
	after, err := json.Marshal(checks)
	if err != nil {
		t.Fatal(err)
	}
	return audit.Event{Time: at, Action: "key.test", Outcome: outcome, After: after}
}

func TestBuildChart(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	events := []audit.Event{
		{Time: now.Add(-30 * time.Hour), Action: "vault.unwrapkey", Outcome: audit.Success}, // outside the window
		{Time: now.Add(-23*time.Hour - 30*time.Minute), Action: "vault.unwrapkey", Outcome: audit.Success},
		{Time: now.Add(-90 * time.Minute), Action: "vault.wrapkey", Outcome: audit.Success},
		{Time: now.Add(-10 * time.Minute), Action: "vault.unwrapkey", Outcome: audit.Failure},
		{Time: now.Add(-10 * time.Minute), Action: "vault.unwrapkey", Outcome: audit.Success},
		{Time: now.Add(-5 * time.Minute), Action: "key.configure", Outcome: audit.Success}, // not a vault call
		testEvent(t, now.Add(-2*time.Hour), audit.Success, "unwrap p50 12ms, p95 20ms over 5 calls: the vault answers promptly"),
		testEvent(t, now.Add(-1*time.Hour), audit.Failure, "unwrap p50 40ms, p95 90ms over 5 calls: the vault answers promptly"),
		testEvent(t, now.Add(-1*time.Hour), audit.Failure, "3 of 5 calls done: an unwrap failed"), // no p50
	}
	c := buildChart(events, now)
	if c.Calls != 4 || c.Failed != 1 || c.MaxCalls != 2 {
		t.Errorf("calls %d, failed %d, max per hour %d; want 4, 1, 2", c.Calls, c.Failed, c.MaxCalls)
	}
	if len(c.Bars) != chartBuckets {
		t.Fatalf("%d bars, want %d", len(c.Bars), chartBuckets)
	}
	first, last := c.Bars[0], c.Bars[chartBuckets-1]
	if first.OKH == 0 || first.BadH != 0 {
		t.Errorf("first hour: ok height %d, failed height %d; want one success", first.OKH, first.BadH)
	}
	if last.OKH != last.BadH || last.OKH == 0 || last.OKY+last.OKH != c.Bottom || last.BadY+last.BadH != last.OKY {
		t.Errorf("last hour bar %+v: want equal success and failure stacked on the axis", last)
	}
	if !strings.Contains(last.Title, "1 vault calls succeeded, 1 failed") {
		t.Errorf("last bar's title %q", last.Title)
	}
	if len(c.Points) != 2 || c.MaxLatency != 40*time.Millisecond {
		t.Fatalf("%d latency points up to %s; want 2 up to 40ms", len(c.Points), c.MaxLatency)
	}
	if c.Points[1].Y != c.Top || c.Points[0].Y <= c.Top || c.Points[0].X >= c.Points[1].X {
		t.Errorf("points %+v: want the slower later test at the top, right of the first", c.Points)
	}
	if !strings.Contains(c.Points[1].Title, "test failed") || c.Line == "" {
		t.Errorf("point title %q, line %q", c.Points[1].Title, c.Line)
	}
}

func TestBuildChartEmpty(t *testing.T) {
	c := buildChart(nil, time.Now())
	if c.Calls != 0 || len(c.Points) != 0 || c.Line != "" || len(c.Bars) != chartBuckets {
		t.Errorf("empty chart: %+v", c)
	}
	for _, b := range c.Bars {
		if b.OKH != 0 || b.BadH != 0 {
			t.Errorf("empty chart has a bar of height %d/%d", b.OKH, b.BadH)
		}
	}
}

func TestTestLatencyIgnoresOtherShapes(t *testing.T) {
	for name, e := range map[string]audit.Event{
		"no after":   {Action: "key.test"},
		"bad json":   {Action: "key.test", After: json.RawMessage(`{`)},
		"no latency": {Action: "key.test", After: json.RawMessage(`[{"Name":"round-trip"}]`)},
		"bad value":  {Action: "key.test", After: json.RawMessage(`[{"Name":"latency","Detail":"unwrap p50 fast, p95 x"}]`)},
	} {
		if d, ok := testLatency(e); ok {
			t.Errorf("%s: latency %s, want none", name, d)
		}
	}
}

func TestKeyVersionAndPercent(t *testing.T) {
	for in, want := range map[string]string{
		"https://v.vault.azure.net/keys/k/abc123": "abc123",
		"https://v.vault.azure.net/keys/k":        "",
		"local:platform/v1":                       "",
	} {
		if got := keyVersion(in); got != want {
			t.Errorf("keyVersion(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct{ done, total, want int64 }{{0, 0, 100}, {0, 10, 0}, {5, 10, 50}, {12, 10, 100}} {
		if got := pct(tc.done, tc.total); got != tc.want {
			t.Errorf("pct(%d, %d) = %d, want %d", tc.done, tc.total, got, tc.want)
		}
	}
	for _, tc := range []struct {
		j    lifecycle.Job
		want int64
	}{
		{lifecycle.Job{State: lifecycle.JobRunning, Done: 10, Total: 10}, 99},
		{lifecycle.Job{State: lifecycle.JobDone, Done: 3, Total: 10}, 100},
		{lifecycle.Job{State: lifecycle.JobPending, Done: 0, Total: 4}, 0},
	} {
		if got := jobPercent(tc.j); got != tc.want {
			t.Errorf("jobPercent(%+v) = %d, want %d", tc.j, got, tc.want)
		}
	}
}
