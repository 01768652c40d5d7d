package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbyok/byok/store/sqlite"
)

// TestBootstrapOperatorFileErrors checks that a token file that cannot be
// created safely fails the bootstrap before any token is stored, so that
// the next start, once the path is fixed, bootstraps again; and that an
// existing file (whose mode os.WriteFile would keep) is never written.
func TestBootstrapOperatorFileErrors(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "byok.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	existing := filepath.Join(dir, "existing.token")
	if err := os.WriteFile(existing, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{existing, filepath.Join(dir, "missing-dir", "operator.token")} {
		var stdout bytes.Buffer
		if err := bootstrapOperator(ctx, db, path, &stdout); err == nil {
			t.Errorf("bootstrap to %s: no error, want one", path)
		}
		if toks, err := db.ListTokens(ctx, "", 10); err != nil || len(toks) != 0 {
			t.Errorf("after a failed bootstrap to %s: %d token(s) stored (err %v), want none: the next start could not bootstrap", path, len(toks), err)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "old\n" {
		t.Errorf("bootstrap wrote into the existing file, which keeps its mode 0644")
	}

	path := filepath.Join(dir, "operator.token")
	var stdout bytes.Buffer
	if err := bootstrapOperator(ctx, db, path, &stdout); err != nil {
		t.Fatalf("bootstrap to a new file: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file has mode %v; want 0600", fi.Mode())
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "byok_operator_") || strings.Contains(stdout.String(), strings.TrimSpace(string(b))) {
		t.Errorf("token file holds %d bytes, stdout %q; want the token in the file only", len(b), stdout.String())
	}
}
