package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/openbyok/byok/lifecycle/record"
	"github.com/openbyok/byok/store/storetest"
)

// TestOptionsMigration: records saved before migration 0007 get their
// Azure fields moved into the settings' options.
func TestOptionsMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "byok.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	storetest.RunOptionsMigration(t, db, func(t *testing.T) {
		exec(t, db, `UPDATE lifecycle_keys SET data = json_remove(json_set(data, '$.directory_id', 'd', '$.client_id', 'c',
			'$.credential', 'client-secret'), '$.options') WHERE tenant = 't1'`)
		exec(t, db, `DELETE FROM schema_migrations WHERE version = 7`)
	}, func(t *testing.T) record.Store {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if db, err = Open(context.Background(), path); err != nil {
			t.Fatal(err)
		}
		return db
	})
}
