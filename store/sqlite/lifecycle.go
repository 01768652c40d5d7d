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
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/store"
)

var _ lifecycle.Store = (*DB)(nil)

// recordData is the JSON document of the data column of lifecycle_keys:
// the fields of a lifecycle.Record that no query filters on. The settings'
// secret is never in it (a Record holds it only sealed).
type recordData struct {
	Provider     string                   `json:"provider"`
	KeyID        string                   `json:"key_id"`
	DirectoryID  string                   `json:"directory_id"`
	ClientID     string                   `json:"client_id"`
	Credential   lifecycle.CredentialMode `json:"credential"`
	SettingsHash string                   `json:"settings_hash"`
	SealedSecret kms.Wrapped              `json:"sealed_secret"`
	Coverage     lifecycle.Coverage       `json:"coverage"`
	ActivatedAt  int64                    `json:"activated_at,omitempty"`
	LastTest     *reportData              `json:"last_test,omitempty"`
	Versions     []string                 `json:"versions,omitempty"`
	Updated      int64                    `json:"updated,omitempty"`
}

type reportData struct {
	SettingsHash string            `json:"settings_hash"`
	KeyID        string            `json:"key_id"`
	Checks       []lifecycle.Check `json:"checks"`
	At           int64             `json:"at,omitempty"`
}

// KeyRecord implements [lifecycle.Store].
func (db *DB) KeyRecord(ctx context.Context, tenant string) (lifecycle.Record, error) {
	r, err := scanKeyRecord(db.r.QueryRowContext(ctx, `SELECT tenant, version, state, enforce_at, data
		FROM lifecycle_keys WHERE tenant = ?`, tenant))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("store/sqlite: tenant %q has no customer key record: %w", tenant, byok.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("store/sqlite: read customer key record of tenant %q: %w", tenant, err)
	}
	return r, nil
}

// PutKeyRecord implements [lifecycle.Store].
func (db *DB) PutKeyRecord(ctx context.Context, r lifecycle.Record) error {
	if err := checkKeyRecord(r); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error { return putKeyRecord(ctx, tx, r) })
}

