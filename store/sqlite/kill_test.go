package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle/record"
)

// childEnv names the database a child process of TestRewrapSurvivesKill
// rewraps, in this test binary.
const childEnv = "BYOK_SQLITE_REWRAP_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		if err := rewrapForever(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

const (
	killDEKs   = 6000 // DEKs of the killed re-key: its batches cross from one pass to the next
	killBatch  = 300
	killEpochs = 40 // tenant keys of the killed re-key: enough for its passes
)

// passEpochs returns the epoch the DEKs move from and to in pass p of
// rewrapForever: from 1 to 2, then from 2 to 3, and so on.
func passEpochs(p int64) (from, to uint32) {
	return uint32(p) + 1, uint32(p) + 2
}

// killWrapped is the wrapping of DEK id under epoch e in the killed re-key.
func killWrapped(id byok.DEKID, e uint32) []byte { return fmt.Appendf(nil, "e%d:%x", e, id) }

// rewrapForever re-keys acme's DEKs of the database at path onto its next
// epoch, pass after pass, in batches that carry job j1's progress as a
// re-key does (Done counts every DEK rewrapped; Cursor is the last one of
// the pass), printing Done after each batch, until it is killed.
func rewrapForever(path string) error {
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		return err
	}
	for {
		j, err := db.JobRecord(ctx, "j1")
		if err != nil {
			return err
		}
		from, to := passEpochs(j.Done / killDEKs)
		page, err := db.ListDEKs(ctx, "acme", byok.CustomerManaged, to, j.Cursor, killBatch)
		if err != nil {
			return err
		}
		for i := range page {
			if page[i].Epoch != from {
				return fmt.Errorf("DEK %x is under epoch %d in pass %d, want %d", page[i].ID, page[i].Epoch, j.Done/killDEKs, from)
			}
			page[i].Epoch, page[i].Wrapped = to, killWrapped(page[i].ID, to)
		}
		j.Done += int64(len(page))
		j.Cursor = page[len(page)-1].ID
		if j.Done%killDEKs == 0 {
			j.Cursor = byok.DEKID{}
		}
		if err := db.RewrapBatch(ctx, nil, page, j); err != nil {
			return err
		}
		fmt.Println(j.Done)
	}
}

// A re-key killed with SIGKILL at random points of its batches loses
// nothing: the database is intact, each DEK is wholly under its old or
// its new epoch as the job's cursor says, every batch the process saw
// committed is there, and the next run resumes from the job.
func TestRewrapSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "byok.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	newTenant(t, db)
	for e := uint32(3); e <= killEpochs; e++ {
		if err := db.PutTenantKey(t.Context(), tenantKey("acme", byok.CustomerManaged, e)); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.w.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range killDEKs {
		d := dekN("acme", "bot", byok.CustomerManaged, 1, uint64(i)*7919)
		if _, err := tx.Exec(`INSERT INTO deks (id, tenant, scope, kind, epoch, wrapped) VALUES (?, ?, ?, ?, ?, ?)`,
			d.ID[:], d.Tenant, d.Scope, int64(d.Kind), int64(d.Epoch), killWrapped(d.ID, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	j := record.JobRecord{Job: record.Job{ID: "j1", Tenant: "acme", Kind: record.JobRekey, State: record.JobRunning,
		Created: created, Updated: created}, Epoch: 2}
	if err := db.PutJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var done int64
	for round := range 6 {
		seen := runAndKill(t, path, 2+7*round)
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		j, err := db.JobRecord(t.Context(), "j1")
		if err != nil {
			t.Fatal(err)
		}
		if j.Done < seen || j.Done <= done {
			t.Fatalf("round %d: job done %d after the child printed %d and the last run left %d", round, j.Done, seen, done)
		}
		done = j.Done
		checkKilled(t, db, j)
		db.Close()
	}
}

// runAndKill runs rewrapForever on path in a child process, kills it with
// SIGKILL after it printed n batches, and returns the last Done it printed.
func runAndKill(t *testing.T, path string, n int) int64 {
	t.Helper()
	cmd := osexec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last int64
	lines := bufio.NewScanner(out)
	for i := 0; i < n && lines.Scan(); i++ {
		if last, err = strconv.ParseInt(lines.Text(), 10, 64); err != nil {
			t.Fatalf("child printed %q", lines.Text())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if stderr.Len() > 0 {
		t.Fatalf("child failed: %s", stderr.Bytes())
	}
	return last
}

// checkKilled checks db after a kill: intact, its foreign keys hold, and
// every DEK is under the epoch and wrapping job j's progress gives it.
func checkKilled(t *testing.T, db *DB, j record.JobRecord) {
	t.Helper()
	var ok string
	if err := db.r.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check = %q, %v", ok, err)
	}
	rows, err := db.r.QueryContext(t.Context(), `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Fatal("foreign_key_check found a row without its parent")
	}
	rows.Close()
	from, to := passEpochs(j.Done / killDEKs)
	if to > killEpochs {
		t.Fatalf("the child re-keyed onto epoch %d, past the %d the test made", to, killEpochs)
	}
	ds, err := db.ListDEKs(t.Context(), "acme", byok.CustomerManaged, killEpochs+1, byok.DEKID{}, killDEKs+1)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		moved := j.Cursor != (byok.DEKID{}) && bytes.Compare(d.ID[:], j.Cursor[:]) <= 0
		if want := map[bool]uint32{false: from, true: to}[moved]; d.Epoch != want || !bytes.Equal(d.Wrapped, killWrapped(d.ID, want)) {
			t.Fatalf("DEK %x after job %d/%x: epoch %d, wrapped %q; want epoch %d", d.ID, j.Done, j.Cursor, d.Epoch, d.Wrapped, want)
		}
	}
	if n := len(ds); n != killDEKs {
		t.Fatalf("%d DEKs after the kill, want %d", n, killDEKs)
	}
}
