package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/store"
)

const auditColumns = `tenant, seq, prev_hash, hash, id, time, actor_kind, actor_id, action, target,
	before, after, outcome, reason, vault_operation, vault_key_id, vault_purpose, vault_request_id, details`

// AppendAudit implements [audit.Store]. The head is read and the events
// inserted in one write transaction. Appends to one chain take turns: on
// the dialect's LockAuditChain, taken before the head is read, or on the
// engine's single writer.
func (db *DB) AppendAudit(ctx context.Context, tenant string, seal func(head audit.Head) ([]audit.Event, error)) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if db.d.LockAuditChain != "" {
			if _, err := tx.ExecContext(ctx, db.d.LockAuditChain, tenant); err != nil {
				return db.wrap(err, "lock audit chain %q", tenant)
			}
		}
		var head audit.Head
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_events WHERE tenant = $1 ORDER BY seq DESC LIMIT 1`, tenant).
			Scan(&head.Seq, &head.Hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return db.wrap(err, "read head of audit chain %q", tenant)
		}
		events, err := seal(head)
		if err != nil {
			return err
		}
		if err := checkContinues(tenant, head, events); err != nil {
			return err
		}
		return db.insertAuditEvents(ctx, tx, tenant, events)
	})
}

// checkContinues checks that events continue the chain of tenant from
// head: the right tenant, consecutive sequence numbers, each linked to the
// hash before it. It guards the chain against a faulty seal.
func checkContinues(tenant string, head audit.Head, events []audit.Event) error {
	prev := head
	if prev.Seq == 0 {
		prev.Hash = audit.GenesisHash
	}
	for _, e := range events {
		if e.Tenant != tenant || e.Seq != prev.Seq+1 || e.PrevHash != prev.Hash {
			return &byok.InputError{Arg: "audit event", Reason: fmt.Sprintf(
				"(chain %q, seq %d, prev hash %s) does not continue chain %q after seq %d, hash %s",
				e.Tenant, e.Seq, e.PrevHash, tenant, prev.Seq, prev.Hash)}
		}
		prev = audit.Head{Seq: e.Seq, Hash: e.Hash}
	}
	return nil
}

// insertAuditEvents inserts events in tx, through one prepared statement
// if there are several.
func (db *DB) insertAuditEvents(ctx context.Context, tx *sql.Tx, tenant string, events []audit.Event) error {
	const insert = `INSERT INTO audit_events (` + auditColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`
	var e execer = tx
	if len(events) > 1 {
		stmt, err := tx.PrepareContext(ctx, insert)
		if err != nil {
			return db.wrap(err, "append to audit chain %q", tenant)
		}
		defer stmt.Close()
		e = stmtExecer{stmt}
	}
	for i := range events {
		if err := db.insertAuditEvent(ctx, e, insert, &events[i]); err != nil {
			return err
		}
	}
	return nil
}

// stmtExecer is an execer that runs its prepared statement, whatever the
// query.
type stmtExecer struct{ *sql.Stmt }

func (s stmtExecer) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return s.Stmt.ExecContext(ctx, args...)
}

func (db *DB) insertAuditEvent(ctx context.Context, x execer, insert string, e *audit.Event) error {
	if e.Time.Before(store.MinTime) || e.Time.After(store.MaxTime) {
		return &byok.InputError{Arg: "audit event time", Reason: fmt.Sprintf("is %s, outside the range a store keeps", e.Time.Format(time.RFC3339))}
	}
	var vop, vkey, vpurpose, vreq sql.NullString
	if v := e.Vault; v != nil {
		vop = sql.NullString{String: v.Operation, Valid: true}
		vkey = sql.NullString{String: v.KeyID, Valid: true}
		vpurpose = sql.NullString{String: string(v.Purpose), Valid: true}
		vreq = sql.NullString{String: v.RequestID, Valid: true}
	}
	var details sql.NullString
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details) // sorted keys
		if err != nil {
			return db.errorf("append audit event %s: %w", e.ID, err)
		}
		details = sql.NullString{String: string(b), Valid: true}
	}
	_, err := x.ExecContext(ctx, insert, e.Tenant, int64(e.Seq), e.PrevHash, e.Hash, e.ID, e.Time.UnixNano(),
		string(e.Actor.Kind), e.Actor.ID, e.Action, e.Target, jsonText(e.Before), jsonText(e.After),
		string(e.Outcome), e.Reason, vop, vkey, vpurpose, vreq, details)
	if db.class(err) == Duplicate {
		return db.errorf("audit event id %q is already recorded; give every event a new id (audit.NewID): %w", e.ID, byok.ErrExists)
	}
	if err != nil {
		return db.wrap(err, "append audit event %s to chain %q", e.ID, e.Tenant)
	}
	return nil
}

