package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// populate records n events in each of chains "a", "b" and the
// platform's, one minute apart, alternating actions.
func populate(t *testing.T, n int) (*memStore, *audit.Log) {
	t.Helper()
	s := newMemStore()
	log := audit.New(s, nil)
	actions := []string{"key.configure", "vault.unwrap", "key.rotate", "usage"}
	for i := range n {
		for _, tenant := range []string{"b", "", "a"} {
			e := audit.Event{
				Tenant: tenant, Time: t0.Add(time.Duration(i) * time.Minute),
				Actor: audit.Actor{Kind: audit.System, ID: "job"}, Action: actions[i%len(actions)],
				Target: fmt.Sprintf("%s-%d", tenant, i), Outcome: audit.Success,
				Before: json.RawMessage(`{"html":"<a href=\"x\">&amp;</a>","n":1.50,"u":"\u00e9\u2028"}`),
			}
			if i%2 == 1 {
				e.Vault = &audit.VaultCall{Operation: "unwrapKey", KeyID: "https://v.vault.azure.net/keys/k/1", Purpose: audit.PurposeRotationJob, RequestID: "r"}
				e.Details = map[string]string{"z": "last", "é": "non-ASCII key", "A": "upper"}
			}
			if _, err := log.Record(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s, log
}

func names(es []audit.Event) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s/%d", e.Tenant, e.Seq))
	}
	return out
}

func TestListPages(t *testing.T) {
	_, log := populate(t, 5)
	for _, tc := range []struct {
		f    audit.Filter
		want []string
	}{
		{audit.Filter{Tenant: "a"}, []string{"a/1", "a/2", "a/3", "a/4", "a/5"}},
		{audit.Filter{Platform: true}, []string{"/1", "/2", "/3", "/4", "/5"}},
		{audit.Filter{All: true, ActionPrefix: "key."}, []string{"/1", "/3", "/5", "a/1", "a/3", "a/5", "b/1", "b/3", "b/5"}},
		{audit.Filter{Tenant: "b", Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []string{"b/2", "b/3"}},
	} {
		var got []string
		cursor := ""
		for page := 0; ; page++ {
			es, next, err := log.List(context.Background(), tc.f, cursor, 2)
			if err != nil {
				t.Fatalf("%+v page %d: %v", tc.f, page, err)
			}
			if len(es) > 2 {
				t.Fatalf("page of %d events, limit 2", len(es))
			}
			got = append(got, names(es)...)
			if next == "" {
				break
			}
			cursor = next
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("List(%+v) pages = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestListRefuses(t *testing.T) {
	_, log := populate(t, 3)
	ctx := context.Background()
	_, cursorA, err := log.List(ctx, audit.Filter{Tenant: "a"}, "", 1)
	if err != nil || cursorA == "" {
		t.Fatalf("first page of a: cursor %q, %v", cursorA, err)
	}
	_, cursorAll, err := log.List(ctx, audit.Filter{All: true}, "", 4) // ends in chain a
	if err != nil || cursorAll == "" {
		t.Fatalf("first page of all: cursor %q, %v", cursorAll, err)
	}
	for _, tc := range []struct {
		name   string
		f      audit.Filter
		cursor string
		limit  int
	}{
		{"no chain", audit.Filter{}, "", 10},
		{"no chain with a time range", audit.Filter{Since: t0}, "", 10},
		{"tenant and all", audit.Filter{Tenant: "a", All: true}, "", 10},
		{"tenant and platform", audit.Filter{Tenant: "a", Platform: true}, "", 10},
		{"platform and all", audit.Filter{Platform: true, All: true}, "", 10},
		{"until before since", audit.Filter{Tenant: "a", Since: t0, Until: t0.Add(-time.Second)}, "", 10},
		{"zero limit", audit.Filter{Tenant: "a"}, "", 0},
		{"limit over the maximum", audit.Filter{Tenant: "a"}, "", audit.MaxListLimit + 1},
		{"another tenant's cursor", audit.Filter{Tenant: "b"}, cursorA, 10},
		{"an all-chains cursor in a tenant read", audit.Filter{Tenant: "b"}, cursorAll, 10},
		{"a tenant cursor in a platform read", audit.Filter{Platform: true}, cursorA, 10},
		{"malformed cursor", audit.Filter{Tenant: "a"}, "garbage", 10},
		{"cursor with seq 0", audit.Filter{Tenant: "a"}, "0.YQ", 10},
		{"cursor with bad base64", audit.Filter{Tenant: "a"}, "1.!!", 10},
		{"cursor with negative seq", audit.Filter{Tenant: "a"}, "-1.YQ", 10},
	} {
		es, next, err := log.List(ctx, tc.f, tc.cursor, tc.limit)
		if !errors.Is(err, byok.ErrInvalidInput) || es != nil || next != "" {
			t.Errorf("%s: List = %d events, %q, %v; want only ErrInvalidInput", tc.name, len(es), next, err)
		}
	}
	// The cursor of tenant a continues a's listing, and an all-chains
	// cursor an all-chains listing.
	if es, _, err := log.List(ctx, audit.Filter{Tenant: "a"}, cursorA, 10); err != nil || !reflect.DeepEqual(names(es), []string{"a/2", "a/3"}) {
		t.Errorf("second page of a = %v, %v", names(es), err)
	}
	if es, _, err := log.List(ctx, audit.Filter{All: true}, cursorAll, 10); err != nil || !reflect.DeepEqual(names(es), []string{"a/2", "a/3", "b/1", "b/2", "b/3"}) {
		t.Errorf("second page of all = %v, %v", names(es), err)
	}
}

func TestEventJSON(t *testing.T) {
	s, _ := populate(t, 2)
	for _, e := range append(s.events("a"), golden) {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back audit.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Errorf("JSON round trip:\n got %+v\nwant %+v\nJSON %s", back, e, b)
		}
	}
	var e audit.Event
	if err := json.Unmarshal([]byte(`{"time":"yesterday"}`), &e); err == nil {
		t.Error("an event with a malformed time decodes")
	}
}

func TestExport(t *testing.T) {
	_, log := populate(t, 7)
	for _, tc := range []struct {
		f      audit.Filter
		chains []string
		n      int
	}{
		{audit.Filter{All: true}, []string{"", "a", "b"}, 21},
		{audit.Filter{Tenant: "a"}, []string{"a"}, 7},
		{audit.Filter{Platform: true}, []string{""}, 7},
		{audit.Filter{Tenant: "b", ActionPrefix: "vault."}, []string{"b"}, 2},
		{audit.Filter{Tenant: "b", Since: t0.Add(5 * time.Minute)}, []string{"b"}, 2},
	} {
		var buf bytes.Buffer
		n, err := log.Export(context.Background(), &buf, tc.f)
		if err != nil || n != tc.n {
			t.Fatalf("Export(%+v) = %d, %v; want %d events", tc.f, n, err, tc.n)
		}
		whole := tc.f.ActionPrefix == "" && tc.f.Since.IsZero()
		chains := verifyLines(t, buf.Bytes(), whole)
		if !reflect.DeepEqual(chains, tc.chains) {
			t.Errorf("Export(%+v) holds chains %q, want %q", tc.f, chains, tc.chains)
		}
	}
	if _, err := log.Export(context.Background(), &bytes.Buffer{}, audit.Filter{}); !errors.Is(err, byok.ErrInvalidInput) {
		t.Errorf("Export selecting no chain = %v, want ErrInvalidInput", err)
	}
	if _, err := log.Export(context.Background(), failWriter{}, audit.Filter{All: true}); err == nil {
		t.Error("Export to a failing writer succeeded")
	}
}

func TestExportPages(t *testing.T) {
	_, log := populate(t, 501) // more than a page per chain
	var buf bytes.Buffer
	n, err := log.Export(context.Background(), &buf, audit.Filter{All: true})
	if err != nil || n != 3*501 {
		t.Fatalf("Export = %d, %v; want %d", n, err, 3*501)
	}
	verifyLines(t, buf.Bytes(), true)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// verifyLines checks an export from its lines alone, with an
// implementation of docs/audit.md that shares no code with the package:
// every line's hash, and if whole, every chain's links from seq 1. It
// returns the chains seen, in order.
func verifyLines(t *testing.T, export []byte, whole bool) []string {
	t.Helper()
	type line struct {
		Tenant   string `json:"tenant"`
		Seq      uint64 `json:"seq"`
		PrevHash string `json:"prev_hash"`
		Hash     string `json:"hash"`
		ID       string `json:"id"`
		Time     string `json:"time"`
		Actor    struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
		} `json:"actor"`
		Action  string `json:"action"`
		Target  string `json:"target"`
		Before  string `json:"before"`
		After   string `json:"after"`
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
		Vault   struct {
			Operation string `json:"operation"`
			KeyID     string `json:"key_id"`
			Purpose   string `json:"purpose"`
			RequestID string `json:"request_id"`
		} `json:"vault"`
		Details map[string]string `json:"details"`
	}
	var chains []string
	heads := map[string]line{}
	sc := bufio.NewScanner(bytes.NewReader(export))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l line
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %s: %v", sc.Bytes(), err)
		}
		if len(l.Time) != len("2006-01-02T15:04:05.000000000Z") || !strings.HasSuffix(l.Time, "Z") {
			t.Errorf("time %q is not in the canonical layout", l.Time)
		}
		h := sha256.New()
		put := func(s string) {
			h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
			h.Write([]byte(s))
		}
		for _, s := range []string{"byok-audit-v1", l.Tenant, strconv.FormatUint(l.Seq, 10), l.PrevHash, l.ID, l.Time,
			l.Actor.Kind, l.Actor.ID, l.Action, l.Target, l.Before, l.After, l.Outcome, l.Reason,
			l.Vault.Operation, l.Vault.KeyID, l.Vault.Purpose, l.Vault.RequestID, strconv.Itoa(len(l.Details))} {
			put(s)
		}
		keys := make([]string, 0, len(l.Details))
		for k := range l.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			put(k)
			put(l.Details[k])
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != l.Hash {
			t.Errorf("chain %q seq %d: recomputed hash %s, line says %s", l.Tenant, l.Seq, got, l.Hash)
		}
		prev, seen := heads[l.Tenant]
		if !seen {
			chains = append(chains, l.Tenant)
			prev = line{Hash: strings.Repeat("0", 64)}
		}
		if whole && (l.Seq != prev.Seq+1 || l.PrevHash != prev.Hash) {
			t.Errorf("chain %q seq %d (prev %s) does not follow seq %d (hash %s)", l.Tenant, l.Seq, l.PrevHash, prev.Seq, prev.Hash)
		}
		heads[l.Tenant] = l
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return chains
}
