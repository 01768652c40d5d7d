package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/store/storetest"
)

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) audit.Store { return openNew(t) })
}

// TestAuditAppendOnly checks that the table refuses to change or lose an
// event, and that the chain of a replica verifies when read by another.
func TestAuditAppendOnly(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	_, err := audit.New(a, nil).Record(ctx, audit.Event{Tenant: "acme", Time: time.Now(),
		Actor: audit.Actor{Kind: audit.Operator, ID: "op"}, Action: "key.test", Outcome: audit.Success})
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE audit_events SET reason = 'edited'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
	} {
		_, err := a.pool.Exec(ctx, sql)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want the append-only error", sql, err)
		}
	}
	if _, err := audit.New(b, nil).Verify(ctx, audit.Filter{All: true}); err != nil {
		t.Errorf("Verify from the other replica: %v", err)
	}
}
