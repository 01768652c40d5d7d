package postgres

import (
	"context"
	"testing"

	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/store"
	"github.com/openbyok/byok/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.NewDatabase(t))
	})
}

// open opens the database dsn names; the caller closes it.
func open(t testing.TB, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}
