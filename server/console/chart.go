package console

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/lifecycle"
)

// The status page's chart covers the last chartWindow in chartBuckets
// bars.
const (
	chartWindow  = 24 * time.Hour
	chartBuckets = 24
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 720, 180
	plotLeft       = 40
	plotRight      = 40
	plotTop        = 10
	plotBottom     = 24
)

// chart is an inline SVG of vault calls (succeeded and failed, per hour)
// and the vault latency measured by each Test configuration, drawn from
// the audit log. Vault-call events carry no duration, so latency comes
// from the tests' latency check (its unwrap p50).
type chart struct {
	Width, Height int
	Bars          []chartBar
	Points        []chartPoint
	Line          string // polyline of the points
	Ticks         []chartTick
	MaxCalls      int
	MaxLatency    time.Duration
	Calls, Failed int
	// Top and Bottom are the plot's y bounds; Left and Right its x bounds.
	Top, Bottom, Left, Right int
}

type chartBar struct {
	X, W                 int
	OKY, OKH, BadY, BadH int
	Title                string
}

type chartPoint struct {
	X, Y  int
	Title string
}

type chartTick struct {
	X     int
	Label string
}

// buildChart draws events (a tenant's, oldest first) over the window that
// ends at now.
func buildChart(events []audit.Event, now time.Time) chart {
	c := chart{Width: chartW, Height: chartH, Top: plotTop, Bottom: chartH - plotBottom, Left: plotLeft, Right: chartW - plotRight}
	start := now.Add(-chartWindow)
	bucket := chartWindow / chartBuckets
	var ok, bad [chartBuckets]int
	type sample struct {
		at time.Time
		d  time.Duration
		ok bool
	}
	var samples []sample
	for _, e := range events {
		if e.Time.Before(start) || !e.Time.Before(now.Add(time.Nanosecond)) {
			continue
		}
		i := min(int(e.Time.Sub(start)/bucket), chartBuckets-1)
		switch {
		case strings.HasPrefix(e.Action, "vault."):
			if e.Outcome == audit.Success {
				ok[i]++
			} else {
				bad[i]++
			}
		case e.Action == "key.test":
			if d, found := testLatency(e); found {
				samples = append(samples, sample{e.Time, d, e.Outcome == audit.Success})
			}
		}
	}
	for i := range chartBuckets {
		c.MaxCalls = max(c.MaxCalls, ok[i]+bad[i])
		c.Calls += ok[i] + bad[i]
		c.Failed += bad[i]
	}
	for _, s := range samples {
		c.MaxLatency = max(c.MaxLatency, s.d)
	}
	plotW, plotH := c.Right-c.Left, c.Bottom-c.Top
	slot := plotW / chartBuckets
	for i := range chartBuckets {
		x := c.Left + i*slot
		b := chartBar{X: x + 2, W: slot - 4}
		if c.MaxCalls > 0 {
			okH := ok[i] * plotH / c.MaxCalls
			badH := bad[i] * plotH / c.MaxCalls
			b.OKY, b.OKH = c.Bottom-okH, okH
			b.BadY, b.BadH = c.Bottom-okH-badH, badH
		}
		from := start.Add(time.Duration(i) * bucket)
		b.Title = fmt.Sprintf("%s: %d vault calls succeeded, %d failed", from.UTC().Format("Jan 2 15:04"), ok[i], bad[i])
		c.Bars = append(c.Bars, b)
		if i%6 == 0 {
			c.Ticks = append(c.Ticks, chartTick{X: x, Label: from.UTC().Format("15:04")})
		}
	}
	var line []string
	for _, s := range samples {
		x := c.Left + int(int64(plotW)*int64(s.at.Sub(start))/int64(chartWindow))
		y := c.Bottom
		if c.MaxLatency > 0 {
			y = c.Bottom - int(int64(plotH)*int64(s.d)/int64(c.MaxLatency))
		}
		res := "passed"
		if !s.ok {
			res = "failed"
		}
		c.Points = append(c.Points, chartPoint{X: x, Y: y, Title: fmt.Sprintf("%s: test %s, unwrap p50 %s", s.at.UTC().Format("Jan 2 15:04:05"), res, s.d)})
		line = append(line, fmt.Sprintf("%d,%d", x, y))
	}
	c.Line = strings.Join(line, " ")
	return c
}

// testLatency reads the unwrap p50 of a key.test event's latency check
// ("unwrap p50 12ms, p95 …").
func testLatency(e audit.Event) (time.Duration, bool) {
	var checks []lifecycle.Check
	if json.Unmarshal(e.After, &checks) != nil {
		return 0, false
	}
	for _, ch := range checks {
		if ch.Name != "latency" {
			continue
		}
		_, rest, ok := strings.Cut(ch.Detail, "p50 ")
		if !ok {
			return 0, false
		}
		v, _, _ := strings.Cut(rest, ",")
		d, err := time.ParseDuration(v)
		return d, err == nil
	}
	return 0, false
}
