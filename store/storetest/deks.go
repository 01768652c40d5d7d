package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
)

// testRoundTrip stores edge values of every field and expects them back
// exactly: nil and empty bytes stay apart, times keep their nanoseconds
// and come back in UTC, the zero time stays zero.
func (s suite) testRoundTrip(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	local := time.Now() // has a monotonic reading and a local zone
	tenants := []byok.TenantRecord{
		{ID: "t-zero-time", Policy: byok.Strict},
		{ID: "t-now", Policy: byok.Grace, Created: local},
		{ID: "t-min", Policy: byok.Grace, Created: store.MinTime},
		{ID: "t-max", Policy: byok.Grace, Created: store.MaxTime},
		{ID: "t-ünïcode ✓ with 'quotes' and \"more\"", Policy: byok.Grace, Created: time.Unix(0, 1)},
	}
	keys := []byok.TenantKeyRecord{
		{Tenant: "t-zero-time", Kind: pm, Epoch: 1}, // all-empty shares, nil ciphertexts
		{Tenant: "t-now", Kind: pm, Epoch: 1,
			CustomerShare: kms.Wrapped{KeyID: prkV1, Ciphertext: []byte{}},
			PlatformShare: kms.Wrapped{KeyID: prkV1, Algorithm: "A256GCM", Ciphertext: []byte{0, 0, 255}},
			Created:       local},
		{Tenant: "t-now", Kind: cm, Epoch: 1<<32 - 1,
			CustomerShare: share(cmkV1, 0), PlatformShare: kms.Wrapped{KeyID: prkV1, Ciphertext: nil},
			Created: created},
	}
	for _, tr := range tenants {
		var ks []byok.TenantKeyRecord
		for _, k := range keys {
			if k.Tenant == tr.ID {
				ks = append(ks, k)
			}
		}
		must(t, st.CreateTenant(ctx, tr, ks))
	}
	for _, tr := range tenants {
		got, err := st.Tenant(ctx, tr.ID)
		must(t, err)
		equal(t, "Tenant "+tr.ID, got, want(tr))
	}
	for _, k := range keys {
		got, err := st.TenantKeyEpoch(ctx, k.Tenant, k.Kind, k.Epoch)
		must(t, err)
		equal(t, fmt.Sprintf("TenantKeyEpoch %s %v %d", k.Tenant, k.Kind, k.Epoch), got, want(k))
	}

	deks := []byok.DEKRecord{
		{ID: byok.DEKID{1}, Tenant: "t-now", Scope: "s", Kind: pm, Epoch: 1, Wrapped: nil},
		{ID: byok.DEKID{2}, Tenant: "t-now", Scope: "s", Kind: pm, Epoch: 1, Wrapped: []byte{}, Created: local},
		{ID: byok.DEKID{15: 0xff}, Tenant: "t-now", Scope: "ß/🔑", Kind: cm, Epoch: 1<<32 - 1, Wrapped: make([]byte, 1000), Created: store.MaxTime},
		{ID: byok.DEKID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			Tenant: "t-now", Scope: "s", Kind: pm, Epoch: 1, Wrapped: []byte{0}, Created: store.MinTime},
	}
	for _, d := range deks {
		must(t, st.PutDEK(ctx, d))
	}
	for _, d := range deks {
		got, err := st.DEK(ctx, d.ID)
		must(t, err)
		equal(t, fmt.Sprintf("DEK %x", d.ID), got, want(d))
	}
	got, err := st.ListScopeDEKs(ctx, "t-now", "s", byok.DEKID{}, 10)
	must(t, err)
	equal(t, "ListScopeDEKs", got, sortDEKs([]byok.DEKRecord{deks[0], deks[1], deks[3]}))

	// Rewrapping to nil and to empty keeps them apart too.
	rw := []byok.DEKRecord{deks[0], deks[1]}
	rw[0].Wrapped, rw[1].Wrapped = []byte{}, nil
	must(t, st.RewrapDEKs(ctx, rw))
	for _, d := range rw {
		got, err := st.DEK(ctx, d.ID)
		must(t, err)
		equal(t, fmt.Sprintf("rewrapped DEK %x", d.ID), got, want(d))
	}
}

