package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/store/storetest"
)

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) audit.Store { return openTemp(t, true) })
}

// auditFixture opens a database holding chains "t1" (5 events), "t2"
// (3 events) and the platform's (2 events), all valid.
func auditFixture(t *testing.T) (*DB, *audit.Log) {
	t.Helper()
	db := openTemp(t, true)
	log := audit.New(db, nil)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, tenant := range []string{"t1", "t2", "", "t1", "t2", "", "t1", "t2", "t1", "t1"} {
		_, err := log.Record(context.Background(), audit.Event{
			Tenant: tenant, Time: at.Add(time.Duration(i) * time.Minute),
			Actor: audit.Actor{Kind: audit.Operator, ID: "op"}, Action: "key.test", Target: fmt.Sprintf("target-%d", i),
			Outcome: audit.Success, Details: map[string]string{"i": fmt.Sprint(i)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := log.Verify(context.Background(), audit.Filter{All: true}); err != nil {
		t.Fatalf("fixture does not verify: %v", err)
	}
	return db, log
}

// tamper runs SQL statements on the audit table behind byok's back,
// dropping the triggers that keep it append-only first, as someone
// with write access to the file can.
func tamper(t *testing.T, db *DB, stmts ...string) {
	t.Helper()
	stmts = append([]string{`DROP TRIGGER audit_events_no_update`, `DROP TRIGGER audit_events_no_delete`}, stmts...)
	for _, s := range stmts {
		if _, err := db.w.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestAuditTamper(t *testing.T) {
	// The hash of event seq 2 of t1 recomputed after editing its reason,
	// as someone who knows the algorithm would; set below.
	for _, tc := range []struct {
		name   string
		stmts  func(db *DB) []string
		filter audit.Filter
		want   []string // "chain/seq: substring of the problem"
	}{
		{
			name: "edit a field",
			stmts: func(*DB) []string {
				return []string{`UPDATE audit_events SET target = 'other' WHERE tenant = 't1' AND seq = 3`}
			},
			filter: audit.Filter{Tenant: "t1"},
			want:   []string{"t1/3: edited"},
		},
		{
			name: "edit the outcome",
			stmts: func(*DB) []string {
				return []string{`UPDATE audit_events SET outcome = 'failure' WHERE tenant = 't2' AND seq = 1`}
			},
			filter: audit.Filter{All: true},
			want:   []string{"t2/1: edited"},
		},
		{
			name: "edit the time",
			stmts: func(*DB) []string {
				return []string{`UPDATE audit_events SET time = time + 1 WHERE tenant = '' AND seq = 2`}
			},
			filter: audit.Filter{Platform: true},
			want:   []string{"/2: edited"},
		},
		{
			name: "edit details",
			stmts: func(*DB) []string {
				return []string{`UPDATE audit_events SET details = '{"i":"99"}' WHERE tenant = 't1' AND seq = 1`}
			},
			filter: audit.Filter{Tenant: "t1"},
			want:   []string{"t1/1: edited"},
		},
		{
			name: "edit and rehash",
			stmts: func(db *DB) []string {
				e := readEvent(t, db, "t1", 2)
				e.Reason = "covered up"
				return []string{fmt.Sprintf(`UPDATE audit_events SET reason = 'covered up', hash = '%s' WHERE tenant = 't1' AND seq = 2`, audit.ComputeHash(&e))}
			},
			filter: audit.Filter{Tenant: "t1"},
			want:   []string{"t1/3: seq 2 was replaced"},
		},
		{
			name:   "delete a row",
			stmts:  func(*DB) []string { return []string{`DELETE FROM audit_events WHERE tenant = 't1' AND seq = 2`} },
			filter: audit.Filter{Tenant: "t1"},
			want:   []string{"t1/2: missing: the chain goes from seq 1 to seq 3"},
		},
		{
			name:   "delete rows",
			stmts:  func(*DB) []string { return []string{`DELETE FROM audit_events WHERE tenant = 't1' AND seq IN (2, 3)`} },
			filter: audit.Filter{Tenant: "t1"},
			want:   []string{"t1/2: missing up to seq 3"},
		},
		{
			name:   "delete the first row",
			stmts:  func(*DB) []string { return []string{`DELETE FROM audit_events WHERE tenant = 't2' AND seq = 1`} },
			filter: audit.Filter{Tenant: "t2"},
			want:   []string{"t2/1: missing: the chain goes from seq 0 to seq 2"},
		},
		{
			name: "delete the start and renumber",
			stmts: func(*DB) []string {
				return []string{`DELETE FROM audit_events WHERE tenant = 't2' AND seq = 1`,
					`UPDATE audit_events SET seq = seq - 1 WHERE tenant = 't2'`}
			},
			filter: audit.Filter{Tenant: "t2"},
			want:   []string{"t2/1: not the genesis hash", "t2/1: edited", "t2/2: edited"},
		},
		{
			name: "swap two rows' seq",
			stmts: func(*DB) []string {
				return []string{
					`UPDATE audit_events SET seq = 100 WHERE tenant = 't1' AND seq = 3`,
					`UPDATE audit_events SET seq = 3 WHERE tenant = 't1' AND seq = 4`,
					`UPDATE audit_events SET seq = 4 WHERE tenant = 't1' AND seq = 100`,
				}
			},
			filter: audit.Filter{Tenant: "t1"},
			want:   []string{"t1/3: prev_hash", "t1/3: edited", "t1/4: prev_hash", "t1/4: edited", "t1/5: prev_hash"},
		},
		{
			name: "move a row to another chain",
			stmts: func(*DB) []string {
				return []string{`UPDATE audit_events SET tenant = 't2', seq = 4 WHERE tenant = 't1' AND seq = 5`}
			},
			filter: audit.Filter{Tenant: "t2"},
			want:   []string{"t2/4: prev_hash", "t2/4: edited"},
		},
		{
			name: "insert a row",
			stmts: func(*DB) []string {
				return []string{`INSERT INTO audit_events SELECT tenant, 6, hash, hash, 'forged', time, actor_kind, actor_id,
					action, target, before, after, outcome, reason, vault_operation, vault_key_id, vault_purpose,
					vault_request_id, details FROM audit_events WHERE tenant = 't1' AND seq = 5`}
			},
			filter: audit.Filter{All: true},
			want:   []string{"t1/6: edited"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, log := auditFixture(t)
			tamper(t, db, tc.stmts(db)...)
			r, err := log.Verify(context.Background(), tc.filter)
			var te *audit.TamperError
			if !errors.As(err, &te) || !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("Verify = %v, want a TamperError", err)
			}
			if len(te.Findings) != len(r.Findings) {
				t.Errorf("error holds %d findings, report %d", len(te.Findings), len(r.Findings))
			}
			var got []string
			for _, f := range r.Findings {
				got = append(got, fmt.Sprintf("%s/%d: %s", f.Tenant, f.Seq, f.Problem))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("findings:\n%s\nwant %d matching %q", strings.Join(got, "\n"), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				pos, sub, _ := strings.Cut(w, ": ")
				if !strings.HasPrefix(got[i], pos+": ") || !strings.Contains(got[i], sub) {
					t.Errorf("finding %d = %q, want %q at %s", i, got[i], sub, pos)
				}
			}
		})
	}
}

// readEvent reads one stored event.
func readEvent(t *testing.T, db *DB, tenant string, seq uint64) audit.Event {
	t.Helper()
	es, err := db.AuditEvents(context.Background(), audit.Query{Tenant: tenant, After: audit.Position{Tenant: tenant, Seq: seq - 1}, Limit: 1})
	if err != nil || len(es) != 1 || es[0].Seq != seq {
		t.Fatalf("read %s/%d: %v, %v", tenant, seq, es, err)
	}
	return es[0]
}

func TestAuditAppendOnly(t *testing.T) {
	db, _ := auditFixture(t)
	for _, s := range []string{
		`UPDATE audit_events SET reason = 'x' WHERE tenant = 't1' AND seq = 1`,
		`DELETE FROM audit_events WHERE tenant = 't1' AND seq = 5`,
	} {
		if _, err := db.w.Exec(s); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s = %v, want the append-only trigger's error", s, err)
		}
	}
}

func TestAuditCorruptDetails(t *testing.T) {
	db, _ := auditFixture(t)
	tamper(t, db, `UPDATE audit_events SET details = '[1]' WHERE tenant = 't1' AND seq = 1`)
	_, err := db.AuditEvents(context.Background(), audit.Query{Tenant: "t1", Limit: 10})
	if err == nil || !strings.Contains(err.Error(), "not a JSON object of strings") {
		t.Errorf("AuditEvents over corrupt details = %v, want an error naming them", err)
	}
}

func TestAuditReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "byok.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(db, nil)
	first, err := log.Record(context.Background(), audit.Event{Tenant: "t", Actor: audit.Actor{Kind: audit.System, ID: "s"}, Action: "key.activate", Outcome: audit.Success})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	second, err := audit.New(db, nil).Record(context.Background(), audit.Event{Tenant: "t", Actor: audit.Actor{Kind: audit.System, ID: "s"}, Action: "key.rotate", Outcome: audit.Success})
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq != 2 || second.PrevHash != first.Hash {
		t.Errorf("after reopening, event is seq %d after %s; want seq 2 after %s", second.Seq, second.PrevHash, first.Hash)
	}
}

// BenchmarkAuditRecord measures Record on SQLite: one write transaction
// (read the head, insert, fsync) per event.
func BenchmarkAuditRecord(b *testing.B) {
	db := openTemp(b, true)
	log := audit.New(db, nil)
	e := audit.Event{Tenant: "t1", Actor: audit.Actor{Kind: audit.TenantAdmin, ID: "admin"}, Action: "key.rotate",
		Target: "https://contoso.vault.azure.net/keys/cmk/0123456789abcdef", Outcome: audit.Success,
		Vault:   &audit.VaultCall{Operation: "wrapKey", KeyID: "https://contoso.vault.azure.net/keys/cmk/0123456789abcdef", Purpose: audit.PurposeRotationJob, RequestID: "r"},
		Details: map[string]string{"scope": "app-1", "epoch": "3"}}
	for b.Loop() {
		if _, err := log.Record(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAuditRecordParallel records from concurrent goroutines into 8
// chains.
func BenchmarkAuditRecordParallel(b *testing.B) {
	db := openTemp(b, true)
	log := audit.New(db, nil)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		tenant := fmt.Sprintf("t%d", n.Add(1)%8)
		e := audit.Event{Tenant: tenant, Actor: audit.Actor{Kind: audit.Service, ID: "svc"}, Action: "key.test", Outcome: audit.Success}
		for pb.Next() {
			if _, err := log.Record(context.Background(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAuditUsageFlush measures a Counter flush of 100 scopes of one
// tenant: 100 usage events in one transaction.
func BenchmarkAuditUsageFlush(b *testing.B) {
	db := openTemp(b, true)
	c := audit.NewCounter(audit.New(db, nil))
	scopes := make([]string, 100)
	for i := range scopes {
		scopes[i] = fmt.Sprintf("scope-%d", i)
	}
	for b.Loop() {
		for _, s := range scopes {
			c.Add("t1", s, audit.Encrypt)
		}
		if err := c.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(scopes))/b.Elapsed().Seconds(), "events/s")
}
