package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/store"
)

func (s suite) testTenant(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	_, err := st.Tenant(ctx, "acme")
	wantErr(t, "Tenant of unknown tenant", err, byok.ErrNotFound)

	must(t, st.CreateTenant(ctx, tenant("acme"), nil))
	got, err := st.Tenant(ctx, "acme")
	must(t, err)
	equal(t, "Tenant", got, want(tenant("acme")))
	if got.Created.Location() != time.UTC {
		t.Errorf("Created is in %v, want UTC", got.Created.Location())
	}

	dup := tenant("acme")
	dup.Policy = byok.Strict
	wantErr(t, "CreateTenant of existing tenant", st.CreateTenant(ctx, dup, nil), byok.ErrExists)
	got, err = st.Tenant(ctx, "acme")
	must(t, err)
	equal(t, "Tenant after failed CreateTenant", got, want(tenant("acme")))
}

func (s suite) testCreateTenantAtomic(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	// The second key duplicates the first: the insert of the tenant and
	// of the first key must be undone.
	err := st.CreateTenant(ctx, tenant("acme"), []byok.TenantKeyRecord{tenantKey("acme", pm, 1), tenantKey("acme", pm, 1)})
	wantErr(t, "CreateTenant with a duplicate key", err, byok.ErrExists)
	_, err = st.Tenant(ctx, "acme")
	wantErr(t, "Tenant after failed CreateTenant", err, byok.ErrNotFound)
	_, err = st.TenantKey(ctx, "acme", pm)
	wantErr(t, "TenantKey after failed CreateTenant", err, byok.ErrNotFound)
	inv, err := st.ShareInventory(ctx)
	must(t, err)
	equal(t, "ShareInventory after failed CreateTenant", inv, []store.ShareCount{})

	// A key of another tenant is refused before anything is written.
	err = st.CreateTenant(ctx, tenant("acme"), []byok.TenantKeyRecord{tenantKey("acme", pm, 1), tenantKey("globex", pm, 1)})
	wantErr(t, "CreateTenant with a key of another tenant", err, byok.ErrInvalidInput)
	_, err = st.Tenant(ctx, "acme")
	wantErr(t, "Tenant after refused CreateTenant", err, byok.ErrNotFound)

	// And the same tenant can then be created.
	must(t, st.CreateTenant(ctx, tenant("acme"), []byok.TenantKeyRecord{tenantKey("acme", pm, 1)}))
}

func (s suite) testSetTenantPolicy(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	must(t, st.CreateTenant(ctx, tenant("acme"), nil))
	must(t, st.CreateTenant(ctx, tenant("globex"), nil))
	must(t, st.SetTenantPolicy(ctx, "acme", byok.Strict))
	got, err := st.Tenant(ctx, "acme")
	must(t, err)
	if got.Policy != byok.Strict {
		t.Errorf("policy after SetTenantPolicy(Strict) = %v", got.Policy)
	}
	// Setting the same policy again is no error.
	must(t, st.SetTenantPolicy(ctx, "acme", byok.Strict))
	other, err := st.Tenant(ctx, "globex")
	must(t, err)
	equal(t, "other tenant", other, want(tenant("globex")))

	wantErr(t, "SetTenantPolicy of unknown tenant", st.SetTenantPolicy(ctx, "initech", byok.Strict), byok.ErrNotFound)
	wantErr(t, "SetTenantPolicy(0)", st.SetTenantPolicy(ctx, "acme", 0), byok.ErrInvalidInput)
}

func (s suite) testListTenants(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	got, err := st.ListTenants(ctx, "", 10)
	must(t, err)
	equal(t, "ListTenants of empty store", got, []byok.TenantRecord{})

	// Bytewise order: "B" < "a" < "ab" < "b" < "é".
	ids := []string{"ab", "é", "a", "B", "b"}
	for _, id := range ids {
		must(t, st.CreateTenant(ctx, tenant(id), nil))
	}
	slices.Sort(ids)
	var all []byok.TenantRecord
	for _, id := range ids {
		all = append(all, want(tenant(id)))
	}

	got, err = st.ListTenants(ctx, "", 100)
	must(t, err)
	equal(t, "ListTenants all", got, all)

	got, err = st.ListTenants(ctx, "", 2)
	must(t, err)
	equal(t, "ListTenants first page", got, all[:2])
	got, err = st.ListTenants(ctx, got[1].ID, 2)
	must(t, err)
	equal(t, "ListTenants second page", got, all[2:4])
	got, err = st.ListTenants(ctx, got[1].ID, 2)
	must(t, err)
	equal(t, "ListTenants last page", got, all[4:])
	got, err = st.ListTenants(ctx, all[4].ID, 2)
	must(t, err)
	equal(t, "ListTenants after the last", got, []byok.TenantRecord{})
	// The cursor need not be a stored id.
	got, err = st.ListTenants(ctx, "aa", 100)
	must(t, err)
	equal(t, `ListTenants after "aa"`, got, all[2:])

	for _, limit := range []int{0, -1} {
		_, err = st.ListTenants(ctx, "", limit)
		wantErr(t, fmt.Sprintf("ListTenants limit %d", limit), err, byok.ErrInvalidInput)
	}
}