// CommitRotation implements [lifecycle.Store].
func (db *DB) CommitRotation(ctx context.Context, r lifecycle.Record, kind byok.KeyKind, epoch uint32, oldKeyID string, share kms.Wrapped) error {
	if err := checkKeyRecord(r); err != nil {
		return err
	}
	if err := store.CheckKeyRef(r.Tenant, kind, epoch); err != nil {
		return err
	}
	name := keyName(r.Tenant, kind, epoch)
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tenant_keys SET customer_key_id = ?, customer_alg = ?, customer_ct = ?
			WHERE tenant = ? AND kind = ? AND epoch = ? AND customer_key_id = ?`,
			share.KeyID, share.Algorithm, share.Ciphertext, r.Tenant, int64(kind), int64(epoch), oldKeyID)
		if err != nil {
			return fmt.Errorf("store/sqlite: rotate customer share of %s: %w", name, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			var stored string
			err := tx.QueryRowContext(ctx, `SELECT customer_key_id FROM tenant_keys WHERE tenant = ? AND kind = ? AND epoch = ?`,
				r.Tenant, int64(kind), int64(epoch)).Scan(&stored)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("store/sqlite: rotate customer share: %s does not exist: %w", name, byok.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("store/sqlite: rotate customer share of %s: %w", name, err)
			}
			return fmt.Errorf("store/sqlite: rotate customer share of %s: it is wrapped under %q, not %q; re-read the key and retry: %w",
				name, stored, oldKeyID, store.ErrConflict)
		}
		return putKeyRecord(ctx, tx, r)
	})
}

func checkKeyRecord(r lifecycle.Record) error {
	if r.Tenant == "" {
		return &byok.InputError{Arg: "tenant id", Reason: "is empty"}
	}
	if r.Version == 0 {
		return &byok.InputError{Arg: "record version", Reason: "is 0; versions start at 1"}
	}
	switch r.State {
	case lifecycle.StateDraft, lifecycle.StateScheduled, lifecycle.StateActive, lifecycle.StateRotating,
		lifecycle.StateRevoked, lifecycle.StateDisabled:
	default:
		return &byok.InputError{Arg: "state", Reason: fmt.Sprintf("is %q; a stored record is draft, scheduled, active, rotating, revoked or disabled", r.State)}
	}
	if r.Settings.Secret.IsSet() {
		return &byok.InputError{Arg: "settings", Reason: "hold a plain secret; seal it into SealedSecret first"}
	}
	for _, t := range []time.Time{r.EnforceAt, r.ActivatedAt, r.Updated} {
		if !t.IsZero() && (t.Before(store.MinTime) || t.After(store.MaxTime)) {
			return &byok.InputError{Arg: "time", Reason: "is out of the storable range"}
		}
	}
	return nil
}

// putKeyRecord writes r in tx if the stored version is r.Version-1.
func putKeyRecord(ctx context.Context, tx *sql.Tx, r lifecycle.Record) error {
	data, err := json.Marshal(toRecordData(r))
	if err != nil {
		return fmt.Errorf("store/sqlite: encode customer key record of tenant %q: %w", r.Tenant, err)
	}
	var res sql.Result
	if r.Version == 1 {
		res, err = tx.ExecContext(ctx, `INSERT INTO lifecycle_keys (tenant, version, state, enforce_at, data)
			VALUES (?, 1, ?, ?, ?) ON CONFLICT (tenant) DO NOTHING`,
			r.Tenant, string(r.State), nanos(r.EnforceAt), string(data))
	} else {
		res, err = tx.ExecContext(ctx, `UPDATE lifecycle_keys SET version = ?, state = ?, enforce_at = ?, data = ?
			WHERE tenant = ? AND version = ?`,
			int64(r.Version), string(r.State), nanos(r.EnforceAt), string(data), r.Tenant, int64(r.Version-1))
	}
	if isMissingParent(err) {
		return fmt.Errorf("store/sqlite: put customer key record: tenant %q does not exist: %w", r.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: put customer key record of tenant %q: %w", r.Tenant, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	var stored int64
	err = tx.QueryRowContext(ctx, `SELECT version FROM lifecycle_keys WHERE tenant = ?`, r.Tenant).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store/sqlite: put customer key record of tenant %q version %d: no record is stored; write version 1 first: %w",
			r.Tenant, r.Version, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: put customer key record of tenant %q: %w", r.Tenant, err)
	}
	return fmt.Errorf("store/sqlite: put customer key record of tenant %q version %d: stored version is %d; re-read and retry: %w",
		r.Tenant, r.Version, stored, store.ErrConflict)
}

// ListKeyRecords implements [lifecycle.Store].
func (db *DB) ListKeyRecords(ctx context.Context, after string, limit int, states ...lifecycle.State) ([]lifecycle.Record, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT tenant, version, state, enforce_at, data FROM lifecycle_keys WHERE tenant > ?`
	args := []any{after}
	if len(states) > 0 {
		q += ` AND state IN (?` + strings.Repeat(`, ?`, len(states)-1) + `)`
		for _, s := range states {
			args = append(args, string(s))
		}
	}
	q += ` ORDER BY tenant LIMIT ?`
	args = append(args, limit)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list customer key records: %w", err)
	}
	rs, err := collect(rows, scanKeyRecord)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list customer key records: %w", err)
	}
	return rs, nil
}

func toRecordData(r lifecycle.Record) recordData {
	d := recordData{
		Provider: r.Settings.Provider, KeyID: r.Settings.KeyID, DirectoryID: r.Settings.DirectoryID,
		ClientID: r.Settings.ClientID, Credential: r.Settings.Credential,
		SettingsHash: r.SettingsHash, SealedSecret: r.SealedSecret, Coverage: r.Coverage, Versions: r.Versions,
		ActivatedAt: nanos(r.ActivatedAt).Int64, Updated: nanos(r.Updated).Int64,
	}
	if r.LastTest != nil {
		d.LastTest = &reportData{SettingsHash: r.LastTest.SettingsHash, KeyID: r.LastTest.KeyID,
			Checks: r.LastTest.Checks, At: nanos(r.LastTest.At).Int64}
	}
	return d
}

