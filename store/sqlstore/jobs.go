package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle/record"
	"github.com/openbyok/byok/store"
)

const jobColumns = `id, tenant, state, data, owner, lease_until`

func checkJob(j record.JobRecord) error {
	if j.ID == "" {
		return &byok.InputError{Arg: "job id", Reason: "is empty"}
	}
	if j.Tenant == "" {
		return &byok.InputError{Arg: "tenant id", Reason: "is empty"}
	}
	switch j.State {
	case record.JobPending, record.JobRunning, record.JobDone, record.JobFailed:
	default:
		return &byok.InputError{Arg: "job state", Reason: fmt.Sprintf("is %q; it must be pending, running, done or failed", j.State)}
	}
	return nil
}

// PutJob implements [record.Store].
func (db *DB) PutJob(ctx context.Context, j record.JobRecord) error {
	if err := checkJob(j); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error { return db.putJob(ctx, tx, j) })
}

// putJob inserts j, or updates it if the stored job's owner is j.Owner
// or "" (the lease fence); a fenced update is store.ErrConflict.
func (db *DB) putJob(ctx context.Context, tx *sql.Tx, j record.JobRecord) error {
	data, err := encodeJob(j)
	if err != nil {
		return db.errorf("%w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO lifecycle_jobs (id, tenant, state, data, owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, data = excluded.data, owner = excluded.owner, lease_until = excluded.lease_until
		WHERE lifecycle_jobs.tenant = excluded.tenant AND lifecycle_jobs.owner IN ('', excluded.owner)`,
		j.ID, j.Tenant, string(j.State), data, j.Owner, nanos(j.LeaseUntil))
	if db.class(err) == MissingParent {
		return db.errorf("put job %s: tenant %q does not exist: %w", j.ID, j.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return db.wrap(err, "put job %s", j.ID)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	var tenant, owner string
	if err := tx.QueryRowContext(ctx, `SELECT tenant, owner FROM lifecycle_jobs WHERE id = $1`, j.ID).Scan(&tenant, &owner); err != nil {
		return db.wrap(err, "put job %s", j.ID)
	}
	if tenant != j.Tenant {
		return db.errorf("put job %s: it is a job of tenant %q, not %q: %w", j.ID, tenant, j.Tenant, store.ErrConflict)
	}
	return db.errorf("put job %s as %q: its lease is held by %q; claim the job again before writing it: %w",
		j.ID, j.Owner, owner, store.ErrConflict)
}

// StartJob implements [record.Store].
func (db *DB) StartJob(ctx context.Context, r record.Record, j record.JobRecord) error {
	if err := checkKeyRecord(r); err != nil {
		return err
	}
	if err := checkJob(j); err != nil {
		return err
	}
	if j.Tenant != r.Tenant {
		return &byok.InputError{Arg: "job", Reason: fmt.Sprintf("is a job of tenant %q, started with the record of tenant %q", j.Tenant, r.Tenant)}
	}
	data, err := encodeJob(j)
	if err != nil {
		return db.errorf("%w", err)
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := db.putKeyRecord(ctx, tx, r); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO lifecycle_jobs (id, tenant, state, data, owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6)`,
			j.ID, j.Tenant, string(j.State), data, j.Owner, nanos(j.LeaseUntil))
		if db.class(err) == Duplicate {
			return db.errorf("start job %s: a job with that id exists; use a new id: %w", j.ID, byok.ErrExists)
		}
		if err != nil {
			return db.wrap(err, "start job %s", j.ID)
		}
		return nil
	})
}

// ClaimJob implements [record.Store]. The claim is one conditional
// UPDATE: of replicas claiming a job at once, exactly one gets through.
// A job that was not claimed is read after the attempt.
func (db *DB) ClaimJob(ctx context.Context, id, owner string, now, until time.Time) (record.JobRecord, bool, error) {
	if owner == "" {
		return record.JobRecord{}, false, &byok.InputError{Arg: "lease owner", Reason: "is empty; pass the replica id"}
	}
	for _, t := range []time.Time{now, until} {
		if t.Before(store.MinTime) || t.After(store.MaxTime) {
			return record.JobRecord{}, false, &byok.InputError{Arg: "lease time", Reason: "is out of the storable range"}
		}
	}
	j, err := scanJob(db.w.QueryRowContext(ctx, `UPDATE lifecycle_jobs SET owner = $1, lease_until = $2
		WHERE id = $3 AND state IN ('pending', 'running') AND (owner IN ('', $1) OR coalesce(lease_until, 0) <= $4)
		RETURNING `+jobColumns, owner, nanos(until), id, nanos(now)))
	if err == nil {
		return j, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return j, false, db.wrap(err, "claim job %q", id)
	}
	j, err = scanJob(db.r.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM lifecycle_jobs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, false, db.errorf("claim job %q: it does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return j, false, db.wrap(err, "claim job %q", id)
	}
	return j, false, nil
}

// JobRecord implements [record.Store].
func (db *DB) JobRecord(ctx context.Context, id string) (record.JobRecord, error) {
	j, err := scanJob(db.r.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM lifecycle_jobs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, db.errorf("job %q does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return j, db.wrap(err, "read job %q", id)
	}
	return j, nil
}

// ListJobs implements [record.Store].
func (db *DB) ListJobs(ctx context.Context, tenant string, unfinished bool, limit int) ([]record.JobRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT ` + jobColumns + ` FROM lifecycle_jobs WHERE ($1 = '' OR tenant = $1)`
	if unfinished {
		q += ` AND state IN ('pending', 'running')`
	}
	q += ` ORDER BY seq DESC LIMIT $2`
	return query(ctx, db, scanJob, "list jobs", q, tenant, limit)
}

func scanJob(s scanner) (record.JobRecord, error) {
	var j record.JobRecord
	var state, data string
	var lease sql.NullInt64
	if err := s.Scan(&j.ID, &j.Tenant, &state, &data, &j.Owner, &lease); err != nil {
		return j, err
	}
	j.State = record.JobState(state)
	j.LeaseUntil = fromNanos(lease)
	if err := decodeJob(data, &j); err != nil {
		return j, fmt.Errorf("stored job %s is not valid JSON: the database is corrupt: %w", j.ID, err)
	}
	return j, nil
}

// RewrapBatch implements [record.Store]. The job is written first: on
// PostgreSQL its row lock keeps a concurrent claim waiting until the batch
// commits, and a fenced batch stops before any DEK. The batch need not be
// durable when it returns (see [Dialect.Unchecked]): it carries the job's
// cursor, and the job's end is written durably.
func (db *DB) RewrapBatch(ctx context.Context, s *byok.ScopeRecord, recs []byok.DEKRecord, j record.JobRecord) error {
	if err := checkMove(s, recs); err != nil {
		return err
	}
	if err := checkJob(j); err != nil {
		return err
	}
	return db.bulkWrite(ctx, false, func(tx *sql.Tx) error {
		if err := db.requireTenant(ctx, tx, j.Tenant, "put job "+j.ID); err != nil {
			return err
		}
		if err := db.putJob(ctx, tx, j); err != nil {
			return err
		}
		if s != nil {
			if err := db.requireTenant(ctx, tx, s.Tenant, fmt.Sprintf("put scope %q", s.Scope)); err != nil {
				return err
			}
			if err := db.upsertScope(ctx, tx, *s); err != nil {
				return err
			}
		}
		return db.rewrap(ctx, tx, recs)
	})
}
