package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/openbyok/byok"
)

// Limits on the fields of an event.
const (
	MaxFieldLen  = 1024     // Tenant, IDs, Action, Target, vault call fields, detail keys
	MaxTextLen   = 16 << 10 // Reason and each detail value
	MaxJSONLen   = 64 << 10 // Before and After, each
	MaxDetails   = 64       // entries of Details
	MaxActionLen = 64       // Action
)

// The range of Event.Time: what Unix nanoseconds in an int64 can hold.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// Clock tells the time and waits; [System] is the real one. Tests inject
// a fake to drive [Counter.Run] without sleeping.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

// Log records events into a [Store]. It is safe for concurrent use.
type Log struct {
	store Store
	clock Clock
}

// New returns a Log over s. A nil clock means [SystemClock].
func New(s Store, clock Clock) *Log {
	if clock == nil {
		clock = SystemClock
	}
	return &Log{store: s, clock: clock}
}

// Record appends e to the chain of e.Tenant and returns it as stored, with
// Seq, PrevHash and Hash set. It sets ID (with [NewID]) if empty and Time
// (from the clock) if zero, and stores Time in UTC and Before and After
// in compact form.
//
// An event that is not well formed fails with an error wrapping
// [byok.ErrInvalidInput] (a [*byok.InputError] naming the field), and
// nothing is recorded: a missing or malformed Action, an unknown actor
// kind or outcome, Before or After that is not JSON, an oversized field,
// or a detail (or a Before/After member) named like a secret — "secret",
// "token", "password", "key_material", "private_key", "api_key"...
// Callers pass no secret at all; the check catches the obvious mistakes.
func (l *Log) Record(ctx context.Context, e Event) (Event, error) {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = l.clock.Now()
	}
	if err := normalize(&e); err != nil {
		return Event{}, err
	}
	var out Event
	err := l.store.AppendAudit(ctx, e.Tenant, func(head Head) ([]Event, error) {
		out = e
		seal(&out, head)
		return []Event{out}, nil
	})
	if err != nil {
		return Event{}, fmt.Errorf("audit: record %s event: %w", e.Action, err)
	}
	return out, nil
}

// recordBatch records events, all of chain tenant with ID and Time set,
// in one append.
func (l *Log) recordBatch(ctx context.Context, tenant string, events []Event) error {
	for i := range events {
		events[i].ID = NewID()
		if err := normalize(&events[i]); err != nil {
			return err
		}
	}
	return l.store.AppendAudit(ctx, tenant, func(head Head) ([]Event, error) {
		out := slices.Clone(events)
		for i := range out {
			seal(&out[i], head)
			head = Head{Seq: out[i].Seq, Hash: out[i].Hash}
		}
		return out, nil
	})
}

// seal places e after head and computes its hash.
func seal(e *Event, head Head) {
	e.Seq = head.Seq + 1
	e.PrevHash = head.Hash
	if head.Seq == 0 {
		e.PrevHash = GenesisHash
	}
	e.Hash = ComputeHash(e)
}

// normalize validates e and puts it in its stored form.
func normalize(e *Event) error {
	e.Time = e.Time.UTC()
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
	if err := checkField("tenant", e.Tenant, MaxFieldLen); err != nil {
		return err
	}
	if err := checkField("id", e.ID, MaxFieldLen); err != nil {
		return err
	}
	if e.Time.Before(minTime) || e.Time.After(maxTime) {
		return &byok.InputError{Arg: "audit event time", Reason: fmt.Sprintf("is %s; it must be between %s and %s (Unix nanoseconds in an int64)",
			e.Time.Format(time.RFC3339), minTime.Format(time.RFC3339), maxTime.Format(time.RFC3339))}
	}
	if err := checkAction(e.Action); err != nil {
		return err
	}
	switch e.Actor.Kind {
	case Operator, TenantAdmin, Service, System:
	default:
		return &byok.InputError{Arg: "audit event actor kind", Reason: fmt.Sprintf("is %q; use operator, tenant-admin, service or system", e.Actor.Kind)}
	}
	if e.Actor.ID == "" {
		return &byok.InputError{Arg: "audit event actor id", Reason: "is empty; name the token, user or job that acted"}
	}
	if err := checkField("actor id", e.Actor.ID, MaxFieldLen); err != nil {
		return err
	}
	switch e.Outcome {
	case Success, Failure, Denied:
	default:
		return &byok.InputError{Arg: "audit event outcome", Reason: fmt.Sprintf("is %q; use success, failure or denied", e.Outcome)}
	}
	if err := checkField("target", e.Target, MaxFieldLen); err != nil {
		return err
	}
	if err := checkField("reason", e.Reason, MaxTextLen); err != nil {
		return err
	}
	var err error
	if e.Before, err = compactJSON("before", e.Before); err != nil {
		return err
	}
	if e.After, err = compactJSON("after", e.After); err != nil {
		return err
	}
	if v := e.Vault; v != nil {
		if *v == (VaultCall{}) {
			e.Vault = nil // the same hash and the same row as no call
		} else {
			for _, f := range []struct{ name, v string }{
				{"vault operation", v.Operation}, {"vault key id", v.KeyID}, {"vault purpose", string(v.Purpose)}, {"vault request id", v.RequestID},
			} {
				if err := checkField(f.name, f.v, MaxFieldLen); err != nil {
					return err
				}
			}
			switch v.Purpose {
			case PurposeTenantRequest, PurposeBackgroundCheck, PurposeRotationJob, PurposeTest:
			default:
				return &byok.InputError{Arg: "audit event vault purpose", Reason: fmt.Sprintf("is %q; use tenant-request, background-check, rotation-job or test", v.Purpose)}
			}
		}
	}
	if len(e.Details) > MaxDetails {
		return &byok.InputError{Arg: "audit event details", Reason: fmt.Sprintf("has %d entries, the limit is %d", len(e.Details), MaxDetails)}
	}
	for k, v := range e.Details {
		if k == "" {
			return &byok.InputError{Arg: "audit event details", Reason: "has an empty key"}
		}
		if err := checkField("detail key", k, MaxFieldLen); err != nil {
			return err
		}
		if err := checkField("detail "+k, v, MaxTextLen); err != nil {
			return err
		}
		if secretName(k) {
			return &byok.InputError{Arg: "audit event details", Reason: fmt.Sprintf("has key %q, which names a secret; an audit event never holds one: leave it out (put a token's id in Target)", k)}
		}
	}
	if len(e.Details) == 0 {
		e.Details = nil
	}
	return nil
}