func (s suite) testTenantKey(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	_, err := st.TenantKey(ctx, "acme", pm)
	wantErr(t, "TenantKey of unknown tenant", err, byok.ErrNotFound)
	wantErr(t, "PutTenantKey of unknown tenant", st.PutTenantKey(ctx, tenantKey("acme", pm, 1)), byok.ErrNotFound)

	must(t, st.CreateTenant(ctx, tenant("acme"), []byok.TenantKeyRecord{tenantKey("acme", pm, 1)}))
	_, err = st.TenantKey(ctx, "acme", cm)
	wantErr(t, "TenantKey of a kind the tenant lacks", err, byok.ErrNotFound)

	for _, e := range []uint32{1, 3, 2} {
		must(t, st.PutTenantKey(ctx, tenantKey("acme", cm, e)))
	}
	got, err := st.TenantKey(ctx, "acme", cm)
	must(t, err)
	equal(t, "TenantKey (highest epoch)", got, want(tenantKey("acme", cm, 3)))
	got, err = st.TenantKey(ctx, "acme", pm)
	must(t, err)
	equal(t, "TenantKey platform-managed", got, want(tenantKey("acme", pm, 1)))
	got, err = st.TenantKeyEpoch(ctx, "acme", cm, 2)
	must(t, err)
	equal(t, "TenantKeyEpoch 2", got, want(tenantKey("acme", cm, 2)))
	_, err = st.TenantKeyEpoch(ctx, "acme", cm, 4)
	wantErr(t, "TenantKeyEpoch of unknown epoch", err, byok.ErrNotFound)
	_, err = st.TenantKeyEpoch(ctx, "acme", pm, 2)
	wantErr(t, "TenantKeyEpoch of unknown epoch of other kind", err, byok.ErrNotFound)

	dup := tenantKey("acme", cm, 2)
	dup.CustomerShare = share(cmkV2, 9)
	wantErr(t, "PutTenantKey of existing epoch", st.PutTenantKey(ctx, dup), byok.ErrExists)
	got, err = st.TenantKeyEpoch(ctx, "acme", cm, 2)
	must(t, err)
	equal(t, "TenantKeyEpoch after failed PutTenantKey", got, want(tenantKey("acme", cm, 2)))

	keys, err := st.TenantKeys(ctx, "acme")
	must(t, err)
	equal(t, "TenantKeys", keys, []byok.TenantKeyRecord{
		want(tenantKey("acme", pm, 1)), want(tenantKey("acme", cm, 1)),
		want(tenantKey("acme", cm, 2)), want(tenantKey("acme", cm, 3)),
	})
	keys, err = st.TenantKeys(ctx, "globex")
	must(t, err)
	equal(t, "TenantKeys of unknown tenant", keys, []byok.TenantKeyRecord{})
}

func (s suite) testTenantIsolation(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	setup(t, st, "acme2") // a prefix of the other must not match
	a := putDEKs(t, st, "acme", "bot", cm, 2, 0, 3)
	b := putDEKs(t, st, "acme2", "bot", cm, 2, 0, 3)
	must(t, st.PutScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: cm}))

	_, err := st.Scope(ctx, "acme2", "bot")
	wantErr(t, "Scope of the other tenant", err, byok.ErrNotFound)
	for _, tc := range []struct {
		tenant string
		want   []byok.DEKRecord
	}{{"acme", a}, {"acme2", b}} {
		got, err := st.ListDEKs(ctx, tc.tenant, cm, 3, byok.DEKID{}, 100)
		must(t, err)
		equal(t, "ListDEKs of "+tc.tenant, got, sortDEKs(tc.want))
		got, err = st.ListScopeDEKs(ctx, tc.tenant, "bot", byok.DEKID{}, 100)
		must(t, err)
		equal(t, "ListScopeDEKs of "+tc.tenant, got, sortDEKs(tc.want))
	}

	// A rewrap or a move that names tenant acme cannot touch acme2's DEKs.
	stolen := rewrapped(b[0], cm, 1)
	stolen.Tenant = "acme"
	wantErr(t, "RewrapDEKs of other tenant's DEK", st.RewrapDEKs(ctx, []byok.DEKRecord{stolen}), byok.ErrNotFound)
	wantErr(t, "MoveScope with other tenant's DEK", st.MoveScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: cm},
		[]byok.DEKRecord{stolen}), byok.ErrNotFound)
	checkDEKs(t, st, "other tenant's DEKs", b)

	// Replacing acme's share leaves acme2's alone.
	must(t, st.ReplaceShare(ctx, "acme", cm, 2, cmkV1, share(cmkV2, 1)))
	got, err := st.TenantKeyEpoch(ctx, "acme2", cm, 2)
	must(t, err)
	equal(t, "other tenant's key", got, want(tenantKey("acme2", cm, 2)))
}
