package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/store"
)

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
	r, err := scanKeyRecord(db.pool.QueryRow(ctx, `SELECT tenant, version, state, enforce_at, data
		FROM lifecycle_keys WHERE tenant = $1`, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("store/postgres: tenant %q has no customer key record: %w", tenant, byok.ErrNotFound)
	}
	if err != nil {
		return r, wrapErr(err, "read customer key record of tenant %q", tenant)
	}
	return r, nil
}

// PutKeyRecord implements [lifecycle.Store].
func (db *DB) PutKeyRecord(ctx context.Context, r lifecycle.Record) error {
	if err := checkKeyRecord(r); err != nil {
		return err
	}
	return db.write(ctx, func(tx pgx.Tx) error { return putKeyRecord(ctx, tx, r) })
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
	return db.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE tenant_keys SET customer_key_id = $1, customer_alg = $2, customer_ct = $3
			WHERE tenant = $4 AND kind = $5 AND epoch = $6 AND customer_key_id = $7`,
			share.KeyID, share.Algorithm, share.Ciphertext, r.Tenant, int16(kind), int64(epoch), oldKeyID)
		if err != nil {
			return wrapErr(err, "rotate customer share of %s", name)
		}
		if tag.RowsAffected() != 1 {
			var stored string
			err := tx.QueryRow(ctx, `SELECT customer_key_id FROM tenant_keys WHERE tenant = $1 AND kind = $2 AND epoch = $3`,
				r.Tenant, int16(kind), int64(epoch)).Scan(&stored)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("store/postgres: rotate customer share: %s does not exist: %w", name, byok.ErrNotFound)
			}
			if err != nil {
				return wrapErr(err, "rotate customer share of %s", name)
			}
			return fmt.Errorf("store/postgres: rotate customer share of %s: it is wrapped under %q, not %q; re-read the key and retry: %w",
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
func putKeyRecord(ctx context.Context, tx pgx.Tx, r lifecycle.Record) error {
	data, err := json.Marshal(toRecordData(r))
	if err != nil {
		return fmt.Errorf("store/postgres: encode customer key record of tenant %q: %w", r.Tenant, err)
	}
	var tag pgconn.CommandTag
	if r.Version == 1 {
		tag, err = tx.Exec(ctx, `INSERT INTO lifecycle_keys (tenant, version, state, enforce_at, data)
			VALUES ($1, 1, $2, $3, $4) ON CONFLICT (tenant) DO NOTHING`,
			r.Tenant, string(r.State), nanos(r.EnforceAt), string(data))
	} else {
		tag, err = tx.Exec(ctx, `UPDATE lifecycle_keys SET version = $1, state = $2, enforce_at = $3, data = $4
			WHERE tenant = $5 AND version = $6`,
			int64(r.Version), string(r.State), nanos(r.EnforceAt), string(data), r.Tenant, int64(r.Version-1))
	}
	if sqlState(err) == foreignKeyViolation {
		return fmt.Errorf("store/postgres: put customer key record: tenant %q does not exist: %w", r.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return wrapErr(err, "put customer key record of tenant %q", r.Tenant)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var stored int64
	err = tx.QueryRow(ctx, `SELECT version FROM lifecycle_keys WHERE tenant = $1`, r.Tenant).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store/postgres: put customer key record of tenant %q version %d: no record is stored; write version 1 first: %w",
			r.Tenant, r.Version, store.ErrConflict)
	}
	if err != nil {
		return wrapErr(err, "put customer key record of tenant %q", r.Tenant)
	}
	return fmt.Errorf("store/postgres: put customer key record of tenant %q version %d: stored version is %d; re-read and retry: %w",
		r.Tenant, r.Version, stored, store.ErrConflict)
}

// ListKeyRecords implements [lifecycle.Store].
func (db *DB) ListKeyRecords(ctx context.Context, after string, limit int, states ...lifecycle.State) ([]lifecycle.Record, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT tenant, version, state, enforce_at, data FROM lifecycle_keys WHERE tenant > $1`
	args := []any{after}
	if len(states) > 0 {
		names := make([]string, len(states))
		for i, s := range states {
			names[i] = string(s)
		}
		args = append(args, names)
		q += ` AND state = ANY($2)`
	}
	args = append(args, limit)
	q += ` ORDER BY tenant LIMIT $` + strconv.Itoa(len(args))
	rows, _ := db.pool.Query(ctx, q, args...)
	rs, err := collect(rows, scanKeyRecord)
	if err != nil {
		return nil, wrapErr(err, "list customer key records")
	}
	return rs, nil
}