func scanKeyRecord(s scanner) (lifecycle.Record, error) {
	var r lifecycle.Record
	var state, data string
	var enforce sql.NullInt64
	if err := s.Scan(&r.Tenant, &r.Version, &state, &enforce, &data); err != nil {
		return r, err
	}
	var d recordData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return r, fmt.Errorf("stored customer key record of tenant %q is not valid JSON: the database is corrupt: %w", r.Tenant, err)
	}
	r.State = lifecycle.State(state)
	r.EnforceAt = fromNanos(enforce)
	r.Settings = lifecycle.KeySettings{Provider: d.Provider, KeyID: d.KeyID, DirectoryID: d.DirectoryID,
		ClientID: d.ClientID, Credential: d.Credential}
	r.SettingsHash, r.SealedSecret, r.Coverage, r.Versions = d.SettingsHash, d.SealedSecret, d.Coverage, d.Versions
	r.ActivatedAt, r.Updated = fromUnix(d.ActivatedAt), fromUnix(d.Updated)
	if d.LastTest != nil {
		r.LastTest = &lifecycle.Report{SettingsHash: d.LastTest.SettingsHash, KeyID: d.LastTest.KeyID,
			Checks: d.LastTest.Checks, At: fromUnix(d.LastTest.At)}
	}
	return r, nil
}

// fromUnix is fromNanos for a JSON number, where 0 is the zero time.
func fromUnix(n int64) time.Time {
	return fromNanos(sql.NullInt64{Int64: n, Valid: n != 0})
}

// jobData is the JSON document of the data column of lifecycle_jobs.
type jobData struct {
	Kind     lifecycle.JobKind `json:"kind"`
	Done     int64             `json:"done"`
	Total    int64             `json:"total"`
	Attempts int               `json:"attempts"`
	Error    string            `json:"error,omitempty"`
	Actor    audit.Actor       `json:"actor"`
	Created  int64             `json:"created,omitempty"`
	Updated  int64             `json:"updated,omitempty"`
	Epoch    uint32            `json:"epoch,omitempty"`
	Scope    string            `json:"scope,omitempty"`
	Cursor   byok.DEKID        `json:"cursor"`
	Walk     uint32            `json:"walk,omitempty"`
}

func checkJob(j lifecycle.JobRecord) error {
	if j.ID == "" {
		return &byok.InputError{Arg: "job id", Reason: "is empty"}
	}
	if j.Tenant == "" {
		return &byok.InputError{Arg: "tenant id", Reason: "is empty"}
	}
	switch j.State {
	case lifecycle.JobPending, lifecycle.JobRunning, lifecycle.JobDone, lifecycle.JobFailed:
	default:
		return &byok.InputError{Arg: "job state", Reason: fmt.Sprintf("is %q; it must be pending, running, done or failed", j.State)}
	}
	return nil
}

// PutJob implements [lifecycle.Store].
func (db *DB) PutJob(ctx context.Context, j lifecycle.JobRecord) error {
	if err := checkJob(j); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error { return putJob(ctx, tx, j) })
}

// putJob inserts j, or updates it if the stored job's owner is j.Owner
// or "" (the lease fence); a fenced update is store.ErrConflict.
func putJob(ctx context.Context, tx *sql.Tx, j lifecycle.JobRecord) error {
	data, err := encodeJob(j)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO lifecycle_jobs (id, tenant, state, data, owner, lease_until) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, data = excluded.data, owner = excluded.owner, lease_until = excluded.lease_until
		WHERE tenant = excluded.tenant AND owner IN ('', excluded.owner)`,
		j.ID, j.Tenant, string(j.State), data, j.Owner, nanos(j.LeaseUntil))
	if isMissingParent(err) {
		return fmt.Errorf("store/sqlite: put job %s: tenant %q does not exist: %w", j.ID, j.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: put job %s: %w", j.ID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	var tenant, owner string
	if err := tx.QueryRowContext(ctx, `SELECT tenant, owner FROM lifecycle_jobs WHERE id = ?`, j.ID).Scan(&tenant, &owner); err != nil {
		return fmt.Errorf("store/sqlite: put job %s: %w", j.ID, err)
	}
	if tenant != j.Tenant {
		return fmt.Errorf("store/sqlite: put job %s: it is a job of tenant %q, not %q: %w", j.ID, tenant, j.Tenant, store.ErrConflict)
	}
	return fmt.Errorf("store/sqlite: put job %s as %q: its lease is held by %q; claim the job again before writing it: %w",
		j.ID, j.Owner, owner, store.ErrConflict)
}

// encodeJob returns the data column of j.
func encodeJob(j lifecycle.JobRecord) (string, error) {
	data, err := json.Marshal(jobData{Kind: j.Kind, Done: j.Done, Total: j.Total, Attempts: j.Attempts, Error: j.Error,
		Actor: j.Actor, Created: nanos(j.Created).Int64, Updated: nanos(j.Updated).Int64,
		Epoch: j.Epoch, Scope: j.Scope, Cursor: j.Cursor, Walk: j.Walk})
	if err != nil {
		return "", fmt.Errorf("store/sqlite: encode job %s: %w", j.ID, err)
	}
	return string(data), nil
}

// StartJob implements [lifecycle.Store].
func (db *DB) StartJob(ctx context.Context, r lifecycle.Record, j lifecycle.JobRecord) error {
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
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := putKeyRecord(ctx, tx, r); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO lifecycle_jobs (id, tenant, state, data, owner, lease_until) VALUES (?, ?, ?, ?, ?, ?)`,
			j.ID, j.Tenant, string(j.State), data, j.Owner, nanos(j.LeaseUntil))
		if isDuplicate(err) {
			return fmt.Errorf("store/sqlite: start job %s: a job with that id exists; use a new id: %w", j.ID, byok.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("store/sqlite: start job %s: %w", j.ID, err)
		}
		return nil
	})
}

