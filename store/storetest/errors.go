package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

func (s suite) testInvalidInput(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	tooLate := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	tooEarly := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	mod := func(f func(*byok.DEKRecord)) byok.DEKRecord {
		d := dek("acme", "bot", cm, 1, 1)
		f(&d)
		return d
	}
	modKey := func(f func(*byok.TenantKeyRecord)) byok.TenantKeyRecord {
		k := tenantKey("acme", cm, 5)
		f(&k)
		return k
	}
	for name, err := range map[string]error{
		"CreateTenant empty id":        st.CreateTenant(ctx, tenant(""), nil),
		"CreateTenant policy 0":        st.CreateTenant(ctx, byok.TenantRecord{ID: "x", Policy: 0}, nil),
		"CreateTenant policy 3":        st.CreateTenant(ctx, byok.TenantRecord{ID: "x", Policy: 3}, nil),
		"CreateTenant time too late":   st.CreateTenant(ctx, byok.TenantRecord{ID: "x", Policy: byok.Grace, Created: tooLate}, nil),
		"CreateTenant time too early":  st.CreateTenant(ctx, byok.TenantRecord{ID: "x", Policy: byok.Grace, Created: tooEarly}, nil),
		"CreateTenant bad key":         st.CreateTenant(ctx, tenant("x"), []byok.TenantKeyRecord{{Tenant: "x", Kind: pm, Epoch: 0}}),
		"PutTenantKey kind 0":          st.PutTenantKey(ctx, modKey(func(k *byok.TenantKeyRecord) { k.Kind = 0 })),
		"PutTenantKey kind 3":          st.PutTenantKey(ctx, modKey(func(k *byok.TenantKeyRecord) { k.Kind = 3 })),
		"PutTenantKey epoch 0":         st.PutTenantKey(ctx, modKey(func(k *byok.TenantKeyRecord) { k.Epoch = 0 })),
		"PutTenantKey empty tenant":    st.PutTenantKey(ctx, modKey(func(k *byok.TenantKeyRecord) { k.Tenant = "" })),
		"PutTenantKey time too late":   st.PutTenantKey(ctx, modKey(func(k *byok.TenantKeyRecord) { k.Created = tooLate })),
		"PutScope empty scope":         st.PutScope(ctx, byok.ScopeRecord{Tenant: "acme", Kind: cm}),
		"PutScope empty tenant":        st.PutScope(ctx, byok.ScopeRecord{Scope: "bot", Kind: cm}),
		"PutScope kind 9":              st.PutScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: 9}),
		"PutDEK zero id":               st.PutDEK(ctx, mod(func(d *byok.DEKRecord) { d.ID = byok.DEKID{} })),
		"PutDEK empty scope":           st.PutDEK(ctx, mod(func(d *byok.DEKRecord) { d.Scope = "" })),
		"PutDEK empty tenant":          st.PutDEK(ctx, mod(func(d *byok.DEKRecord) { d.Tenant = "" })),
		"PutDEK kind 0":                st.PutDEK(ctx, mod(func(d *byok.DEKRecord) { d.Kind = 0 })),
		"PutDEK epoch 0":               st.PutDEK(ctx, mod(func(d *byok.DEKRecord) { d.Epoch = 0 })),
		"PutDEK time too early":        st.PutDEK(ctx, mod(func(d *byok.DEKRecord) { d.Created = tooEarly })),
		"RewrapDEKs zero id":           st.RewrapDEKs(ctx, []byok.DEKRecord{mod(func(d *byok.DEKRecord) { d.ID = byok.DEKID{} })}),
		"RewrapDEKs kind 3":            st.RewrapDEKs(ctx, []byok.DEKRecord{mod(func(d *byok.DEKRecord) { d.Kind = 3 })}),
		"MoveScope kind 0":             st.MoveScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot"}, nil),
		"ReplaceShare epoch 0":         st.ReplaceShare(ctx, "acme", cm, 0, cmkV1, share(cmkV2, 1)),
		"ReplaceShare kind 0":          st.ReplaceShare(ctx, "acme", 0, 1, cmkV1, share(cmkV2, 1)),
		"ReplacePlatformShare tenant":  st.ReplacePlatformShare(ctx, "", cm, 1, prkV1, share(prkV2, 1)),
		"ReplacePlatformShare epoch 0": st.ReplacePlatformShare(ctx, "acme", cm, 0, prkV1, share(prkV2, 1)),
	} {
		wantErr(t, name, err, byok.ErrInvalidInput)
	}
	// Nothing of the above was written.
	ts, err := st.ListTenants(ctx, "", 10)
	must(t, err)
	equal(t, "tenants after invalid input", ts, []byok.TenantRecord{want(tenant("acme"))})
	ds, err := st.ListScopeDEKs(ctx, "acme", "bot", byok.DEKID{}, 10)
	must(t, err)
	equal(t, "DEKs after invalid input", ds, []byok.DEKRecord{})
	_, err = st.Scope(ctx, "acme", "bot")
	wantErr(t, "Scope after invalid input", err, byok.ErrNotFound)
}

// testErrorsHoldNoKeyMaterial provokes errors on records whose wrapped
// bytes are a marker, and looks for the marker in the messages.
func (s suite) testErrorsHoldNoKeyMaterial(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	const marker = "KEY-MATERIAL-MARKER"
	secret := kms.Wrapped{KeyID: prkV1, Algorithm: "A256GCM", Ciphertext: []byte(marker)}
	k := tenantKey("acme", pm, 1)
	k.CustomerShare, k.PlatformShare = secret, secret
	must(t, st.CreateTenant(ctx, tenant("acme"), []byok.TenantKeyRecord{k}))
	d := dek("acme", "bot", pm, 1, 1)
	d.Wrapped = []byte(marker)
	must(t, st.PutDEK(ctx, d))
	bad := d
	bad.Epoch = 9
	for name, err := range map[string]error{
		"CreateTenant duplicate": st.CreateTenant(ctx, tenant("acme"), []byok.TenantKeyRecord{k}),
		"PutTenantKey duplicate": st.PutTenantKey(ctx, k),
		"PutDEK duplicate":       st.PutDEK(ctx, d),
		"PutDEK unknown key":     st.PutDEK(ctx, dek("acme", "bot", pm, 9, 2)),
		"RewrapDEKs unknown key": st.RewrapDEKs(ctx, []byok.DEKRecord{bad}),
		"ReplaceShare conflict":  st.ReplaceShare(ctx, "acme", pm, 1, cmkV1, secret),
	} {
		if err == nil {
			t.Errorf("%s succeeded", name)
		} else if msg := err.Error(); strings.Contains(msg, marker) || strings.Contains(msg, fmt.Sprintf("%x", marker)) {
			t.Errorf("%s: error holds the wrapped bytes: %s", name, msg)
		}
	}
}

func (s suite) testClose(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	must(t, st.CreateTenant(ctx, tenant("acme"), nil))
	must(t, st.Close())
	if _, err := st.Tenant(ctx, "acme"); err == nil {
		t.Error("Tenant after Close succeeded")
	}
	if err := st.CreateTenant(ctx, tenant("globex"), nil); err == nil {
		t.Error("CreateTenant after Close succeeded")
	}
	if _, err := st.ListTenants(context.Background(), "", 1); err == nil {
		t.Error("ListTenants after Close succeeded")
	}
}