func (s suite) testScope(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	wantErr(t, "PutScope of unknown tenant", st.PutScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: cm}), byok.ErrNotFound)
	setup(t, st, "acme")
	_, err := st.Scope(ctx, "acme", "bot")
	wantErr(t, "Scope never set", err, byok.ErrNotFound)

	bot := byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: cm}
	must(t, st.PutScope(ctx, bot))
	got, err := st.Scope(ctx, "acme", "bot")
	must(t, err)
	equal(t, "Scope", got, bot)

	bot.Kind = pm
	must(t, st.PutScope(ctx, bot))
	got, err = st.Scope(ctx, "acme", "bot")
	must(t, err)
	equal(t, "Scope after update", got, bot)
	_, err = st.Scope(ctx, "acme", "Bot")
	wantErr(t, "Scope ids are case-sensitive", err, byok.ErrNotFound)
}

func (s suite) testListScopes(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	setup(t, st, "globex")
	got, err := st.ListScopes(ctx, "acme", "", 10)
	must(t, err)
	equal(t, "ListScopes before any", got, []byok.ScopeRecord{})
	var all []byok.ScopeRecord
	for _, id := range []string{"app-1", "app-2", "bot-1", "bot-2", "bot-3"} {
		r := byok.ScopeRecord{Tenant: "acme", Scope: id, Kind: cm}
		must(t, st.PutScope(ctx, r))
		must(t, st.PutScope(ctx, byok.ScopeRecord{Tenant: "globex", Scope: id + "-g", Kind: pm}))
		all = append(all, r)
	}
	got, err = st.ListScopes(ctx, "acme", "", 3)
	must(t, err)
	equal(t, "ListScopes first page", got, all[:3])
	got, err = st.ListScopes(ctx, "acme", got[2].Scope, 3)
	must(t, err)
	equal(t, "ListScopes second page", got, all[3:])
	got, err = st.ListScopes(ctx, "acme", "bot-3", 3)
	must(t, err)
	equal(t, "ListScopes after the last", got, []byok.ScopeRecord{})
	got, err = st.ListScopes(ctx, "initech", "", 3)
	must(t, err)
	equal(t, "ListScopes of unknown tenant", got, []byok.ScopeRecord{})
	_, err = st.ListScopes(ctx, "acme", "", 0)
	wantErr(t, "ListScopes limit 0", err, byok.ErrInvalidInput)
}

func (s suite) testDEK(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	d := dek("acme", "bot", cm, 2, 1)
	wantErr(t, "PutDEK of unknown tenant", st.PutDEK(ctx, d), byok.ErrNotFound)
	setup(t, st, "acme")
	_, err := st.DEK(ctx, d.ID)
	wantErr(t, "DEK of unknown id", err, byok.ErrNotFound)

	must(t, st.PutDEK(ctx, d))
	got, err := st.DEK(ctx, d.ID)
	must(t, err)
	equal(t, "DEK", got, want(d))

	dup := dek("acme", "app", pm, 1, 1)
	wantErr(t, "PutDEK of existing id", st.PutDEK(ctx, dup), byok.ErrExists)
	got, err = st.DEK(ctx, d.ID)
	must(t, err)
	equal(t, "DEK after failed PutDEK", got, want(d))

	wantErr(t, "PutDEK under unknown epoch", st.PutDEK(ctx, dek("acme", "bot", cm, 3, 2)), byok.ErrNotFound)
	wantErr(t, "PutDEK under unknown epoch of other kind", st.PutDEK(ctx, dek("acme", "bot", pm, 2, 2)), byok.ErrNotFound)
	_, err = st.DEK(ctx, dekID("acme", 2))
	wantErr(t, "DEK after failed PutDEK", err, byok.ErrNotFound)
}