// ClaimJob implements [lifecycle.Store].
func (db *DB) ClaimJob(ctx context.Context, id, owner string, now, until time.Time) (lifecycle.JobRecord, bool, error) {
	if owner == "" {
		return lifecycle.JobRecord{}, false, &byok.InputError{Arg: "lease owner", Reason: "is empty; pass the replica id"}
	}
	for _, t := range []time.Time{now, until} {
		if t.Before(store.MinTime) || t.After(store.MaxTime) {
			return lifecycle.JobRecord{}, false, &byok.InputError{Arg: "lease time", Reason: "is out of the storable range"}
		}
	}
	var j lifecycle.JobRecord
	var claimed bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE lifecycle_jobs SET owner = ?1, lease_until = ?2
			WHERE id = ?3 AND state IN ('pending', 'running') AND (owner IN ('', ?1) OR coalesce(lease_until, 0) <= ?4)`,
			owner, nanos(until), id, nanos(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		claimed = n == 1
		j, err = scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM lifecycle_jobs WHERE id = ?`, id))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return j, false, fmt.Errorf("store/sqlite: claim job %q: it does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return j, false, fmt.Errorf("store/sqlite: claim job %q: %w", id, err)
	}
	return j, claimed, nil
}

const jobColumns = `id, tenant, state, data, owner, lease_until`

