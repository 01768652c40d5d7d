package audit

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/openbyok/byok"
)

// MaxListLimit is the most events one [Log.List] call returns.
const MaxListLimit = 1000

// pageSize is how many events Export and Verify read at a time.
const pageSize = 500

// Filter selects events. Exactly one of Tenant, Platform and All selects
// the chains: a tenant-scoped read names its tenant, and reads that name
// no chain are refused, so a tenant never reads another's events by
// leaving a field empty. Platform and All are for operators.
type Filter struct {
	// Tenant selects that tenant's chain.
	Tenant string
	// Platform selects the platform chain (platform-level events).
	Platform bool
	// All selects every chain, the platform's included.
	All bool
	// Since and Until bound the events' Time: Since <= Time < Until. Zero
	// means unbounded.
	Since, Until time.Time
	// ActionPrefix keeps the events whose Action starts with it, e.g.
	// "key." or "vault.".
	ActionPrefix string
}

// check validates f.
func (f Filter) check() error {
	n := 0
	for _, set := range []bool{f.Tenant != "", f.Platform, f.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return &byok.InputError{Arg: "audit filter", Reason: "must select exactly one of a tenant, the platform chain or all chains"}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return &byok.InputError{Arg: "audit filter", Reason: fmt.Sprintf("has until %s before since %s",
			f.Until.UTC().Format(time.RFC3339), f.Since.UTC().Format(time.RFC3339))}
	}
	return nil
}

// query returns the store query of f, starting after pos.
func (f Filter) query(after Position, limit int) Query {
	return Query{Tenant: f.Tenant, All: f.All, After: after, Since: f.Since, Until: f.Until, ActionPrefix: f.ActionPrefix, Limit: limit}
}

// holds reports whether chain tenant is one that f selects.
func (f Filter) holds(tenant string) bool {
	return f.All || tenant == f.Tenant // Platform: f.Tenant is ""
}

// List returns at most limit (1 to [MaxListLimit]) events matching f, in
// chain then sequence order, and the cursor of the next page, "" after
// the last. Pass "" as cursor for the first page. A cursor is opaque, and
// only good for the same filter: one that points into a chain f does not
// select is refused.
func (l *Log) List(ctx context.Context, f Filter, cursor string, limit int) ([]Event, string, error) {
	if err := f.check(); err != nil {
		return nil, "", err
	}
	if limit < 1 || limit > MaxListLimit {
		return nil, "", &byok.InputError{Arg: "audit list limit", Reason: fmt.Sprintf("is %d; it must be 1 to %d", limit, MaxListLimit)}
	}
	pos, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if cursor != "" && !f.holds(pos.Tenant) {
		return nil, "", &byok.InputError{Arg: "audit cursor", Reason: "belongs to another listing; start again without a cursor"}
	}
	es, err := l.store.AuditEvents(ctx, f.query(pos, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("audit: list: %w", err)
	}
	if len(es) <= limit {
		return es, "", nil
	}
	es = es[:limit]
	last := es[limit-1]
	return es, formatCursor(Position{Tenant: last.Tenant, Seq: last.Seq}), nil
}

// formatCursor encodes pos as "seq.base64url(tenant)".
func formatCursor(pos Position) string {
	return strconv.FormatUint(pos.Seq, 10) + "." + base64.RawURLEncoding.EncodeToString([]byte(pos.Tenant))
}

func parseCursor(c string) (Position, error) {
	if c == "" {
		return Position{}, nil
	}
	bad := &byok.InputError{Arg: "audit cursor", Reason: "is malformed; pass back the cursor a previous page returned, or none"}
	s, t, ok := strings.Cut(c, ".")
	if !ok {
		return Position{}, bad
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return Position{}, bad
	}
	tenant, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return Position{}, bad
	}
	return Position{Tenant: string(tenant), Seq: seq}, nil
}

// Export writes the events matching f to w as JSON lines, one event per
// line in the format of docs/audit.md (the JSON form of [Event]), in chain
// then sequence order, and returns how many it wrote. An export of whole
// chains (no time range, no action prefix) can be verified from the lines
// alone; a filtered one holds gaps, but each line's own hash still checks.
func (l *Log) Export(ctx context.Context, w io.Writer, f Filter) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	var pos Position
	for {
		es, err := l.store.AuditEvents(ctx, f.query(pos, pageSize))
		if err != nil {
			return n, fmt.Errorf("audit: export: %w", err)
		}
		for _, e := range es {
			if err := enc.Encode(e); err != nil {
				return n, fmt.Errorf("audit: export: %w", err)
			}
			n++
		}
		if len(es) < pageSize {
			break
		}
		last := es[len(es)-1]
		pos = Position{Tenant: last.Tenant, Seq: last.Seq}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}
