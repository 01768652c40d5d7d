package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle/record"
)

// This file is the JSON documents of the data columns of lifecycle_keys
// and lifecycle_jobs: the fields of a record that no query filters on.
// Each document has one encode and one decode function; the rest of the
// package never looks inside a document. Times are Unix nanoseconds, 0
// (omitted) for the zero time.

// recordData is the document of a [record.Record]. The settings' secret
// is never in it (a Record holds it only sealed). Options is the
// provider's block of the settings, kept as it is (migration 0007 moved
// the Azure fields of older documents into it).
type recordData struct {
	Provider     string          `json:"provider"`
	KeyID        string          `json:"key_id"`
	Options      json.RawMessage `json:"options,omitempty"`
	SettingsHash string          `json:"settings_hash"`
	SealedSecret kms.Wrapped     `json:"sealed_secret"`
	Coverage     record.Coverage `json:"coverage"`
	ActivatedAt  int64           `json:"activated_at,omitempty"`
	LastTest     *reportData     `json:"last_test,omitempty"`
	Versions     []string        `json:"versions,omitempty"`
	Updated      int64           `json:"updated,omitempty"`
}

// reportData is the document of a [record.Report], within recordData.
type reportData struct {
	SettingsHash string         `json:"settings_hash"`
	KeyID        string         `json:"key_id"`
	Checks       []record.Check `json:"checks"`
	At           int64          `json:"at,omitempty"`
}

// encodeRecord returns the document of r.
func encodeRecord(r record.Record) (string, error) {
	d := recordData{
		Provider: r.Settings.Provider, KeyID: r.Settings.KeyID, Options: r.Settings.Options,
		SettingsHash: r.SettingsHash, SealedSecret: r.SealedSecret, Coverage: r.Coverage, Versions: r.Versions,
		ActivatedAt: nanos(r.ActivatedAt).Int64, Updated: nanos(r.Updated).Int64,
	}
	if r.LastTest != nil {
		d.LastTest = &reportData{SettingsHash: r.LastTest.SettingsHash, KeyID: r.LastTest.KeyID,
			Checks: r.LastTest.Checks, At: nanos(r.LastTest.At).Int64}
	}
	data, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode customer key record of tenant %q: %w", r.Tenant, err)
	}
	return string(data), nil
}

// decodeRecord sets the fields of r that the document data holds.
func decodeRecord(data string, r *record.Record) error {
	var d recordData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return err
	}
	r.Settings = record.Settings{Provider: d.Provider, KeyID: d.KeyID, Options: d.Options}
	r.SettingsHash, r.SealedSecret, r.Coverage, r.Versions = d.SettingsHash, d.SealedSecret, d.Coverage, d.Versions
	r.ActivatedAt, r.Updated = fromUnix(d.ActivatedAt), fromUnix(d.Updated)
	if d.LastTest != nil {
		r.LastTest = &record.Report{SettingsHash: d.LastTest.SettingsHash, KeyID: d.LastTest.KeyID,
			Checks: d.LastTest.Checks, At: fromUnix(d.LastTest.At)}
	}
	return nil
}

// jobData is the document of a [record.JobRecord].
type jobData struct {
	Kind     record.JobKind `json:"kind"`
	Done     int64          `json:"done"`
	Total    int64          `json:"total"`
	Attempts int            `json:"attempts"`
	Error    string         `json:"error,omitempty"`
	Actor    audit.Actor    `json:"actor"`
	Created  int64          `json:"created,omitempty"`
	Updated  int64          `json:"updated,omitempty"`
	Epoch    uint32         `json:"epoch,omitempty"`
	Scope    string         `json:"scope,omitempty"`
	Cursor   byok.DEKID     `json:"cursor"`
	Walk     uint32         `json:"walk,omitempty"`
}

// encodeJob returns the document of j.
func encodeJob(j record.JobRecord) (string, error) {
	data, err := json.Marshal(jobData{Kind: j.Kind, Done: j.Done, Total: j.Total, Attempts: j.Attempts, Error: j.Error,
		Actor: j.Actor, Created: nanos(j.Created).Int64, Updated: nanos(j.Updated).Int64,
		Epoch: j.Epoch, Scope: j.Scope, Cursor: j.Cursor, Walk: j.Walk})
	if err != nil {
		return "", fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	return string(data), nil
}

// decodeJob sets the fields of j that the document data holds.
func decodeJob(data string, j *record.JobRecord) error {
	var d jobData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return err
	}
	j.Kind, j.Done, j.Total, j.Attempts, j.Error, j.Actor = d.Kind, d.Done, d.Total, d.Attempts, d.Error, d.Actor
	j.Created, j.Updated = fromUnix(d.Created), fromUnix(d.Updated)
	j.Epoch, j.Scope, j.Cursor, j.Walk = d.Epoch, d.Scope, d.Cursor, d.Walk
	return nil
}

// fromUnix is fromNanos for a JSON number, where 0 is the zero time.
func fromUnix(n int64) time.Time {
	return fromNanos(sql.NullInt64{Int64: n, Valid: n != 0})
}