// JobRecord implements [lifecycle.Store].
func (db *DB) JobRecord(ctx context.Context, id string) (lifecycle.JobRecord, error) {
	j, err := scanJob(db.r.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM lifecycle_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("store/sqlite: job %q does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return j, fmt.Errorf("store/sqlite: read job %q: %w", id, err)
	}
	return j, nil
}

// ListJobs implements [lifecycle.Store].
func (db *DB) ListJobs(ctx context.Context, tenant string, unfinished bool, limit int) ([]lifecycle.JobRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT ` + jobColumns + ` FROM lifecycle_jobs WHERE (?1 = '' OR tenant = ?1)`
	if unfinished {
		q += ` AND state IN ('pending', 'running')`
	}
	q += ` ORDER BY seq DESC LIMIT ?2`
	rows, err := db.r.QueryContext(ctx, q, tenant, limit)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list jobs: %w", err)
	}
	js, err := collect(rows, scanJob)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list jobs: %w", err)
	}
	return js, nil
}

func scanJob(s scanner) (lifecycle.JobRecord, error) {
	var j lifecycle.JobRecord
	var state, data string
	var lease sql.NullInt64
	if err := s.Scan(&j.ID, &j.Tenant, &state, &data, &j.Owner, &lease); err != nil {
		return j, err
	}
	j.LeaseUntil = fromNanos(lease)
	var d jobData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return j, fmt.Errorf("stored job %s is not valid JSON: the database is corrupt: %w", j.ID, err)
	}
	j.State = lifecycle.JobState(state)
	j.Kind, j.Done, j.Total, j.Attempts, j.Error, j.Actor = d.Kind, d.Done, d.Total, d.Attempts, d.Error, d.Actor
	j.Created, j.Updated = fromUnix(d.Created), fromUnix(d.Updated)
	j.Epoch, j.Scope, j.Cursor, j.Walk = d.Epoch, d.Scope, d.Cursor, d.Walk
	return j, nil
}

// RewrapBatch implements [lifecycle.Store].
func (db *DB) RewrapBatch(ctx context.Context, s *byok.ScopeRecord, recs []byok.DEKRecord, j lifecycle.JobRecord) error {
	if s != nil {
		if err := store.CheckScope(*s); err != nil {
			return err
		}
	}
	for _, d := range recs {
		if err := store.CheckRewrap(d); err != nil {
			return err
		}
		if s != nil && (d.Tenant != s.Tenant || d.Scope != s.Scope || d.Kind != s.Kind) {
			return &byok.InputError{Arg: "rewrapped DEK", Reason: fmt.Sprintf(
				"%x is a %s DEK of scope %q of tenant %q; moving scope %q of tenant %q to %s takes only %s DEKs of that scope",
				d.ID, d.Kind, d.Scope, d.Tenant, s.Scope, s.Tenant, s.Kind, s.Kind)}
		}
	}
	if err := checkJob(j); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := putJob(ctx, tx, j); err != nil {
			return err
		}
		if s != nil {
			if err := upsertScope(ctx, tx, *s); err != nil {
				return err
			}
		}
		return rewrap(ctx, tx, recs)
	})
}

// CountDEKs implements [lifecycle.Store].
func (db *DB) CountDEKs(ctx context.Context, tenant string, kind byok.KeyKind, belowEpoch uint32, scope string) (int64, error) {
	var n int64
	var err error
	if scope == "" {
		err = db.r.QueryRowContext(ctx, `SELECT count(*) FROM deks WHERE tenant = ? AND kind = ? AND epoch < ?`,
			tenant, int64(kind), int64(belowEpoch)).Scan(&n)
	} else {
		err = db.r.QueryRowContext(ctx, `SELECT count(*) FROM deks WHERE tenant = ? AND scope = ? AND kind = ? AND epoch < ?`,
			tenant, scope, int64(kind), int64(belowEpoch)).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: count DEKs of tenant %q: %w", tenant, err)
	}
	return n, nil
}

// AddHealthEvent implements [lifecycle.Store].
func (db *DB) AddHealthEvent(ctx context.Context, e lifecycle.HealthEvent) error {
	if e.Tenant == "" {
		return &byok.InputError{Arg: "tenant id", Reason: "is empty"}
	}
	if e.Kind == "" {
		return &byok.InputError{Arg: "health event kind", Reason: "is empty"}
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO lifecycle_health (tenant, kind, reason, detected_at, enforced_at, replica)
		VALUES (?, ?, ?, ?, ?, ?)`, e.Tenant, string(e.Kind), string(e.Reason), nanos(e.DetectedAt), nanos(e.EnforcedAt), e.Replica)
	if isMissingParent(err) {
		return fmt.Errorf("store/sqlite: add health event: tenant %q does not exist: %w", e.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: add health event of tenant %q: %w", e.Tenant, err)
	}
	return nil
}

// HealthEvents implements [lifecycle.Store].
func (db *DB) HealthEvents(ctx context.Context, tenant string, limit int) ([]lifecycle.HealthEvent, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT tenant, kind, reason, detected_at, enforced_at, replica
		FROM lifecycle_health WHERE tenant = ? ORDER BY seq DESC LIMIT ?`, tenant, limit)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list health events of tenant %q: %w", tenant, err)
	}
	es, err := collect(rows, func(s scanner) (lifecycle.HealthEvent, error) {
		var e lifecycle.HealthEvent
		var kind, reason string
		var det, enf sql.NullInt64
		err := s.Scan(&e.Tenant, &kind, &reason, &det, &enf, &e.Replica)
		e.Kind, e.Reason = lifecycle.HealthEventKind(kind), kms.Reason(reason)
		e.DetectedAt, e.EnforcedAt = fromNanos(det), fromNanos(enf)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list health events of tenant %q: %w", tenant, err)
	}
	return es, nil
}