func (s suite) testListDEKs(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	setup(t, st, "globex")
	under := putDEKs(t, st, "acme", "bot", cm, 1, 0, 5)
	under = append(under, putDEKs(t, st, "acme", "app", cm, 1, 5, 5)...)
	second := putDEKs(t, st, "acme", "bot", cm, 2, 10, 3) // a later epoch
	putDEKs(t, st, "acme", "bot", pm, 1, 13, 3)           // other kind
	putDEKs(t, st, "globex", "bot", cm, 1, 0, 5)          // other tenant
	all := sortDEKs(under)

	got, err := st.ListDEKs(ctx, "acme", cm, 2, byok.DEKID{}, 100)
	must(t, err)
	equal(t, "ListDEKs below epoch 2", got, all)
	// Below epoch 3: both epochs, in one walk in id order.
	both := sortDEKs(append(slices.Clone(under), second...))
	got, err = st.ListDEKs(ctx, "acme", cm, 3, byok.DEKID{}, 100)
	must(t, err)
	equal(t, "ListDEKs below epoch 3", got, both)
	got, err = st.ListDEKs(ctx, "acme", cm, 3, both[6].ID, 4)
	must(t, err)
	equal(t, "ListDEKs below epoch 3 after the 7th", got, both[7:11])

	// Page by 3: 3, 3, 3, 1, then empty.
	var paged []byok.DEKRecord
	after := byok.DEKID{}
	for range 10 {
		page, err := st.ListDEKs(ctx, "acme", cm, 2, after, 3)
		must(t, err)
		if len(page) > 3 {
			t.Fatalf("ListDEKs limit 3 returned %d", len(page))
		}
		paged = append(paged, page...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].ID
	}
	equal(t, "ListDEKs paged by 3", paged, all)

	got, err = st.ListDEKs(ctx, "acme", cm, 2, all[len(all)-1].ID, 3)
	must(t, err)
	equal(t, "ListDEKs after the last", got, []byok.DEKRecord{})
	got, err = st.ListDEKs(ctx, "acme", cm, 2, all[4].ID, 5)
	must(t, err)
	equal(t, "ListDEKs exact last page", got, all[5:])
	got, err = st.ListDEKs(ctx, "acme", cm, 1, byok.DEKID{}, 3)
	must(t, err)
	equal(t, "ListDEKs below the first epoch", got, []byok.DEKRecord{})
	got, err = st.ListDEKs(ctx, "initech", cm, 2, byok.DEKID{}, 3)
	must(t, err)
	equal(t, "ListDEKs of unknown tenant", got, []byok.DEKRecord{})
	_, err = st.ListDEKs(ctx, "acme", cm, 2, byok.DEKID{}, 0)
	wantErr(t, "ListDEKs limit 0", err, byok.ErrInvalidInput)
}

func (s suite) testListScopeDEKs(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	setup(t, st, "globex")
	bot := putDEKs(t, st, "acme", "bot", cm, 1, 0, 4)
	bot = append(bot, putDEKs(t, st, "acme", "bot", pm, 1, 4, 3)...) // any kind and epoch
	putDEKs(t, st, "acme", "app", cm, 1, 7, 3)
	putDEKs(t, st, "globex", "bot", cm, 1, 0, 3)
	all := sortDEKs(bot)

	got, err := st.ListScopeDEKs(ctx, "acme", "bot", byok.DEKID{}, 100)
	must(t, err)
	equal(t, "ListScopeDEKs all", got, all)
	got, err = st.ListScopeDEKs(ctx, "acme", "bot", byok.DEKID{}, 1)
	must(t, err)
	equal(t, "ListScopeDEKs limit 1", got, all[:1])
	got, err = st.ListScopeDEKs(ctx, "acme", "bot", all[0].ID, 4)
	must(t, err)
	equal(t, "ListScopeDEKs second page", got, all[1:5])
	got, err = st.ListScopeDEKs(ctx, "acme", "bot", all[4].ID, 4)
	must(t, err)
	equal(t, "ListScopeDEKs last page", got, all[5:])
	got, err = st.ListScopeDEKs(ctx, "acme", "bot", all[6].ID, 4)
	must(t, err)
	equal(t, "ListScopeDEKs after the last", got, []byok.DEKRecord{})
	got, err = st.ListScopeDEKs(ctx, "acme", "chat", byok.DEKID{}, 4)
	must(t, err)
	equal(t, "ListScopeDEKs of unknown scope", got, []byok.DEKRecord{})
	_, err = st.ListScopeDEKs(ctx, "acme", "bot", byok.DEKID{}, -5)
	wantErr(t, "ListScopeDEKs limit -5", err, byok.ErrInvalidInput)
}

// rewrapped returns d as rewrapped under (kind, epoch).
func rewrapped(d byok.DEKRecord, kind byok.KeyKind, epoch uint32) byok.DEKRecord {
	d.Kind, d.Epoch = kind, epoch
	d.Wrapped = fmt.Appendf(nil, "rewrapped %x under %d/%d", d.ID, kind, epoch)
	return d
}

