package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openbyok/byok"
)

// Channel is the PostgreSQL notification channel of [DB.Notify] and
// [DB.Listen]. A notification's payload is a tenant id.
const Channel = "byok_tenant"

// maxPayload is the largest payload PostgreSQL's NOTIFY takes, in bytes
// (its limit is "shorter than 8000 bytes").
const maxPayload = 7999

// Reconnection delays of [DB.Listen]: the first retry waits about
// minRetry, each next one twice as long, up to maxRetry, with jitter so
// that replicas do not reconnect in step.
const (
	minRetry = 50 * time.Millisecond
	maxRetry = 10 * time.Second
)

// errClosed is what Listen returns when its DB is closed.
var errClosed = errors.New("store/postgres: DB closed")

// Notify tells every replica that listens ([DB.Listen]) that the keys or
// scopes of tenant changed, so that each drops what it caches about the
// tenant. PostgreSQL delivers the notification to every session listening
// at that moment, this replica's included. A tenant id of 8000 bytes or
// more, or an empty one, fails with [byok.ErrInvalidInput].
func (db *DB) Notify(ctx context.Context, tenant string) error {
	if tenant == "" {
		return &byok.InputError{Arg: "tenant id", Reason: "is empty"}
	}
	if len(tenant) > maxPayload {
		return &byok.InputError{Arg: "tenant id", Reason: fmt.Sprintf("is %d bytes; a PostgreSQL notification holds at most %d", len(tenant), maxPayload)}
	}
	if _, err := db.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, tenant); err != nil {
		return wrapErr(err, "notify a change of tenant %q", tenant)
	}
	return nil
}

// Listen calls forget(tenant) for every [DB.Notify] of any replica, until
// ctx is done or db is closed. It holds a connection of its own, outside
// the pool, and calls forget from its own goroutine, one call at a time.
//
// Notifications sent while no connection listens are lost, so each time
// Listen has started listening, at first and after every reconnection, it
// also calls forget for every tenant in the store. Hence every change
// committed after Listen was called is followed by a call forget(tenant).
//
// If the first connection, LISTEN or sweep over the tenants fails, Listen
// returns that error. Later it reconnects by itself, retrying with
// exponential backoff from 50 ms to 10 s, for as long as it takes.
// It returns [context.Cause] of ctx when ctx is done, and an error saying
// the DB is closed when db is closed.
func (db *DB) Listen(ctx context.Context, forget func(tenant string)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-db.closed:
			cancel(errClosed)
		case <-ctx.Done():
		}
	}()

	conn, err := db.listen(ctx, forget)
	if err != nil {
		return err
	}
	delay := minRetry
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			forget(n.Payload)
			continue
		}
		conn.Close(context.WithoutCancel(ctx))
		for {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			wait := delay/2 + rand.N(delay/2+1)
			delay = min(2*delay, maxRetry)
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(wait):
			}
			if conn, err = db.listen(ctx, forget); err == nil {
				delay = minRetry
				break
			}
		}
	}
}

// listen opens a connection, listens on [Channel] and calls forget for
// every tenant.
func (db *DB) listen(ctx context.Context, forget func(tenant string)) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("store/postgres: listen for tenant changes: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+Channel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, wrapErr(err, "listen for tenant changes")
	}
	for after := ""; ; {
		ts, err := db.ListTenants(ctx, after, 1000)
		if err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("store/postgres: listen for tenant changes: list the tenants to forget: %w", err)
		}
		for _, t := range ts {
			forget(t.ID)
		}
		if len(ts) < 1000 {
			return conn, nil
		}
		after = ts[len(ts)-1].ID
	}
}
