package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok"
)

func TestChecks(t *testing.T) {
	dek := byok.DEKRecord{ID: byok.DEKID{1}, Tenant: "acme", Scope: "bot", Kind: byok.CustomerManaged, Epoch: 1}
	key := byok.TenantKeyRecord{Tenant: "acme", Kind: byok.PlatformManaged, Epoch: 1}
	with := func(f func(*byok.DEKRecord)) byok.DEKRecord { d := dek; f(&d); return d }
	for _, tc := range []struct {
		name string
		err  error
		want string // in the message; "" for no error
	}{
		{"tenant ok", CheckTenant(byok.TenantRecord{ID: "acme", Policy: byok.Strict}), ""},
		{"tenant at MinTime", CheckTenant(byok.TenantRecord{ID: "acme", Policy: byok.Grace, Created: MinTime}), ""},
		{"tenant at MaxTime", CheckTenant(byok.TenantRecord{ID: "acme", Policy: byok.Grace, Created: MaxTime}), ""},
		{"tenant after MaxTime", CheckTenant(byok.TenantRecord{ID: "acme", Policy: byok.Grace, Created: MaxTime.Add(1)}), "created is 2262"},
		{"tenant before MinTime", CheckTenant(byok.TenantRecord{ID: "acme", Policy: byok.Grace, Created: MinTime.Add(-1)}), "created is 1677"},
		{"tenant empty id", CheckTenant(byok.TenantRecord{Policy: byok.Grace}), "tenant id is empty"},
		{"tenant policy 7", CheckTenant(byok.TenantRecord{ID: "acme", Policy: 7}), "policy is 7; it must be 1 (grace) or 2 (strict)"},
		{"key ok", CheckTenantKey(key), ""},
		{"key kind 0", CheckTenantKey(byok.TenantKeyRecord{Tenant: "acme", Epoch: 1}), "key kind is 0; it must be 1 (platform-managed) or 2 (customer-managed)"},
		{"key epoch 0", CheckTenantKey(byok.TenantKeyRecord{Tenant: "acme", Kind: byok.CustomerManaged}), "epoch is 0; epochs start at 1"},
		{"scope ok", CheckScope(byok.ScopeRecord{Tenant: "acme", Scope: "bot", Kind: byok.CustomerManaged}), ""},
		{"scope empty", CheckScope(byok.ScopeRecord{Tenant: "acme", Kind: byok.CustomerManaged}), "scope id is empty"},
		{"dek ok", CheckDEK(dek), ""},
		{"dek zero id", CheckDEK(with(func(d *byok.DEKRecord) { d.ID = byok.DEKID{} })), "DEK id is all zero"},
		{"dek empty tenant", CheckDEK(with(func(d *byok.DEKRecord) { d.Tenant = "" })), "tenant id is empty"},
		{"dek bad time", CheckDEK(with(func(d *byok.DEKRecord) { d.Created = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) })), "created is 3000"},
		{"rewrap ignores time", CheckRewrap(with(func(d *byok.DEKRecord) { d.Created = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) })), ""},
		{"limit 1", CheckLimit(1), ""},
		{"limit 0", CheckLimit(0), "limit is 0; it must be positive"},
	} {
		if tc.want == "" {
			if tc.err != nil {
				t.Errorf("%s: %v", tc.name, tc.err)
			}
			continue
		}
		if !errors.Is(tc.err, byok.ErrInvalidInput) {
			t.Errorf("%s: error %v does not wrap ErrInvalidInput", tc.name, tc.err)
		} else if !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.name, tc.err, tc.want)
		}
	}
}
