package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/store"
)

// auditLock is the first key of the advisory lock that serialises appends
// to one audit chain ("audt" in ASCII); the second is the hash of the
// chain's tenant id.
const auditLock = 0x61756474

const auditColumns = `tenant, seq, prev_hash, hash, id, time, actor_kind, actor_id, action, target,
	before, after, outcome, reason, vault_operation, vault_key_id, vault_purpose, vault_request_id, details`

// AppendAudit implements [audit.Store]. Appends to one chain, from any
// replica, take turns on a transaction-level advisory lock on the chain,
// taken before the head is read.
func (db *DB) AppendAudit(ctx context.Context, tenant string, seal func(head audit.Head) ([]audit.Event, error)) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(auditLock), tenant); err != nil {
			return wrapErr(err, "lock audit chain %q", tenant)
		}
		var head audit.Head
		var seq int64
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_events WHERE tenant = $1 ORDER BY seq DESC LIMIT 1`, tenant).
			Scan(&seq, &head.Hash)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return wrapErr(err, "read head of audit chain %q", tenant)
		}
		head.Seq = uint64(seq)
		events, err := seal(head)
		if err != nil {
			return err
		}
		if err := checkContinues(tenant, head, events); err != nil {
			return err
		}
		for i := range events {
			if err := insertAuditEvent(ctx, tx, &events[i]); err != nil {
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

func insertAuditEvent(ctx context.Context, tx pgx.Tx, e *audit.Event) error {
	if e.Time.Before(store.MinTime) || e.Time.After(store.MaxTime) {
		return &byok.InputError{Arg: "audit event time", Reason: fmt.Sprintf("is %s, outside the range a store keeps", e.Time.Format(time.RFC3339))}
	}
	var vop, vkey, vpurpose, vreq *string
	if v := e.Vault; v != nil {
		purpose := string(v.Purpose)
		vop, vkey, vpurpose, vreq = &v.Operation, &v.KeyID, &purpose, &v.RequestID
	}
	var details *string
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details) // sorted keys
		if err != nil {
			return fmt.Errorf("store/postgres: append audit event %s: %w", e.ID, err)
		}
		s := string(b)
		details = &s
	}
	_, err := tx.Exec(ctx, `INSERT INTO audit_events (`+auditColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		e.Tenant, int64(e.Seq), e.PrevHash, e.Hash, e.ID, e.Time.UnixNano(),
		string(e.Actor.Kind), e.Actor.ID, e.Action, e.Target, jsonText(e.Before), jsonText(e.After),
		string(e.Outcome), e.Reason, vop, vkey, vpurpose, vreq, details)
	if sqlState(err) == uniqueViolation {
		return fmt.Errorf("store/postgres: audit event id %q is already recorded; give every event a new id (audit.NewID): %w", e.ID, byok.ErrExists)
	}
	if err != nil {
		return wrapErr(err, "append audit event %s to chain %q", e.ID, e.Tenant)
	}
	return nil
}

// jsonText returns raw as a text value, nil (NULL) if empty.
func jsonText(raw json.RawMessage) *string {
	if len(raw) == 0 {
		return nil
	}
	s := string(raw)
	return &s
}

// AuditEvents implements [audit.Store].
func (db *DB) AuditEvents(ctx context.Context, q audit.Query) ([]audit.Event, error) {
	if err := store.CheckLimit(q.Limit); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.All {
		where = append(where, `(tenant, seq) > (`+arg(q.After.Tenant)+`, `+arg(int64(q.After.Seq))+`)`)
	} else {
		after := int64(0)
		if q.After.Tenant == q.Tenant {
			after = int64(q.After.Seq)
		} else if q.After.Tenant > q.Tenant {
			return []audit.Event{}, nil // past the chain
		}
		where = append(where, `tenant = `+arg(q.Tenant), `seq > `+arg(after))
	}
	if !q.Since.IsZero() {
		where = append(where, `time >= `+arg(clampNanos(q.Since)))
	}
	if !q.Until.IsZero() {
		where = append(where, `time < `+arg(clampNanos(q.Until)))
	}
	if q.ActionPrefix != "" {
		where = append(where, `starts_with(action, `+arg(q.ActionPrefix)+`)`)
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_events
		WHERE `+strings.Join(where, ` AND `)+` ORDER BY tenant, seq LIMIT `+arg(q.Limit), args...)
	es, err := collect(rows, scanAuditEvent)
	if err != nil {
		return nil, wrapErr(err, "list audit events")
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
	rows, _ := db.pool.Query(ctx, `WITH RECURSIVE chain (t) AS (
			SELECT min(tenant) FROM audit_events
			UNION ALL
			SELECT (SELECT min(tenant) FROM audit_events WHERE tenant > chain.t) FROM chain WHERE chain.t IS NOT NULL
		) SELECT t FROM chain WHERE t IS NOT NULL`)
	cs, err := collect(rows, func(r pgx.Row) (string, error) {
		var t string
		err := r.Scan(&t)
		return t, err
	})
	if err != nil {
		return nil, wrapErr(err, "list audit chains")
	}
	return cs, nil
}

func scanAuditEvent(r pgx.Row) (audit.Event, error) {
	var e audit.Event
	var seq, nanos int64
	var kind, outcome string
	var before, after, vop, vkey, vpurpose, vreq, details *string
	err := r.Scan(&e.Tenant, &seq, &e.PrevHash, &e.Hash, &e.ID, &nanos, &kind, &e.Actor.ID, &e.Action, &e.Target,
		&before, &after, &outcome, &e.Reason, &vop, &vkey, &vpurpose, &vreq, &details)
	if err != nil {
		return e, err
	}
	e.Seq = uint64(seq)
	e.Time = time.Unix(0, nanos).UTC()
	e.Actor.Kind = audit.ActorKind(kind)
	e.Outcome = audit.Outcome(outcome)
	if before != nil {
		e.Before = json.RawMessage(*before)
	}
	if after != nil {
		e.After = json.RawMessage(*after)
	}
	if vop != nil || vkey != nil || vpurpose != nil || vreq != nil {
		e.Vault = &audit.VaultCall{Operation: deref(vop), KeyID: deref(vkey), Purpose: audit.Purpose(deref(vpurpose)), RequestID: deref(vreq)}
	}
	if details != nil {
		if err := json.Unmarshal([]byte(*details), &e.Details); err != nil {
			return e, fmt.Errorf("details of audit event %d of chain %q are not a JSON object of strings: %w", e.Seq, e.Tenant, err)
		}
	}
	return e, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
