package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestNewDatabase(t *testing.T) {
	var names [2]string
	t.Run("two databases", func(t *testing.T) {
		for i := range names {
			c := connect(t, NewDatabase(t))
			if err := c.QueryRow(t.Context(), "SELECT current_database()").Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
			// Each database is new: the table of the first is not in the second.
			if _, err := c.Exec(t.Context(), "CREATE TABLE x (id int)"); err != nil {
				t.Fatalf("database %d: %v", i, err)
			}
			var enc, collate string
			if err := c.QueryRow(t.Context(), "SELECT pg_encoding_to_char(encoding), datcollate FROM pg_database WHERE datname = current_database()").Scan(&enc, &collate); err != nil {
				t.Fatal(err)
			}
			if enc != "UTF8" || collate != "C" {
				t.Errorf("database has encoding %s and collation %s, want UTF8 and C", enc, collate)
			}
		}
		if names[0] == names[1] {
			t.Errorf("two calls gave the same database %q", names[0])
		}
	})
	// The subtest's databases were dropped when it ended.
	c := connect(t, srv.dsn("postgres"))
	var n int
	if err := c.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = ANY($1)", names[:]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d of databases %q remain after their test ended", n, names)
	}
}

func TestNotInstalled(t *testing.T) {
	glob := debianInitdb
	t.Cleanup(func() { debianInitdb = glob })
	debianInitdb = "/nonexistent/*/bin/initdb"
	t.Setenv("PATH", t.TempDir())
	_, err := start()
	if err == nil || err.Error() != NotInstalled {
		t.Errorf("start without binaries: error %v, want %q", err, NotInstalled)
	}
}

func TestBinDir(t *testing.T) {
	dir, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres")); err != nil {
		t.Errorf("binDir %s has no postgres: %v", dir, err)
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/usr/lib/postgresql/15/bin/initdb", 15},
		{"/usr/lib/postgresql/9/bin/initdb", 9},
		{"/usr/bin/initdb", 0},
	} {
		if got := version(tc.path); got != tc.want {
			t.Errorf("version(%s) = %d, want %d", tc.path, got, tc.want)
		}
	}
}