// checkDEKs fails t unless every DEK of ds is stored exactly as in ds.
func checkDEKs(t *testing.T, st store.Store, what string, ds []byok.DEKRecord) {
	t.Helper()
	for _, d := range ds {
		got, err := st.DEK(t.Context(), d.ID)
		if err != nil {
			t.Errorf("%s: DEK %x: %v", what, d.ID, err)
			continue
		}
		equal(t, fmt.Sprintf("%s: DEK %x", what, d.ID), got, want(d))
	}
}

func (s suite) testRewrapDEKs(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	ds := putDEKs(t, st, "acme", "bot", cm, 1, 0, 10)
	must(t, st.RewrapDEKs(ctx, nil))

	var rw []byok.DEKRecord
	for _, d := range ds[:6] {
		r := rewrapped(d, cm, 2)
		r.Created = time.Time{} // ignored: the stored time stays
		rw = append(rw, r)
	}
	must(t, st.RewrapDEKs(ctx, rw))
	for i := range rw {
		rw[i].Created = ds[i].Created
	}
	checkDEKs(t, st, "after RewrapDEKs", append(slices.Clone(rw), ds[6:]...))

	got, err := st.ListDEKs(ctx, "acme", cm, 2, byok.DEKID{}, 100)
	must(t, err)
	equal(t, "ListDEKs below the new epoch", got, sortDEKs(ds[6:]))
	got, err = st.ListDEKs(ctx, "acme", cm, 3, byok.DEKID{}, 100)
	must(t, err)
	equal(t, "ListDEKs below the next epoch", got, sortDEKs(append(slices.Clone(rw), ds[6:]...)))

	// A DEK named twice: the last record wins.
	twice := []byok.DEKRecord{rewrapped(ds[6], cm, 2), rewrapped(ds[6], pm, 1)}
	must(t, st.RewrapDEKs(ctx, twice))
	checkDEKs(t, st, "after RewrapDEKs of one DEK twice", twice[1:])
}

func (s suite) testRewrapDEKsAtomic(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	setup(t, st, "globex")
	ds := putDEKs(t, st, "acme", "bot", cm, 1, 0, 5)
	others := putDEKs(t, st, "globex", "bot", cm, 1, 0, 2)

	for _, tc := range []struct {
		name string
		bad  byok.DEKRecord // goes last in the batch
	}{
		{"unknown id", rewrapped(dek("acme", "bot", cm, 1, 99), cm, 2)},
		{"other tenant's DEK", rewrapped(func() byok.DEKRecord { d := others[0]; d.Tenant = "acme"; return d }(), cm, 2)},
		{"other scope", rewrapped(func() byok.DEKRecord { d := ds[4]; d.Scope = "app"; return d }(), cm, 2)},
		{"unknown tenant key", rewrapped(ds[4], cm, 3)},
	} {
		batch := []byok.DEKRecord{rewrapped(ds[0], cm, 2), rewrapped(ds[1], cm, 2), tc.bad}
		wantErr(t, "RewrapDEKs with "+tc.name, st.RewrapDEKs(ctx, batch), byok.ErrNotFound)
		checkDEKs(t, st, "after RewrapDEKs with "+tc.name, ds)
		checkDEKs(t, st, "other tenant after RewrapDEKs with "+tc.name, others)
	}
}

func (s suite) testMoveScope(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	bot := putDEKs(t, st, "acme", "bot", pm, 1, 0, 4)
	app := putDEKs(t, st, "acme", "app", pm, 1, 4, 2)
	must(t, st.PutScope(ctx, byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: pm}))

	to := byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: cm}
	var rw []byok.DEKRecord
	for _, d := range bot {
		rw = append(rw, rewrapped(d, cm, 2))
	}
	must(t, st.MoveScope(ctx, to, rw))
	got, err := st.Scope(ctx, "acme", "bot")
	must(t, err)
	equal(t, "Scope after MoveScope", got, to)
	checkDEKs(t, st, "after MoveScope", rw)
	checkDEKs(t, st, "other scope after MoveScope", app)

	// A scope never set is inserted; with no DEKs the move is the scope alone.
	chat := byok.ScopeRecord{Tenant: "acme", Scope: "chat", Kind: cm}
	must(t, st.MoveScope(ctx, chat, nil))
	got, err = st.Scope(ctx, "acme", "chat")
	must(t, err)
	equal(t, "Scope after MoveScope of unset scope", got, chat)

	wantErr(t, "MoveScope of unknown tenant", st.MoveScope(ctx, byok.ScopeRecord{Tenant: "initech", Scope: "bot", Kind: cm}, nil), byok.ErrNotFound)
	_, err = st.Scope(ctx, "initech", "bot")
	wantErr(t, "Scope after MoveScope of unknown tenant", err, byok.ErrNotFound)

	// Records that do not fit the move are refused before any write.
	back := byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: pm}
	for name, d := range map[string]byok.DEKRecord{
		"DEK of other scope":  rewrapped(app[0], pm, 1),
		"DEK of other kind":   rewrapped(bot[0], cm, 1),
		"DEK of other tenant": func() byok.DEKRecord { d := rewrapped(bot[0], pm, 1); d.Tenant = "globex"; return d }(),
	} {
		err := st.MoveScope(ctx, back, []byok.DEKRecord{rewrapped(bot[1], pm, 1), d})
		wantErr(t, "MoveScope with "+name, err, byok.ErrInvalidInput)
		got, err := st.Scope(ctx, "acme", "bot")
		must(t, err)
		equal(t, "Scope after MoveScope with "+name, got, to)
		checkDEKs(t, st, "after MoveScope with "+name, rw)
	}
}