func toRecordData(r lifecycle.Record) recordData {
	d := recordData{
		Provider: r.Settings.Provider, KeyID: r.Settings.KeyID, DirectoryID: r.Settings.DirectoryID,
		ClientID: r.Settings.ClientID, Credential: r.Settings.Credential,
		SettingsHash: r.SettingsHash, SealedSecret: r.SealedSecret, Coverage: r.Coverage, Versions: r.Versions,
		ActivatedAt: unixNanos(r.ActivatedAt), Updated: unixNanos(r.Updated),
	}
	if r.LastTest != nil {
		d.LastTest = &reportData{SettingsHash: r.LastTest.SettingsHash, KeyID: r.LastTest.KeyID,
			Checks: r.LastTest.Checks, At: unixNanos(r.LastTest.At)}
	}
	return d
}

func scanKeyRecord(s pgx.Row) (lifecycle.Record, error) {
	var r lifecycle.Record
	var state, data string
	var version int64
	var enforce *int64
	if err := s.Scan(&r.Tenant, &version, &state, &enforce, &data); err != nil {
		return r, err
	}
	var d recordData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return r, fmt.Errorf("stored customer key record of tenant %q is not valid JSON: the database is corrupt: %w", r.Tenant, err)
	}
	r.Version, r.State = uint64(version), lifecycle.State(state)
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

// unixNanos returns t as Unix nanoseconds for a JSON number, 0 for the
// zero time.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnix is the inverse of unixNanos.
func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
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
	return db.write(ctx, func(tx pgx.Tx) error { return putJob(ctx, tx, j) })
}

// putJob inserts j, or updates it if the stored job's owner is j.Owner
// or "" (the lease fence); a fenced update is store.ErrConflict.
func putJob(ctx context.Context, tx pgx.Tx, j lifecycle.JobRecord) error {
	data, err := encodeJob(j)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO lifecycle_jobs (id, tenant, state, data, owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, data = excluded.data, owner = excluded.owner, lease_until = excluded.lease_until
		WHERE lifecycle_jobs.tenant = excluded.tenant AND lifecycle_jobs.owner IN ('', excluded.owner)`,
		j.ID, j.Tenant, string(j.State), data, j.Owner, nanos(j.LeaseUntil))
	if sqlState(err) == foreignKeyViolation {
		return fmt.Errorf("store/postgres: put job %s: tenant %q does not exist: %w", j.ID, j.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return wrapErr(err, "put job %s", j.ID)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var tenant, owner string
	if err := tx.QueryRow(ctx, `SELECT tenant, owner FROM lifecycle_jobs WHERE id = $1`, j.ID).Scan(&tenant, &owner); err != nil {
		return wrapErr(err, "put job %s", j.ID)
	}
	if tenant != j.Tenant {
		return fmt.Errorf("store/postgres: put job %s: it is a job of tenant %q, not %q: %w", j.ID, tenant, j.Tenant, store.ErrConflict)
	}
	return fmt.Errorf("store/postgres: put job %s as %q: its lease is held by %q; claim the job again before writing it: %w",
		j.ID, j.Owner, owner, store.ErrConflict)
}

// encodeJob returns the data column of j.
func encodeJob(j lifecycle.JobRecord) (string, error) {
	data, err := json.Marshal(jobData{Kind: j.Kind, Done: j.Done, Total: j.Total, Attempts: j.Attempts, Error: j.Error,
		Actor: j.Actor, Created: unixNanos(j.Created), Updated: unixNanos(j.Updated),
		Epoch: j.Epoch, Scope: j.Scope, Cursor: j.Cursor, Walk: j.Walk})
	if err != nil {
		return "", fmt.Errorf("store/postgres: encode job %s: %w", j.ID, err)
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
	return db.write(ctx, func(tx pgx.Tx) error {
		if err := putKeyRecord(ctx, tx, r); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO lifecycle_jobs (id, tenant, state, data, owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6)`,
			j.ID, j.Tenant, string(j.State), data, j.Owner, nanos(j.LeaseUntil))
		if sqlState(err) == uniqueViolation {
			return fmt.Errorf("store/postgres: start job %s: a job with that id exists; use a new id: %w", j.ID, byok.ErrExists)
		}
		if err != nil {
			return wrapErr(err, "start job %s", j.ID)
		}
		return nil
	})
}