// checkField checks that s is valid UTF-8 of at most max bytes.
func checkField(name, s string, max int) error {
	if len(s) > max {
		return &byok.InputError{Arg: "audit event " + name, Reason: fmt.Sprintf("is %d bytes, the limit is %d", len(s), max)}
	}
	if !utf8.ValidString(s) {
		return &byok.InputError{Arg: "audit event " + name, Reason: "is not valid UTF-8"}
	}
	return nil
}

// checkAction checks an action: 1 to MaxActionLen bytes of lowercase
// letters, digits, '.', '-' and '_', starting with a letter.
func checkAction(a string) error {
	if a == "" {
		return &byok.InputError{Arg: "audit event action", Reason: `is empty; name what happened, e.g. "key.rotate"`}
	}
	if len(a) > MaxActionLen {
		return &byok.InputError{Arg: "audit event action", Reason: fmt.Sprintf("is %d bytes, the limit is %d", len(a), MaxActionLen)}
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		ok := 'a' <= c && c <= 'z' || i > 0 && ('0' <= c && c <= '9' || c == '.' || c == '-' || c == '_')
		if !ok {
			return &byok.InputError{Arg: "audit event action", Reason: fmt.Sprintf("%q has %q at byte %d; use lowercase letters, digits, '.', '-' and '_', starting with a letter", a, c, i)}
		}
	}
	return nil
}

// secretWords are the name fragments that mark a secret, compared with
// lowercase names stripped of '_', '-', '.' and spaces.
var secretWords = []string{"secret", "token", "password", "passwd", "keymaterial", "privatekey", "apikey"}

// secretName reports whether a detail key or JSON member name looks like
// it names a secret.
func secretName(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(name))
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// compactJSON checks that raw is nil or one JSON value of at most
// MaxJSONLen bytes with no member named like a secret (unless its value
// is null, a boolean or ""), and returns it compacted.
func compactJSON(name string, raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if len(raw) > MaxJSONLen {
		return nil, &byok.InputError{Arg: "audit event " + name, Reason: fmt.Sprintf("is %d bytes, the limit is %d", len(raw), MaxJSONLen)}
	}
	if !utf8.Valid(raw) {
		return nil, &byok.InputError{Arg: "audit event " + name, Reason: "is not valid UTF-8"}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, &byok.InputError{Arg: "audit event " + name, Reason: "is not one JSON value: " + err.Error()}
	}
	var v any
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		return nil, &byok.InputError{Arg: "audit event " + name, Reason: "is not one JSON value: " + err.Error()}
	}
	if path := findSecret(v, ""); path != "" {
		return nil, &byok.InputError{Arg: "audit event " + name, Reason: fmt.Sprintf("has member %s, which names a secret; an audit event never holds one: leave it out, or record only whether it is set (true/false)", path)}
	}
	return json.RawMessage(buf.Bytes()), nil
}

// findSecret returns the path of the first object member of v that is
// named like a secret and holds anything but null, a boolean or "".
func findSecret(v any, path string) string {
	switch v := v.(type) {
	case map[string]any:
		for k, m := range v {
			p := path + "." + k
			if secretName(k) {
				switch m := m.(type) {
				case nil, bool:
					continue
				case string:
					if m == "" {
						continue
					}
				}
				return p
			}
			if s := findSecret(m, p); s != "" {
				return s
			}
		}
	case []any:
		for i, m := range v {
			if s := findSecret(m, fmt.Sprintf("%s[%d]", path, i)); s != "" {
				return s
			}
		}
	}
	return ""
}
