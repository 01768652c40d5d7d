package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// A job's batches are committed without checkpointing the WAL inline (up
// to bulkAutocheckpoint pages of it): the checkpointer copies it into the
// database file on its own connection once a batch is written, at most
// once per checkpointGap, so that the copy and its two fsyncs leave the
// writer's path. A PASSIVE checkpoint never waits for the writer or the
// readers; the frames it could not copy yet are copied by the next one,
// or by the writer itself past bulkAutocheckpoint pages.
const (
	// autocheckpoint is the writer's wal_autocheckpoint (SQLite's
	// default): the WAL pages past which a commit checkpoints inline.
	autocheckpoint = 1000
	// bulkAutocheckpoint is the writer's wal_autocheckpoint while it
	// writes a job's batch: a backstop for a checkpointer that falls
	// behind (a 4 KiB page makes it 40 MiB of WAL).
	bulkAutocheckpoint = 10_000
	// checkpointGap is the least time between two checkpoints.
	checkpointGap = 100 * time.Millisecond
)

// checkpointer runs PASSIVE checkpoints on its own connection when woken.
type checkpointer struct {
	db   *sql.DB
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once // closes stop
	// checked, if set, is called after each checkpoint with its result:
	// for tests.
	checked func(log, copied int, err error)
}

// newCheckpointer starts a checkpointer on db, a handle of one connection
// that may write.
func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// signal asks for a checkpoint; asks made before it starts are one.
func (c *checkpointer) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		// An error (the disk full, say) leaves the frames in the WAL,
		// where the writer's own checkpoint past bulkAutocheckpoint
		// pages, or the next run, copies them; the writer reports the
		// errors of its writes itself.
		var busy, log, copied int
		err := c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &copied)
		if c.checked != nil {
			c.checked(log, copied, err)
		}
		t := time.NewTimer(checkpointGap)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// close stops the checkpointer and closes its connection. Calls after
// the first return nil, as sql.DB.Close's do.
func (c *checkpointer) close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
