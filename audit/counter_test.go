package audit_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
)

// usage returns the usage events of chain tenant as
// "scope minute encrypt decrypt".
func usage(t *testing.T, s *memStore, tenant string) []string {
	t.Helper()
	var out []string
	for _, e := range s.events(tenant) {
		if e.Action != audit.UsageAction || e.Actor != audit.UsageActor || e.Outcome != audit.Success {
			t.Errorf("usage event %+v", e)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Target, e.Details["minute"], e.Details["encrypt"], e.Details["decrypt"]))
	}
	return out
}

func TestCounterFlush(t *testing.T) {
	s := newMemStore()
	clock := newFakeClock(time.Date(2026, 7, 1, 12, 0, 30, 0, time.UTC))
	c := audit.NewCounter(audit.New(s, clock))
	ctx := context.Background()

	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if cs, _ := s.AuditChains(ctx); len(cs) != 0 {
		t.Errorf("a flush of no counts recorded events in chains %q", cs)
	}

	for range 3 {
		c.Add("t1", "app1", audit.Encrypt)
	}
	c.Add("t1", "app1", audit.Decrypt)
	c.Add("t1", "bot", audit.Decrypt)
	c.Add("t2", "app1", audit.Encrypt)
	clock.set(time.Date(2026, 7, 1, 12, 1, 0, 0, time.UTC))
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := usage(t, s, "t1")
	if len(got) == 2 && got[0] > got[1] {
		got[0], got[1] = got[1], got[0]
	}
	if want := []string{"app1 2026-07-01T12:00:00Z 3 1", "bot 2026-07-01T12:00:00Z 0 1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("usage of t1 = %q, want %q", got, want)
	}
	if got, want := usage(t, s, "t2"), []string{"app1 2026-07-01T12:00:00Z 1 0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("usage of t2 = %q, want %q", got, want)
	}
	if e := s.events("t1")[0]; !e.Time.Equal(clock.Now()) {
		t.Errorf("usage event time %v, want the flush's %v", e.Time, clock.Now())
	}

	// The next minute's counts start from zero.
	c.Add("t2", "app1", audit.Decrypt)
	clock.set(time.Date(2026, 7, 1, 12, 2, 0, 0, time.UTC))
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := usage(t, s, "t2"), []string{"app1 2026-07-01T12:00:00Z 1 0", "app1 2026-07-01T12:01:00Z 0 1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("usage of t2 = %q, want %q", got, want)
	}
	if n := len(s.events("t1")); n != 2 {
		t.Errorf("t1 has %d events after a minute without operations, want 2", n)
	}
}

func TestCounterFlushFailureKeepsCounts(t *testing.T) {
	s := newMemStore()
	clock := newFakeClock(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC))
	c := audit.NewCounter(audit.New(s, clock))
	ctx := context.Background()
	boom := errors.New("disk full")
	s.fail["t1"] = boom
	c.Add("t1", "app", audit.Encrypt)
	c.Add("t2", "app", audit.Encrypt)
	clock.set(clock.Now().Add(time.Minute))
	err := c.Flush(ctx)
	if !errors.Is(err, boom) || len(usage(t, s, "t2")) != 1 {
		t.Fatalf("Flush = %v with t2 holding %q; want t1's error and t2 recorded", err, usage(t, s, "t2"))
	}
	delete(s.fail, "t1")
	c.Add("t1", "app", audit.Encrypt)
	c.Add("t1", "app", audit.Decrypt)
	clock.set(clock.Now().Add(time.Minute))
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := usage(t, s, "t1"), []string{"app 2026-07-01T12:01:00Z 2 1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("usage of t1 after a failed flush = %q, want the kept and new counts %q", got, want)
	}
}

func TestCounterConcurrent(t *testing.T) {
	s := newMemStore()
	c := audit.NewCounter(audit.New(s, nil))
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c.Add(fmt.Sprintf("t%d", w%3), fmt.Sprintf("s%d", i%4), audit.Op(i%2))
			}
		})
	}
	flushes := make(chan error, 1)
	go func() { // flush while adding
		var err error
		for range 20 {
			err = errors.Join(err, c.Flush(context.Background()))
		}
		flushes <- err
	}()
	wg.Wait()
	if err := errors.Join(<-flushes, c.Flush(context.Background())); err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, tenant := range []string{"t0", "t1", "t2"} {
		for _, e := range s.events(tenant) {
			var enc, dec uint64
			fmt.Sscan(e.Details["encrypt"], &enc)
			fmt.Sscan(e.Details["decrypt"], &dec)
			total += enc + dec
		}
	}
	if total != workers*each {
		t.Errorf("usage events count %d operations, want %d: counts were lost or doubled", total, workers*each)
	}
}

func TestCounterAddAllocs(t *testing.T) {
	c := audit.NewCounter(audit.New(newMemStore(), nil))
	tenant, scope := "tenant-1", "scope-1"
	c.Add(tenant, scope, audit.Encrypt)
	if n := testing.AllocsPerRun(1000, func() { c.Add(tenant, scope, audit.Decrypt) }); n != 0 {
		t.Errorf("Add allocates %v times per call, want 0", n)
	}
}

func TestCounterAddUnknownOp(t *testing.T) {
	c := audit.NewCounter(audit.New(newMemStore(), nil))
	defer func() {
		if recover() == nil {
			t.Error("Add of an unknown op did not panic")
		}
	}()
	c.Add("t", "s", audit.Op(7))
}

func TestCounterRun(t *testing.T) {
	s := newMemStore()
	clock := newFakeClock(time.Date(2026, 7, 1, 12, 0, 45, 0, time.UTC))
	c := audit.NewCounter(audit.New(s, clock))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(done)
	}()

	a := <-clock.afters
	if a.d != 15*time.Second {
		t.Errorf("Run waits %v, want 15s to the end of the minute", a.d)
	}
	c.Add("t1", "app", audit.Encrypt)
	clock.set(time.Date(2026, 7, 1, 12, 1, 0, 0, time.UTC))
	a.ch <- clock.Now()

	a = <-clock.afters // the flush is done when Run waits again
	if a.d != time.Minute {
		t.Errorf("Run then waits %v, want a minute", a.d)
	}
	if got, want := usage(t, s, "t1"), []string{"app 2026-07-01T12:00:00Z 1 0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after the first minute, usage = %q, want %q", got, want)
	}

	c.Add("t1", "app", audit.Decrypt)
	clock.set(time.Date(2026, 7, 1, 12, 1, 10, 0, time.UTC))
	cancel()
	<-done
	if got, want := usage(t, s, "t1"), []string{"app 2026-07-01T12:00:00Z 1 0", "app 2026-07-01T12:01:00Z 0 1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after Run returned, usage = %q, want the last counts flushed too: %q", got, want)
	}
}

func BenchmarkCounterAdd(b *testing.B) {
	c := audit.NewCounter(audit.New(newMemStore(), nil))
	tenants := make([]string, 64)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tenant-%d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Add(tenants[i%len(tenants)], "scope", audit.Encrypt)
			i++
		}
	})
}

func BenchmarkCounterAddOneKey(b *testing.B) {
	c := audit.NewCounter(audit.New(newMemStore(), nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add("tenant", "scope", audit.Encrypt)
		}
	})
}