func (s suite) testMoveScopeAtomic(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	bot := putDEKs(t, st, "acme", "bot", pm, 1, 0, 3)
	from := byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: pm}
	must(t, st.PutScope(ctx, from))

	to := byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: cm}
	for name, bad := range map[string]byok.DEKRecord{
		"unknown DEK":        rewrapped(dek("acme", "bot", pm, 1, 99), cm, 2),
		"unknown tenant key": rewrapped(bot[2], cm, 7),
	} {
		rw := []byok.DEKRecord{rewrapped(bot[0], cm, 2), rewrapped(bot[1], cm, 2), bad}
		wantErr(t, "MoveScope with "+name, st.MoveScope(ctx, to, rw), byok.ErrNotFound)
		got, err := st.Scope(ctx, "acme", "bot")
		must(t, err)
		equal(t, "Scope after MoveScope with "+name, got, from)
		checkDEKs(t, st, "after MoveScope with "+name, bot)
	}

	// Nor is a scope that was never set left behind.
	chat := byok.ScopeRecord{Tenant: "acme", Scope: "chat", Kind: cm}
	err := st.MoveScope(ctx, chat, []byok.DEKRecord{rewrapped(dek("acme", "chat", pm, 1, 50), cm, 2)})
	wantErr(t, "MoveScope of unset scope with unknown DEK", err, byok.ErrNotFound)
	_, err = st.Scope(ctx, "acme", "chat")
	wantErr(t, "Scope after failed MoveScope of unset scope", err, byok.ErrNotFound)
}

func (s suite) testReplaceShare(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	k := tenantKey("acme", cm, 2)

	wantErr(t, "ReplaceShare of unknown epoch", st.ReplaceShare(ctx, "acme", cm, 3, cmkV1, share(cmkV2, 7)), byok.ErrNotFound)
	wantErr(t, "ReplaceShare of unknown tenant", st.ReplaceShare(ctx, "initech", cm, 1, cmkV1, share(cmkV2, 7)), byok.ErrNotFound)

	err := st.ReplaceShare(ctx, "acme", cm, 2, cmkV2, share(cmkV2, 7))
	wantErr(t, "ReplaceShare with wrong old key id", err, store.ErrConflict)
	got, err := st.TenantKeyEpoch(ctx, "acme", cm, 2)
	must(t, err)
	equal(t, "tenant key after conflicting ReplaceShare", got, want(k))

	must(t, st.ReplaceShare(ctx, "acme", cm, 2, cmkV1, share(cmkV2, 7)))
	k.CustomerShare = share(cmkV2, 7)
	got, err = st.TenantKeyEpoch(ctx, "acme", cm, 2)
	must(t, err)
	equal(t, "tenant key after ReplaceShare", got, want(k))
	other, err := st.TenantKeyEpoch(ctx, "acme", cm, 1)
	must(t, err)
	equal(t, "other epoch after ReplaceShare", other, want(tenantKey("acme", cm, 1)))

	// The second of two rotations racing from the same version loses.
	err = st.ReplaceShare(ctx, "acme", cm, 2, cmkV1, share(cmkV2, 8))
	wantErr(t, "ReplaceShare from a replaced version", err, store.ErrConflict)

	// The platform share compares its own key id.
	err = st.ReplacePlatformShare(ctx, "acme", cm, 2, cmkV2, share(prkV2, 5))
	wantErr(t, "ReplacePlatformShare with customer key id", err, store.ErrConflict)
	must(t, st.ReplacePlatformShare(ctx, "acme", cm, 2, prkV1, share(prkV2, 5)))
	k.PlatformShare = share(prkV2, 5)
	got, err = st.TenantKeyEpoch(ctx, "acme", cm, 2)
	must(t, err)
	equal(t, "tenant key after ReplacePlatformShare", got, want(k))
	wantErr(t, "ReplacePlatformShare of unknown epoch", st.ReplacePlatformShare(ctx, "acme", pm, 2, prkV1, share(prkV2, 5)), byok.ErrNotFound)
}

