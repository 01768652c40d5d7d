package sqlite

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/openbyok/byok/store/sqlstore"
)

// classify implements [sqlstore.Dialect.Classify] on SQLite's extended
// result codes.
func classify(err error) sqlstore.ErrorClass {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return sqlstore.OtherError
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return sqlstore.Duplicate
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlstore.MissingParent
	}
	return sqlstore.OtherError
}
