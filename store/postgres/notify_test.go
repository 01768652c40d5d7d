package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/internal/pgtest"
)

// hang bounds how long a test waits for a notification that must come; it
// only turns a hang into a failure.
const hang = 30 * time.Second

// listener runs db.Listen in a goroutine; its callback's tenants arrive
// on calls, and Listen's result on done.
type listener struct {
	calls chan string
	done  chan error
}

func listen(ctx context.Context, db *DB) *listener {
	l := &listener{calls: make(chan string, 100), done: make(chan error, 1)}
	go func() { l.done <- db.Listen(ctx, func(tenant string) { l.calls <- tenant }) }()
	return l
}

// next fails t unless the callback's next call is for tenant.
func (l *listener) next(t *testing.T, tenant string) {
	t.Helper()
	select {
	case got := <-l.calls:
		if got != tenant {
			t.Fatalf("callback called for tenant %q, want %q", got, tenant)
		}
	case err := <-l.done:
		t.Fatalf("Listen returned %v while a call for %q was awaited", err, tenant)
	case <-time.After(hang):
		t.Fatalf("no callback for tenant %q within %v", tenant, hang)
	}
}

// result fails t unless Listen returns an error wrapping want.
func (l *listener) result(t *testing.T, want error) {
	t.Helper()
	select {
	case err := <-l.done:
		if !errors.Is(err, want) {
			t.Fatalf("Listen returned %v, want %v", err, want)
		}
	case <-time.After(hang):
		t.Fatalf("Listen did not return within %v", hang)
	}
}

func TestNotifyListen(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	newTenant(t, a, "acme")
	newTenant(t, a, "globex")

	ctx, cancel := context.WithCancel(t.Context())
	l := listen(ctx, b)
	// Listening, b first forgets every tenant: changes made before it
	// listened are covered.
	l.next(t, "acme")
	l.next(t, "globex")

	// A change on replica a reaches replica b.
	if err := a.Notify(t.Context(), "globex"); err != nil {
		t.Fatal(err)
	}
	l.next(t, "globex")
	if err := a.Notify(t.Context(), "tenant ✓ 'quoted'"); err != nil {
		t.Fatal(err)
	}
	l.next(t, "tenant ✓ 'quoted'")

	// Kill b's listening connection: b reconnects, forgets every tenant
	// (a notification may have been lost meanwhile), and listens again.
	var killed int
	if err := a.pool.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+Channel+`'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listening connections, want 1", killed)
	}
	l.next(t, "acme")
	l.next(t, "globex")
	if err := a.Notify(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	l.next(t, "acme")

	cancel()
	l.result(t, context.Canceled)
}

func TestListenStopsAtClose(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	newTenant(t, a, "acme")
	l := listen(t.Context(), b)
	l.next(t, "acme")
	b.Close()
	l.result(t, errClosed)

	// A closed DB cannot listen: the first failure is returned.
	if err := b.Listen(t.Context(), func(string) {}); err == nil {
		t.Error("Listen on a closed DB succeeded")
	}
}

func TestNotifyInvalid(t *testing.T) {
	db := openNew(t)
	for name, tenant := range map[string]string{
		"empty":    "",
		"too long": strings.Repeat("x", maxPayload+1),
	} {
		if err := db.Notify(t.Context(), tenant); !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("Notify of %s tenant id: %v, want ErrInvalidInput", name, err)
		}
	}
	if err := db.Notify(t.Context(), strings.Repeat("x", maxPayload)); err != nil {
		t.Errorf("Notify of the longest tenant id: %v", err)
	}
	if err := db.Notify(t.Context(), "a\x00b"); !errors.Is(err, byok.ErrInvalidInput) {
		t.Errorf("Notify of tenant id with NUL: %v, want ErrInvalidInput", err)
	}
	db.Close()
	if err := db.Notify(t.Context(), "acme"); err == nil {
		t.Error("Notify after Close succeeded")
	}
}
