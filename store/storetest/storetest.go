// Package storetest is the conformance suite of [store.Store]: every
// backend runs [Run] in its tests, so that all backends keep the same
// contract (errors, transactions, ordering, exact round trips).
package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
)

// Run runs the conformance suite. open must return a new, empty store each
// time it is called; Run closes every store it gets.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	s := suite{open: open}
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Tenant", s.testTenant},
		{"CreateTenantAtomic", s.testCreateTenantAtomic},
		{"SetTenantPolicy", s.testSetTenantPolicy},
		{"ListTenants", s.testListTenants},
		{"TenantKey", s.testTenantKey},
		{"RoundTrip", s.testRoundTrip},
		{"Scope", s.testScope},
		{"ListScopes", s.testListScopes},
		{"DEK", s.testDEK},
		{"ListDEKs", s.testListDEKs},
		{"ListScopeDEKs", s.testListScopeDEKs},
		{"RewrapDEKs", s.testRewrapDEKs},
		{"RewrapDEKsAtomic", s.testRewrapDEKsAtomic},
		{"MoveScope", s.testMoveScope},
		{"MoveScopeAtomic", s.testMoveScopeAtomic},
		{"ReplaceShare", s.testReplaceShare},
		{"Inventory", s.testInventory},
		{"TenantIsolation", s.testTenantIsolation},
		{"InvalidInput", s.testInvalidInput},
		{"ErrorsHoldNoKeyMaterial", s.testErrorsHoldNoKeyMaterial},
		{"ConcurrentPutDEK", s.testConcurrentPutDEK},
		{"Close", s.testClose},
	} {
		t.Run(tc.name, tc.f)
	}
}

type suite struct {
	open func(t *testing.T) store.Store
}

// store opens a fresh store that is closed when t ends.
func (s suite) store(t *testing.T) store.Store {
	t.Helper()
	st := s.open(t)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// created is a creation time with nanoseconds, in a zone other than UTC:
// a store gives it back in UTC.
var created = time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.FixedZone("UTC+2", 2*3600))

const (
	pm = byok.PlatformManaged
	cm = byok.CustomerManaged
)

func tenant(id string) byok.TenantRecord {
	return byok.TenantRecord{ID: id, Policy: byok.Grace, Created: created}
}

func share(keyID string, b byte) kms.Wrapped {
	return kms.Wrapped{KeyID: keyID, Algorithm: "RSA-OAEP-256", Ciphertext: []byte{b, b, b, b}}
}

const (
	cmkV1 = "https://contoso.vault.azure.net/keys/byok/v1"
	cmkV2 = "https://contoso.vault.azure.net/keys/byok/v2"
	prkV1 = "local://platform-root/1"
	prkV2 = "local://platform-root/2"
)

func tenantKey(tenant string, kind byok.KeyKind, epoch uint32) byok.TenantKeyRecord {
	c := share(prkV1, 1)
	if kind == cm {
		c = share(cmkV1, 2)
	}
	return byok.TenantKeyRecord{
		Tenant: tenant, Kind: kind, Epoch: epoch,
		CustomerShare: c, PlatformShare: share(prkV1, 3),
		Created: created,
	}
}

// dekID returns a DEK id that depends only on its arguments, so tests are
// reproducible and ids are spread like random ones.
func dekID(tenant string, n int) byok.DEKID {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tenant, n))
	return byok.DEKID(sum[:16])
}

func dek(tenant, scope string, kind byok.KeyKind, epoch uint32, n int) byok.DEKRecord {
	return byok.DEKRecord{
		ID: dekID(tenant, n), Tenant: tenant, Scope: scope, Kind: kind, Epoch: epoch,
		Wrapped: fmt.Appendf(nil, "wrapped %s %d under %d/%d", tenant, n, kind, epoch),
		Created: created.Add(time.Duration(n)),
	}
}

// want returns r as a store gives it back: times in UTC without a
// monotonic reading.
func want[T byok.TenantRecord | byok.TenantKeyRecord | byok.DEKRecord](r T) T {
	switch v := any(&r).(type) {
	case *byok.TenantRecord:
		v.Created = utc(v.Created)
	case *byok.TenantKeyRecord:
		v.Created = utc(v.Created)
	case *byok.DEKRecord:
		v.Created = utc(v.Created)
	}
	return r
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Round(0).UTC()
}

func sc(keyID string, n int) store.ShareCount { return store.ShareCount{KeyID: keyID, Shares: n} }

func sortDEKs(ds []byok.DEKRecord) []byok.DEKRecord {
	ds = slices.Clone(ds)
	slices.SortFunc(ds, func(a, b byok.DEKRecord) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	for i := range ds {
		ds[i] = want(ds[i])
	}
	return ds
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want)
	if g == w { // differ in what %+v hides: nil vs empty, time zones
		g, w = fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", want)
	}
	t.Errorf("%s:\n got %s\nwant %s", what, g, w)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// setup creates tenant id with a platform-managed key of epoch 1 and a
// customer-managed key of epochs 1 and 2.
func setup(t *testing.T, st store.Store, id string) {
	t.Helper()
	must(t, st.CreateTenant(t.Context(), tenant(id), []byok.TenantKeyRecord{
		tenantKey(id, pm, 1), tenantKey(id, cm, 1), tenantKey(id, cm, 2),
	}))
}

// putDEKs stores n DEKs numbered from first and returns them.
func putDEKs(t *testing.T, st store.Store, tenant, scope string, kind byok.KeyKind, epoch uint32, first, n int) []byok.DEKRecord {
	t.Helper()
	var ds []byok.DEKRecord
	for i := first; i < first+n; i++ {
		d := dek(tenant, scope, kind, epoch, i)
		must(t, st.PutDEK(t.Context(), d))
		ds = append(ds, d)
	}
	return ds
}
