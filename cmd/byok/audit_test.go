package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/store/sqlite"
)

// auditDB creates a database with 3 events in chain "t1", 2 in "t2" and
// 1 in the platform chain, and returns its path.
func auditDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "byok.db")
	if err := writeAuditDB(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeAuditDB creates auditDB's database at path.
func writeAuditDB(path string) error {
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		return err
	}
	defer db.Close()
	log := audit.New(db, nil)
	at := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	for i, tenant := range []string{"t1", "t2", "", "t1", "t2", "t1"} {
		_, err := log.Record(context.Background(), audit.Event{
			Tenant: tenant, Time: at.Add(time.Duration(i) * time.Hour), Actor: audit.Actor{Kind: audit.TenantAdmin, ID: "admin"},
			Action: []string{"key.configure", "key.test", "vault.unwrap"}[i%3], Outcome: audit.Success,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// runCmd runs byok with args in-process and returns its exit code and
// outputs.
func runCmd(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// tamperDB runs SQL on the database behind byok's back.
func tamperDB(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{`DROP TRIGGER IF EXISTS audit_events_no_update`, `DROP TRIGGER IF EXISTS audit_events_no_delete`}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	path := auditDB(t)
	code, out, errOut := runCmd("audit", "verify", "--db", path)
	if code != 0 || !strings.Contains(out, "OK: every chain verifies") {
		t.Fatalf("verify of an intact log: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{`platform chain: 1 events`, `tenant "t1": 3 events, head seq 3 hash `, `tenant "t2": 2 events`} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd("audit", "verify", "--db", path, "--tenant", "t2")
	if code != 0 || strings.Contains(out, "t1") || !strings.Contains(out, `tenant "t2"`) {
		t.Errorf("verify --tenant t2: exit %d\n%s", code, out)
	}

	tamperDB(t, path, `UPDATE audit_events SET outcome = 'denied' WHERE tenant = 't1' AND seq = 2`)
	code, out, errOut = runCmd("audit", "verify", "--db", path)
	if code == 0 {
		t.Fatalf("verify of an edited log exits 0:\n%s", out)
	}
	if !strings.Contains(out, `BROKEN chain of tenant "t1" seq 2: stored hash`) || !strings.Contains(errOut, "altered outside byok: 1 problem(s)") {
		t.Errorf("verify of an edited log says:\n%s%s", out, errOut)
	}
	// Tenant t2's chain is intact.
	if code, out, errOut := runCmd("audit", "verify", "--db", path, "--tenant", "t2"); code != 0 {
		t.Errorf("verify --tenant t2 after t1 was edited: exit %d\n%s%s", code, out, errOut)
	}
}

func TestAuditVerifyHead(t *testing.T) {
	path := auditDB(t)
	_, out, _ := runCmd("audit", "verify", "--db", path, "--tenant", "t1")
	m := regexp.MustCompile(`head seq (\d+) hash ([0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no head in %s", out)
	}
	head := m[1] + ":" + m[2]
	if code, out, errOut := runCmd("audit", "verify", "--db", path, "--tenant", "t1", "--head", head); code != 0 {
		t.Fatalf("verify --head of the current head: exit %d\n%s%s", code, out, errOut)
	}
	tamperDB(t, path, `DELETE FROM audit_events WHERE tenant = 't1' AND seq = 3`)
	code, _, errOut := runCmd("audit", "verify", "--db", path, "--tenant", "t1", "--head", head)
	if code == 0 || !strings.Contains(errOut, "its newest 1 event(s) were deleted") {
		t.Errorf("verify --head after the newest row was deleted: exit %d, %s", code, errOut)
	}
	tamperDB(t, path, `DELETE FROM audit_events WHERE tenant = 't1' AND seq = 2`,
		`INSERT INTO audit_events SELECT tenant, 2, hash, hash, 'forged', time, actor_kind, actor_id,
			action, target, before, after, outcome, reason, NULL, NULL, NULL, NULL, NULL FROM audit_events WHERE tenant = 't1' AND seq = 1`)
	code, _, errOut = runCmd("audit", "verify", "--db", path, "--tenant", "t1", "--head", "1:"+strings.Repeat("ab", 32))
	if code == 0 || !strings.Contains(errOut, "altered outside byok") {
		t.Errorf("verify of a forged row: exit %d, %s", code, errOut)
	}
}

func TestAuditExportCommand(t *testing.T) {
	path := auditDB(t)
	code, out, errOut := runCmd("audit", "export", "--db", path)
	if code != 0 || !strings.Contains(errOut, "exported 6 events") {
		t.Fatalf("export: exit %d, %s", code, errOut)
	}
	var chains []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %s: %v", sc.Bytes(), err)
		}
		if audit.ComputeHash(&e) != e.Hash {
			t.Errorf("exported line %s does not hash to its hash", sc.Bytes())
		}
		chains = append(chains, fmt.Sprintf("%s/%d", e.Tenant, e.Seq))
	}
	if got := strings.Join(chains, " "); got != "/1 t1/1 t1/2 t1/3 t2/1 t2/2" {
		t.Errorf("export holds %s", got)
	}

	for _, tc := range []struct {
		args []string
		n    int
	}{
		{[]string{"--tenant", "t1"}, 3},
		{[]string{"--platform"}, 1},
		{[]string{"--tenant", "t1", "--since", "2026-07-01T03:00:00Z"}, 2},
		{[]string{"--until", "2026-07-01T02:00:00Z"}, 2},
		{[]string{"--action", "key."}, 4},
		{[]string{"--since", "1h"}, 0}, // the events are in the past
		{[]string{"--tenant", "nobody"}, 0},
	} {
		code, out, errOut := runCmd(append([]string{"audit", "export", "--db", path}, tc.args...)...)
		if n := strings.Count(out, "\n"); code != 0 || n != tc.n || !strings.Contains(errOut, fmt.Sprintf("exported %d events", tc.n)) {
			t.Errorf("export %v: exit %d, %d lines, %s; want %d", tc.args, code, n, errOut, tc.n)
		}
	}

	file := filepath.Join(t.TempDir(), "audit.jsonl")
	if code, _, errOut := runCmd("audit", "export", "--db", path, "--out", file); code != 0 {
		t.Fatalf("export --out: %s", errOut)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != out {
		t.Errorf("export --out wrote %q, %v; want what stdout got", b, err)
	}
	if code, _, errOut := runCmd("audit", "export", "--db", path, "--out", file); code == 0 || !strings.Contains(errOut, "never overwrites") {
		t.Errorf("export --out over an existing file: exit %d, %s", code, errOut)
	}
}

// TestAuditCommandErrors is the script testdata/script/audit_errors.txtar.
