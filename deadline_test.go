package byok

import (
	"testing"
	"time"
)

// With the real clock, a deadline closes by its timer, and moving it
// re-arms the timer; closing it is immediate.
func TestDeadlineRealClock(t *testing.T) {
	k := &Keyring{realClock: true, start: time.Now()}
	k.startNanos = k.start.UnixNano()
	var d deadline
	if !d.passed(k) {
		t.Fatal("a deadline never set has not passed")
	}
	d.set(k, k.nanos()+int64(time.Hour))
	if d.passed(k) {
		t.Fatal("a deadline an hour ahead has passed")
	}
	d.set(k, k.nanos()+int64(20*time.Millisecond))
	begin := time.Now()
	for !d.passed(k) {
		if time.Since(begin) > 10*time.Second {
			t.Fatal("the deadline's timer never closed it")
		}
		time.Sleep(time.Millisecond)
	}
	d.set(k, k.nanos()+int64(time.Hour))
	d.close(k)
	if !d.passed(k) {
		t.Fatal("a closed deadline has not passed")
	}
	d.set(k, k.nanos()-1)
	if !d.passed(k) {
		t.Fatal("a deadline in the past has not passed")
	}
}

// With a fake clock, a deadline compares with the clock.
func TestDeadlineFakeClock(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &Keyring{cfg: Config{Now: func() time.Time { return now }}}
	var d deadline
	d.set(k, now.Add(time.Minute).UnixNano())
	if d.passed(k) {
		t.Fatal("passed a minute early")
	}
	now = now.Add(time.Minute)
	if !d.passed(k) {
		t.Fatal("not passed at the deadline")
	}
}
