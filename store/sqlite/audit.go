package sqlite

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

var _ audit.Store = (*DB)(nil)

const auditColumns = `tenant, seq, prev_hash, hash, id, time, actor_kind, actor_id, action, target,
	before, after, outcome, reason, vault_operation, vault_key_id, vault_purpose, vault_request_id, details`

// AppendAudit implements [audit.Store]. The head is read and the events
// inserted in one write transaction, which this process's single writer
// connection and SQLite's lock serialise against every other append.
func (db *DB) AppendAudit(ctx context.Context, tenant string, seal func(head audit.Head) ([]audit.Event, error)) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		var head audit.Head
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_events WHERE tenant = ? ORDER BY seq DESC LIMIT 1`, tenant).
			Scan(&head.Seq, &head.Hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store/sqlite: read head of audit chain %q: %w", tenant, err)
		}
		events, err := seal(head)
		if err != nil {
			return err
		}
		if err := checkContinues(tenant, head, events); err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_events (`+auditColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("store/sqlite: append to audit chain %q: %w", tenant, err)
		}
		defer stmt.Close()
		for i := range events {
			if err := insertAuditEvent(ctx, stmt, &events[i]); err != nil {
				return err
			}
		}
		return nil
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

func insertAuditEvent(ctx context.Context, stmt *sql.Stmt, e *audit.Event) error {
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
			return fmt.Errorf("store/sqlite: append audit event %s: %w", e.ID, err)
		}
		details = sql.NullString{String: string(b), Valid: true}
	}
	_, err := stmt.ExecContext(ctx, e.Tenant, int64(e.Seq), e.PrevHash, e.Hash, e.ID, e.Time.UnixNano(),
		string(e.Actor.Kind), e.Actor.ID, e.Action, e.Target, jsonText(e.Before), jsonText(e.After),
		string(e.Outcome), e.Reason, vop, vkey, vpurpose, vreq, details)
	if isDuplicate(err) {
		return fmt.Errorf("store/sqlite: audit event id %q is already recorded; give every event a new id (audit.NewID): %w", e.ID, byok.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: append audit event %s to chain %q: %w", e.ID, e.Tenant, err)
	}
	return nil
}

// jsonText returns raw as a TEXT value, NULL if empty.
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
	var args []any
	if q.All {
		where = append(where, `(tenant, seq) > (?, ?)`)
		args = append(args, q.After.Tenant, int64(q.After.Seq))
	} else {
		where = append(where, `tenant = ?`, `seq > ?`)
		after := int64(0)
		if q.After.Tenant == q.Tenant {
			after = int64(q.After.Seq)
		} else if q.After.Tenant > q.Tenant {
			return []audit.Event{}, nil // past the chain
		}
		args = append(args, q.Tenant, after)
	}
	if !q.Since.IsZero() {
		where = append(where, `time >= ?`)
		args = append(args, clampNanos(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, `time < ?`)
		args = append(args, clampNanos(q.Until))
	}
	if q.ActionPrefix != "" {
		where = append(where, `instr(action, ?) = 1`)
		args = append(args, q.ActionPrefix)
	}
	args = append(args, q.Limit)
	rows, err := db.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events
		WHERE `+strings.Join(where, ` AND `)+` ORDER BY tenant, seq LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list audit events: %w", err)
	}
	es, err := collect(rows, scanAuditEvent)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list audit events: %w", err)
	}
	return es, nil
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
	rows, err := db.r.QueryContext(ctx, `WITH RECURSIVE chain(t) AS (
			SELECT min(tenant) FROM audit_events
			UNION ALL
			SELECT (SELECT min(tenant) FROM audit_events WHERE tenant > chain.t) FROM chain WHERE chain.t IS NOT NULL
		) SELECT t FROM chain WHERE t IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list audit chains: %w", err)
	}
	cs, err := collect(rows, func(s scanner) (string, error) {
		var t string
		err := s.Scan(&t)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list audit chains: %w", err)
	}
	return cs, nil
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
