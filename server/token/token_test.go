package token

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestNewParseVerify(t *testing.T) {
	for _, tc := range []struct {
		kind    Kind
		tenants []string
		want    []string
	}{
		{Operator, nil, nil},
		{TenantAdmin, []string{"acme"}, []string{"acme"}},
		{Service, []string{"globex", "acme", "globex"}, []string{"acme", "globex"}},
	} {
		text, r, err := New(tc.kind, tc.tenants, "label", now, time.Hour)
		if err != nil {
			t.Fatalf("New(%s): %v", tc.kind, err)
		}
		if !strings.HasPrefix(text, "byok_"+string(tc.kind)+"_"+r.ID+"_") {
			t.Errorf("token text of kind %s does not start with byok_<kind>_<id>_", tc.kind)
		}
		if strings.Join(r.Tenants, ",") != strings.Join(tc.want, ",") {
			t.Errorf("New(%s, %q) tenants = %q, want %q", tc.kind, tc.tenants, r.Tenants, tc.want)
		}
		if err := Check(r); err != nil {
			t.Errorf("Check of a new record: %v", err)
		}
		kind, id, secret, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse of a new token: %v", err)
		}
		if kind != tc.kind || id != r.ID || !r.Verify(secret) {
			t.Errorf("Parse = %s, %s, verify %v; want %s, %s, true", kind, id, r.Verify(secret), tc.kind, r.ID)
		}
		if r.Hash == sha256.Sum256(nil) || strings.Contains(text, string(r.Hash[:])) {
			t.Error("record hash is empty or appears in the text")
		}
		if !r.Expires.Equal(now.Add(time.Hour)) || !r.Created.Equal(now) {
			t.Errorf("created %v expires %v, want %v and an hour later", r.Created, r.Expires, now)
		}
	}
}

func TestTwoTokensDiffer(t *testing.T) {
	a, ra, _ := New(Operator, nil, "", now, 0)
	b, rb, _ := New(Operator, nil, "", now, 0)
	if a == b || ra.ID == rb.ID || ra.Hash == rb.Hash {
		t.Fatal("two new tokens share their text, id or hash")
	}
	_, _, secretB, _ := Parse(b)
	if ra.Verify(secretB) {
		t.Fatal("a token's record verifies another token's secret")
	}
}

func TestActive(t *testing.T) {
	_, r, _ := New(Service, []string{"acme"}, "", now, time.Minute)
	for _, tc := range []struct {
		name string
		r    Record
		at   time.Time
		want bool
	}{
		{"fresh", r, now, true},
		{"just before expiry", r, now.Add(time.Minute - 1), true},
		{"at expiry", r, now.Add(time.Minute), false},
		{"revoked", Record{Revoked: now}, now, false},
		{"never expires", Record{}, now.Add(100 * 365 * 24 * time.Hour), true},
	} {
		if got := tc.r.Active(tc.at); got != tc.want {
			t.Errorf("%s: Active = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    Kind
		tenants []string
		ttl     time.Duration
		want    string
	}{
		{"unknown kind", "root", nil, 0, "unknown"},
		{"operator with tenant", Operator, []string{"acme"}, 0, "no tenants"},
		{"admin of two", TenantAdmin, []string{"a", "b"}, 0, "exactly one"},
		{"admin of none", TenantAdmin, nil, 0, "exactly one"},
		{"service of none", Service, nil, 0, "at least one"},
		{"empty tenant", Service, []string{""}, 0, "empty"},
		{"negative ttl", Service, []string{"a"}, -time.Second, "negative"},
	} {
		_, _, err := New(tc.kind, tc.tenants, "", now, tc.ttl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	_, good, _ := New(Service, []string{"a", "b"}, "", now, 0)
	for name, mod := range map[string]func(*Record){
		"short id":      func(r *Record) { r.ID = "abc" },
		"uppercase id":  func(r *Record) { r.ID = strings.ToUpper(r.ID) },
		"unknown kind":  func(r *Record) { r.Kind = "root" },
		"unsorted":      func(r *Record) { r.Tenants = []string{"b", "a"} },
		"duplicate":     func(r *Record) { r.Tenants = []string{"a", "a"} },
		"admin of two":  func(r *Record) { r.Kind = TenantAdmin },
		"operator with": func(r *Record) { r.Kind = Operator },
	} {
		r := good
		mod(&r)
		if Check(r) == nil {
			t.Errorf("Check accepted a record with %s", name)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, _, _ := New(TenantAdmin, []string{"acme"}, "", now, 0)
	_, id, _, _ := Parse(good)
	secret := good[len("byok_tenant-admin_"+id+"_"):]
	for name, text := range map[string]string{
		"empty":          "",
		"no prefix":      strings.TrimPrefix(good, "byok_"),
		"bearer prefix":  "Bearer " + good,
		"unknown kind":   "byok_root_" + id + "_" + secret,
		"short id":       "byok_operator_abc_" + secret,
		"uppercase id":   "byok_operator_" + strings.ToUpper(id) + "_" + secret,
		"no secret":      "byok_operator_" + id,
		"short secret":   "byok_operator_" + id + "_" + secret[:42],
		"long secret":    good + "A",
		"padded secret":  good + "=",
		"std base64":     "byok_operator_" + id + "_" + strings.Repeat("+", 43),
		"non-canonical":  "byok_operator_" + id + "_" + secret[:42] + "B",
		"trailing space": good + " ",
	} {
		_, _, _, err := Parse(text)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%s) err = %v, want ErrMalformed", name, err)
			continue
		}
		if len(text) > 20 && strings.Contains(err.Error(), text[len(text)-20:]) {
			t.Errorf("Parse(%s) error contains the token text: %v", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	good, _, _ := New(Service, []string{"acme"}, "", now, 0)
	f.Add(good)
	f.Add("byok_operator_")
	f.Fuzz(func(t *testing.T, text string) {
		kind, id, secret, err := Parse(text)
		if err != nil {
			return
		}
		if !kind.Valid() || !ValidID(id) || len(secret) != 32 {
			t.Fatalf("Parse(%q) accepted kind %q, id %q, %d secret bytes", text, kind, id, len(secret))
		}
	})
}
