package postgres

import (
	"testing"

	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/lifecycle/record"
	"github.com/openbyok/byok/store/storetest"
)

// TestOptionsMigration: records saved before migration 0007 get their
// Azure fields moved into the settings' options.
func TestOptionsMigration(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := open(t, dsn)
	t.Cleanup(func() { db.Close() })
	storetest.RunOptionsMigration(t, db, func(t *testing.T) {
		exec(t, db, `UPDATE lifecycle_keys SET data = ((data::jsonb - 'options') ||
			'{"directory_id": "d", "client_id": "c", "credential": "client-secret"}'::jsonb)::text WHERE tenant = 't1'`)
		exec(t, db, `DELETE FROM schema_migrations WHERE version = 7`)
	}, func(t *testing.T) record.Store {
		db.Close()
		db = open(t, dsn)
		return db
	})
}