func (s suite) testInventory(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	inv, err := st.ShareInventory(ctx)
	must(t, err)
	equal(t, "ShareInventory of empty store", inv, []store.ShareCount{})
	_, err = st.TenantShareInventory(ctx, "acme")
	wantErr(t, "TenantShareInventory of unknown tenant", err, byok.ErrNotFound)

	must(t, st.CreateTenant(ctx, tenant("empty"), nil))
	inv, err = st.TenantShareInventory(ctx, "empty")
	must(t, err)
	equal(t, "TenantShareInventory of tenant without keys", inv, []store.ShareCount{})

	setup(t, st, "acme") // pm/1: prk, prk; cm/1: cmk, prk; cm/2: cmk, prk
	setup(t, st, "globex")
	inv, err = st.ShareInventory(ctx)
	must(t, err)
	equal(t, "ShareInventory", inv, []store.ShareCount{sc(cmkV1, 4), sc(prkV1, 8)})

	// Rotating acme's customer key to v2, epoch by epoch.
	must(t, st.ReplaceShare(ctx, "acme", cm, 2, cmkV1, share(cmkV2, 1)))
	inv, err = st.TenantShareInventory(ctx, "acme")
	must(t, err)
	equal(t, "TenantShareInventory mid-rotation", inv, []store.ShareCount{sc(cmkV1, 1), sc(cmkV2, 1), sc(prkV1, 4)})
	must(t, st.ReplaceShare(ctx, "acme", cm, 1, cmkV1, share(cmkV2, 1)))
	inv, err = st.TenantShareInventory(ctx, "acme")
	must(t, err)
	equal(t, "TenantShareInventory after rotation: v1 is retirable", inv, []store.ShareCount{sc(cmkV2, 2), sc(prkV1, 4)})
	inv, err = st.TenantShareInventory(ctx, "globex")
	must(t, err)
	equal(t, "TenantShareInventory of other tenant", inv, []store.ShareCount{sc(cmkV1, 2), sc(prkV1, 4)})

	// A new epoch, a platform root key rotation, and DEK rewraps (which
	// are not shares).
	k := tenantKey("globex", cm, 3)
	k.CustomerShare, k.PlatformShare = share(cmkV2, 1), share(prkV2, 1)
	must(t, st.PutTenantKey(ctx, k))
	must(t, st.ReplacePlatformShare(ctx, "acme", pm, 1, prkV1, share(prkV2, 1)))
	ds := putDEKs(t, st, "acme", "bot", cm, 1, 0, 3)
	must(t, st.RewrapDEKs(ctx, []byok.DEKRecord{rewrapped(ds[0], cm, 2)}))
	inv, err = st.ShareInventory(ctx)
	must(t, err)
	equal(t, "ShareInventory at the end", inv, []store.ShareCount{sc(cmkV1, 2), sc(cmkV2, 3), sc(prkV1, 7), sc(prkV2, 2)})
}

// testConcurrentPutDEK writes and reads from many goroutines at once:
// no call may fail with a locking error, and every write is kept.
func (s suite) testConcurrentPutDEK(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	setup(t, st, "acme")
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				d := dek("acme", "bot", cm, 1, w*each+i)
				if err := st.PutDEK(ctx, d); err != nil {
					errs <- err
					continue
				}
				if _, err := st.DEK(ctx, d.ID); err != nil {
					errs <- err
				}
				if _, err := st.Tenant(ctx, "acme"); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := st.ListScopeDEKs(ctx, "acme", "bot", byok.DEKID{}, 2*workers*each)
	must(t, err)
	if len(got) != workers*each {
		t.Errorf("%d DEKs stored by %d concurrent PutDEK, want %d", len(got), workers*each, workers*each)
	}
}