// ClaimJob implements [lifecycle.Store]. The claim is one conditional
// UPDATE: of replicas claiming a job at once, the row lock lets exactly
// one through.
func (db *DB) ClaimJob(ctx context.Context, id, owner string, now, until time.Time) (lifecycle.JobRecord, bool, error) {
	if owner == "" {
		return lifecycle.JobRecord{}, false, &byok.InputError{Arg: "lease owner", Reason: "is empty; pass the replica id"}
	}
	for _, t := range []time.Time{now, until} {
		if t.Before(store.MinTime) || t.After(store.MaxTime) {
			return lifecycle.JobRecord{}, false, &byok.InputError{Arg: "lease time", Reason: "is out of the storable range"}
		}
	}
	j, err := scanJob(db.pool.QueryRow(ctx, `UPDATE lifecycle_jobs SET owner = $1, lease_until = $2
		WHERE id = $3 AND state IN ('pending', 'running') AND (owner IN ('', $1) OR coalesce(lease_until, 0) <= $4)
		RETURNING `+jobColumns, owner, nanos(until), id, nanos(now)))
	if err == nil {
		return j, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return j, false, wrapErr(err, "claim job %q", id)
	}
	j, err = db.JobRecord(ctx, id)
	if err != nil {
		return j, false, fmt.Errorf("store/postgres: claim job %q: %w", id, err)
	}
	return j, false, nil
}

const jobColumns = `id, tenant, state, data, owner, lease_until`

// JobRecord implements [lifecycle.Store].
func (db *DB) JobRecord(ctx context.Context, id string) (lifecycle.JobRecord, error) {
	j, err := scanJob(db.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM lifecycle_jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return j, fmt.Errorf("store/postgres: job %q does not exist: %w", id, byok.ErrNotFound)
	}
	if err != nil {
		return j, wrapErr(err, "read job %q", id)
	}
	return j, nil
}

// ListJobs implements [lifecycle.Store].
func (db *DB) ListJobs(ctx context.Context, tenant string, unfinished bool, limit int) ([]lifecycle.JobRecord, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	q := `SELECT ` + jobColumns + ` FROM lifecycle_jobs WHERE ($1 = '' OR tenant = $1)`
	if unfinished {
		q += ` AND state IN ('pending', 'running')`
	}
	q += ` ORDER BY seq DESC LIMIT $2`
	rows, _ := db.pool.Query(ctx, q, tenant, limit)
	js, err := collect(rows, scanJob)
	if err != nil {
		return nil, wrapErr(err, "list jobs")
	}
	return js, nil
}

func scanJob(s pgx.Row) (lifecycle.JobRecord, error) {
	var j lifecycle.JobRecord
	var state, data string
	var lease *int64
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
	return db.write(ctx, func(tx pgx.Tx) error {
		// The job first: its row lock keeps a concurrent claim waiting
		// until the batch commits, and a fenced batch stops before any DEK.
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
		err = db.pool.QueryRow(ctx, `SELECT count(*) FROM deks WHERE tenant = $1 AND kind = $2 AND epoch < $3`,
			tenant, int16(kind), int64(belowEpoch)).Scan(&n)
	} else {
		err = db.pool.QueryRow(ctx, `SELECT count(*) FROM deks WHERE tenant = $1 AND scope = $2 AND kind = $3 AND epoch < $4`,
			tenant, scope, int16(kind), int64(belowEpoch)).Scan(&n)
	}
	if err != nil {
		return 0, wrapErr(err, "count DEKs of tenant %q", tenant)
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
	_, err := db.pool.Exec(ctx, `INSERT INTO lifecycle_health (tenant, kind, reason, detected_at, enforced_at, replica)
		VALUES ($1, $2, $3, $4, $5, $6)`, e.Tenant, string(e.Kind), string(e.Reason), nanos(e.DetectedAt), nanos(e.EnforcedAt), e.Replica)
	if sqlState(err) == foreignKeyViolation {
		return fmt.Errorf("store/postgres: add health event: tenant %q does not exist: %w", e.Tenant, byok.ErrNotFound)
	}
	if err != nil {
		return wrapErr(err, "add health event of tenant %q", e.Tenant)
	}
	return nil
}

// HealthEvents implements [lifecycle.Store].
func (db *DB) HealthEvents(ctx context.Context, tenant string, limit int) ([]lifecycle.HealthEvent, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT tenant, kind, reason, detected_at, enforced_at, replica
		FROM lifecycle_health WHERE tenant = $1 ORDER BY seq DESC LIMIT $2`, tenant, limit)
	es, err := collect(rows, func(s pgx.Row) (lifecycle.HealthEvent, error) {
		var e lifecycle.HealthEvent
		var kind, reason string
		var det, enf *int64
		err := s.Scan(&e.Tenant, &kind, &reason, &det, &enf, &e.Replica)
		e.Kind, e.Reason = lifecycle.HealthEventKind(kind), kms.Reason(reason)
		e.DetectedAt, e.EnforcedAt = fromNanos(det), fromNanos(enf)
		return e, err
	})
	if err != nil {
		return nil, wrapErr(err, "list health events of tenant %q", tenant)
	}
	return es, nil
}