// jsonText returns raw as a text value, NULL if empty.
func jsonText(raw json.RawMessage) sql.NullString {
	if len(raw) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(raw), Valid: true}
}

// AuditEvents implements [audit.Store].
func (db *DB) AuditEvents(ctx context.Context, q audit.Query) ([]audit.Event, error) {
	if err := store.CheckLimit(q.Limit); err != nil {
		return nil, err
	}
	var where []string
	var p params
	if q.All {
		where = append(where, `(tenant, seq) > (`+p.add(q.After.Tenant)+`, `+p.add(int64(q.After.Seq))+`)`)
	} else {
		after := int64(0)
		if q.After.Tenant == q.Tenant {
			after = int64(q.After.Seq)
		} else if q.After.Tenant > q.Tenant {
			return []audit.Event{}, nil // past the chain
		}
		where = append(where, `tenant = `+p.add(q.Tenant), `seq > `+p.add(after))
	}
	if !q.Since.IsZero() {
		where = append(where, `time >= `+p.add(clampNanos(q.Since)))
	}
	if !q.Until.IsZero() {
		where = append(where, `time < `+p.add(clampNanos(q.Until)))
	}
	if q.ActionPrefix != "" {
		prefix := p.add(q.ActionPrefix)
		where = append(where, `substr(action, 1, length(CAST(`+prefix+` AS text))) = `+prefix)
	}
	return query(ctx, db, scanAuditEvent, "list audit events", `SELECT `+auditColumns+` FROM audit_events
		WHERE `+strings.Join(where, ` AND `)+` ORDER BY tenant, seq LIMIT `+p.add(q.Limit), p...)
}

// clampNanos returns t as Unix nanoseconds, clamped to the int64 range
// for a bound far in the past or future.
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(store.MinTime):
		return store.MinTime.UnixNano()
	case t.After(store.MaxTime):
		return store.MaxTime.UnixNano()
	}
	return t.UnixNano()
}

// AuditChains implements [audit.Store]. It skips from chain to chain
// through the primary key instead of reading every row.
func (db *DB) AuditChains(ctx context.Context) ([]string, error) {
	return query(ctx, db, scanString, "list audit chains", `WITH RECURSIVE chain (t) AS (
			SELECT min(tenant) FROM audit_events
			UNION ALL
			SELECT (SELECT min(tenant) FROM audit_events WHERE tenant > chain.t) FROM chain WHERE chain.t IS NOT NULL
		) SELECT t FROM chain WHERE t IS NOT NULL`)
}

func scanString(s scanner) (string, error) {
	var v string
	err := s.Scan(&v)
	return v, err
}

func scanAuditEvent(s scanner) (audit.Event, error) {
	var e audit.Event
	var seq, nanos int64
	var kind, outcome string
	var before, after, vop, vkey, vpurpose, vreq, details sql.NullString
	err := s.Scan(&e.Tenant, &seq, &e.PrevHash, &e.Hash, &e.ID, &nanos, &kind, &e.Actor.ID, &e.Action, &e.Target,
		&before, &after, &outcome, &e.Reason, &vop, &vkey, &vpurpose, &vreq, &details)
	if err != nil {
		return e, err
	}
	e.Seq = uint64(seq)
	e.Time = time.Unix(0, nanos).UTC()
	e.Actor.Kind = audit.ActorKind(kind)
	e.Outcome = audit.Outcome(outcome)
	if before.Valid {
		e.Before = json.RawMessage(before.String)
	}
	if after.Valid {
		e.After = json.RawMessage(after.String)
	}
	if vop.Valid || vkey.Valid || vpurpose.Valid || vreq.Valid {
		e.Vault = &audit.VaultCall{Operation: vop.String, KeyID: vkey.String, Purpose: audit.Purpose(vpurpose.String), RequestID: vreq.String}
	}
	if details.Valid {
		if err := json.Unmarshal([]byte(details.String), &e.Details); err != nil {
			return e, fmt.Errorf("details of audit event %d of chain %q are not a JSON object of strings: %w", e.Seq, e.Tenant, err)
		}
	}
	return e, nil
}
