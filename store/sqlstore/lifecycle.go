package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle/record"
	"github.com/openbyok/byok/store"
)

// KeyRecord implements [record.Store].
func (db *DB) KeyRecord(ctx context.Context, tenant string) (record.Record, error) {
	r, err := scanKeyRecord(db.r.QueryRowContext(ctx, `SELECT tenant, version, state, enforce_at, data
		FROM lifecycle_keys WHERE tenant = $1`, tenant))
	if errors.Is(err, sql.ErrNoRows) {
		return r, db.errorf("tenant %q has no customer key record: %w", tenant, byok.ErrNotFound)
	}
	if err != nil {
		return r, db.wrap(err, "read customer key record of tenant %q", tenant)
	}
	return r, nil
}

// PutKeyRecord implements [record.Store].
func (db *DB) PutKeyRecord(ctx context.Context, r record.Record) error {
	if err := checkKeyRecord(r); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error { return db.putKeyRecord(ctx, tx, r) })
}

// CommitRotation implements [record.Store].
func (db *DB) CommitRotation(ctx context.Context, r record.Record, kind byok.KeyKind, epoch uint32, oldKeyID string, share kms.Wrapped) error {
	if err := checkKeyRecord(r); err != nil {
		return err
	}
	if err := store.CheckKeyRef(r.Tenant, kind, epoch); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := db.swapShare(ctx, tx, "rotate", "customer", r.Tenant, kind, epoch, oldKeyID, share); err != nil {
			return err
		}
		return db.putKeyRecord(ctx, tx, r)
	})
}

func checkKeyRecord(r record.Record) error {
	if r.Tenant == "" {
		return &byok.InputError{Arg: "tenant id", Reason: "is empty"}
	}
	if r.Version == 0 {
		return &byok.InputError{Arg: "record version", Reason: "is 0; versions start at 1"}
	}
	switch r.State {
	case record.StateDraft, record.StateScheduled, record.StateActive, record.StateRotating,
		record.StateRevoked, record.StateDisabled:
	default:
		return &byok.InputError{Arg: "state", Reason: fmt.Sprintf("is %q; a stored record is draft, scheduled, active, rotating, revoked or disabled", r.State)}
	}
	for _, t := range []time.Time{r.EnforceAt, r.ActivatedAt, r.Updated} {
		if !t.IsZero() && (t.Before(store.MinTime) || t.After(store.MaxTime)) {
			return &byok.InputError{Arg: "time", Reason: "is out of the storable range"}
		}
	}
	return nil
}

// putKeyRecord writes r in tx if the stored version is r.Version-1.
func (db *DB) putKeyRecord(ctx context.Context, tx *sql.Tx, r record.Record) error {
	data, err := encodeRecord(r)
	if err != nil {
		return db.errorf("%w", err)
	}
	var res sql.Result
	if r.Version == 1 {
		res, err = tx.ExecContext(ctx, `INSERT INTO lifecycle_keys (tenant, version, state, enforce_at, data)
			VALUES ($1, 1, $2, $3, $4) ON CONFLICT (tenant) DO NOTHING`,
			r.Tenant, string(r.State), nanos(r.EnforceAt), data)
	} else {
		res, err = tx.ExecContext(ctx, `UPDATE lifecycle_keys SET version = $1, state = $2, enforce_at = $3, data = $4
			WHERE tenant = $5 AND version = $6`,
			int64(r.Version), string(r.State), nanos(r.EnforceAt), data, r.Tenant, int64(r.Version-1))
	}
	if db.class(err) == MissingParent {
		return db.errorf("put customer key record: tenant %q does not exist: %w", r.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return db.wrap(err, "put customer key record of tenant %q", r.Tenant)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	var stored int64
	err = tx.QueryRowContext(ctx, `SELECT version FROM lifecycle_keys WHERE tenant = $1`, r.Tenant).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return db.errorf("put customer key record of tenant %q version %d: no record is stored; write version 1 first: %w",
			r.Tenant, r.Version, store.ErrConflict)
	}
	if err != nil {
		return db.wrap(err, "put customer key record of tenant %q", r.Tenant)
	}
	return db.errorf("put customer key record of tenant %q version %d: stored version is %d; re-read and retry: %w",
		r.Tenant, r.Version, stored, store.ErrConflict)
}

// ListKeyRecords implements [record.Store].
func (db *DB) ListKeyRecords(ctx context.Context, after string, limit int, states ...record.State) ([]record.Record, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	var p params
	q := `SELECT tenant, version, state, enforce_at, data FROM lifecycle_keys WHERE tenant > ` + p.add(after)
	if len(states) > 0 {
		q += ` AND state IN (`
		for i, s := range states {
			if i > 0 {
				q += `, `
			}
			q += p.add(string(s))
		}
		q += `)`
	}
	q += ` ORDER BY tenant LIMIT ` + p.add(limit)
	return query(ctx, db, scanKeyRecord, "list customer key records", q, p...)
}

func scanKeyRecord(s scanner) (record.Record, error) {
	var r record.Record
	var state, data string
	var enforce sql.NullInt64
	if err := s.Scan(&r.Tenant, &r.Version, &state, &enforce, &data); err != nil {
		return r, err
	}
	if err := decodeRecord(data, &r); err != nil {
		return r, fmt.Errorf("stored customer key record of tenant %q is not valid JSON: the database is corrupt: %w", r.Tenant, err)
	}
	r.State = record.State(state)
	r.EnforceAt = fromNanos(enforce)
	return r, nil
}

// AddHealthEvent implements [record.Store].
func (db *DB) AddHealthEvent(ctx context.Context, e record.HealthEvent) error {
	if e.Tenant == "" {
		return &byok.InputError{Arg: "tenant id", Reason: "is empty"}
	}
	if e.Kind == "" {
		return &byok.InputError{Arg: "health event kind", Reason: "is empty"}
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO lifecycle_health (tenant, kind, reason, detected_at, enforced_at, replica)
		VALUES ($1, $2, $3, $4, $5, $6)`, e.Tenant, string(e.Kind), string(e.Reason), nanos(e.DetectedAt), nanos(e.EnforcedAt), e.Replica)
	if db.class(err) == MissingParent {
		return db.errorf("add health event: tenant %q does not exist: %w", e.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return db.wrap(err, "add health event of tenant %q", e.Tenant)
	}
	return nil
}

// HealthEvents implements [record.Store].
func (db *DB) HealthEvents(ctx context.Context, tenant string, limit int) ([]record.HealthEvent, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	return query(ctx, db, scanHealthEvent, fmt.Sprintf("list health events of tenant %q", tenant),
		`SELECT tenant, kind, reason, detected_at, enforced_at, replica
		FROM lifecycle_health WHERE tenant = $1 ORDER BY seq DESC LIMIT $2`, tenant, limit)
}

func scanHealthEvent(s scanner) (record.HealthEvent, error) {
	var e record.HealthEvent
	var kind, reason string
	var det, enf sql.NullInt64
	err := s.Scan(&e.Tenant, &kind, &reason, &det, &enf, &e.Replica)
	e.Kind, e.Reason = record.HealthEventKind(kind), kms.Reason(reason)
	e.DetectedAt, e.EnforcedAt = fromNanos(det), fromNanos(enf)
	return e, err
}
