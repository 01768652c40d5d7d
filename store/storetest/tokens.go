package storetest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store"
)

// TokenStore is a store that also keeps the HTTP API's tokens.
type TokenStore interface {
	store.Store
	token.Store
}

// RunTokens runs the conformance suite of [token.Store]. open must return
// a new, empty store each time it is called; RunTokens closes every store
// it gets.
func RunTokens(t *testing.T, open func(t *testing.T) TokenStore) {
	s := tokenSuite{open: open}
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"RoundTrip", s.testRoundTrip},
		{"CreateErrors", s.testCreateErrors},
		{"List", s.testList},
		{"Revoke", s.testRevoke},
		{"ErrorsHoldNoHash", s.testErrorsHoldNoHash},
	} {
		t.Run(tc.name, tc.f)
	}
}

type tokenSuite struct {
	open func(t *testing.T) TokenStore
}

func (s tokenSuite) store(t *testing.T) TokenStore {
	t.Helper()
	st := s.open(t)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, id := range []string{"acme", "globex"} {
		must(t, st.CreateTenant(t.Context(), tenant(id), nil))
	}
	return st
}

// newToken returns the record of a new token; it fails t on error.
func newToken(t *testing.T, k token.Kind, tenants ...string) token.Record {
	t.Helper()
	_, r, err := token.New(k, tenants, "test "+string(k), created, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s tokenSuite) testRoundTrip(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	for _, r := range []token.Record{
		newToken(t, token.Operator),
		newToken(t, token.TenantAdmin, "acme"),
		newToken(t, token.Service, "acme", "globex"),
		{ID: strings.Repeat("0", 32), Kind: token.Operator, Hash: [32]byte{1}}, // zero times, empty name
	} {
		must(t, st.CreateToken(ctx, r))
		got, err := st.Token(ctx, r.ID)
		if err != nil {
			t.Fatalf("Token(%s): %v", r.ID, err)
		}
		want := r
		want.Created, want.Expires = r.Created.UTC(), r.Expires.UTC()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Token(%s) =\n%+v, want\n%+v", r.ID, got, want)
		}
	}
}

func (s tokenSuite) testCreateErrors(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	good := newToken(t, token.Service, "acme")
	must(t, st.CreateToken(ctx, good))
	mod := func(f func(*token.Record)) token.Record {
		r := newToken(t, token.Service, "acme")
		f(&r)
		return r
	}
	for _, tc := range []struct {
		name string
		r    token.Record
		want error
	}{
		{"duplicate id", good, byok.ErrExists},
		{"unknown tenant", mod(func(r *token.Record) { r.Tenants = []string{"acme", "initech"} }), byok.ErrNotFound},
		{"bad id", mod(func(r *token.Record) { r.ID = "xyz" }), byok.ErrInvalidInput},
		{"bad kind", mod(func(r *token.Record) { r.Kind = "root" }), byok.ErrInvalidInput},
		{"admin of two", mod(func(r *token.Record) { r.Kind, r.Tenants = token.TenantAdmin, []string{"acme", "globex"} }), byok.ErrInvalidInput},
		{"time too late", mod(func(r *token.Record) { r.Expires = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }), byok.ErrInvalidInput},
	} {
		err := st.CreateToken(ctx, tc.r)
		if !errors.Is(err, tc.want) {
			t.Errorf("CreateToken(%s) = %v, want %v", tc.name, err, tc.want)
		}
		if tc.name == "duplicate id" {
			continue
		}
		if _, err := st.Token(ctx, tc.r.ID); !errors.Is(err, byok.ErrNotFound) {
			t.Errorf("after a failed CreateToken(%s), Token = %v, want ErrNotFound: nothing may be written", tc.name, err)
		}
	}
	if _, err := st.Token(ctx, strings.Repeat("f", 32)); !errors.Is(err, byok.ErrNotFound) {
		t.Errorf("Token of an unknown id = %v, want ErrNotFound", err)
	}
}

func (s tokenSuite) testList(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	if got, err := st.ListTokens(ctx, "", 10); err != nil || len(got) != 0 {
		t.Fatalf("ListTokens of an empty store = %v, %v; want an empty list", got, err)
	}
	var ids []string
	for range 5 {
		r := newToken(t, token.Service, "acme", "globex")
		must(t, st.CreateToken(ctx, r))
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	var got []string
	after := ""
	for {
		page, err := st.ListTokens(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			got = append(got, r.ID)
			if !slices.Equal(r.Tenants, []string{"acme", "globex"}) {
				t.Errorf("listed token %s has tenants %q, want acme and globex", r.ID, r.Tenants)
			}
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Errorf("paging ListTokens gave %q, want %q", got, ids)
	}
	if _, err := st.ListTokens(ctx, "", 0); !errors.Is(err, byok.ErrInvalidInput) {
		t.Errorf("ListTokens limit 0 = %v, want ErrInvalidInput", err)
	}
}

func (s tokenSuite) testRevoke(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	r := newToken(t, token.Operator)
	must(t, st.CreateToken(ctx, r))
	first := created.Add(time.Minute)
	must(t, st.RevokeToken(ctx, r.ID, first))
	must(t, st.RevokeToken(ctx, r.ID, first.Add(time.Hour)))
	got, err := st.Token(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Revoked.Equal(first) || got.Active(first) {
		t.Errorf("after two revocations Revoked = %v, active %v; want the first time, %v, and inactive", got.Revoked, got.Active(first), first)
	}
	if err := st.RevokeToken(ctx, strings.Repeat("e", 32), first); !errors.Is(err, byok.ErrNotFound) {
		t.Errorf("RevokeToken of an unknown id = %v, want ErrNotFound", err)
	}
	if err := st.RevokeToken(ctx, r.ID, time.Time{}); !errors.Is(err, byok.ErrInvalidInput) {
		t.Errorf("RevokeToken at the zero time = %v, want ErrInvalidInput", err)
	}
}

func (s tokenSuite) testErrorsHoldNoHash(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	r := newToken(t, token.Service, "acme")
	r.Hash = [32]byte{'S', 'E', 'C', 'R', 'E', 'T'}
	must(t, st.CreateToken(ctx, r))
	bad := r
	bad.Tenants = []string{"nobody"}
	bad.ID = strings.Repeat("a", 32)
	for _, err := range []error{st.CreateToken(ctx, r), st.CreateToken(ctx, bad)} {
		if err == nil {
			t.Fatal("a failing CreateToken succeeded")
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error contains the token hash: %v", err)
		}
	}
}
