package byok

import (
	"sync"
	"sync/atomic"
	"time"
)

// deadline is a moment the warm path must not pass without a check: the
// end of a tenant key's check interval, or a DEK's retirement age.
//
// Reading the clock costs more than the rest of the warm path's
// bookkeeping together, so with the real clock a timer closes the deadline
// when it passes and the warm path reads one atomic flag. A timer that
// fires late by some microseconds lets a key serve that much longer, well
// within the precision of a check interval; a stale timer of an earlier
// deadline can only close a later one early, which costs a check, never
// safety. With a fake clock (Config.Now), it compares with the clock.
type deadline struct {
	at   atomic.Int64 // Unix nanoseconds; 0 when closed
	open atomic.Bool  // real clock only: set until the timer fires

	mu    sync.Mutex
	timer *time.Timer
}

// passed reports whether the deadline has passed (or was closed). It is
// small enough to inline in the warm path; the fake clock's comparison is
// a call.
func (d *deadline) passed(k *Keyring) bool {
	if k.realClock {
		return !d.open.Load()
	}
	return d.passedFake(k)
}

// passedFake is passed under a fake clock (Config.Now).
func (d *deadline) passedFake(k *Keyring) bool { return k.cfg.Now().UnixNano() >= d.at.Load() }

// set moves the deadline to at (Unix nanoseconds); 0 closes it.
func (d *deadline) set(k *Keyring, at int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at.Store(at)
	if !k.realClock {
		return
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	wait := time.Duration(at - k.nanos())
	if at == 0 || wait <= 0 {
		d.open.Store(false)
		return
	}
	d.open.Store(true)
	d.timer = time.AfterFunc(wait, func() { d.open.Store(false) })
}

// close closes the deadline and releases its timer.
func (d *deadline) close(k *Keyring) { d.set(k, 0) }
