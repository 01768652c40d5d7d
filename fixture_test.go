package byok_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/internal/envelope"
	"github.com/openbyok/byok/internal/fakeclock"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/store/sqlite"
)

// fixture is a keyring over a real SQLite file, a fake platform key and a
// fake customer key provider, on a fake clock.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	clock *fakeclock.Clock
	prk   *kmstest.Fake // the platform root key
	cmk   *kmstest.Fake // the tenants' own keys
	db    *sqlite.DB
	kr    *byok.Keyring
	cfg   byok.Config

	mu     sync.Mutex
	events []byok.Event
}

const (
	checkInterval = time.Minute
	maxStaleness  = time.Hour
)

func newFixture(t *testing.T, opts ...func(*byok.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "byok.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{
		t: t, ctx: ctx, db: db,
		clock: fakeclock.New(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)),
		prk:   kmstest.NewFake(),
		cmk:   kmstest.NewFake(),
	}
	prkID := f.prk.AddKey("platform")
	f.cfg = byok.Config{
		Store:         db,
		PlatformKMS:   f.prk,
		PlatformKeyID: prkID,
		CustomerKMS:   func(context.Context, string) (kms.Provider, error) { return f.cmk, nil },
		CheckInterval: checkInterval,
		MaxStaleness:  maxStaleness,
		Now:           f.clock.Now,
		OnEvent: func(e byok.Event) {
			f.mu.Lock()
			f.events = append(f.events, e)
			f.mu.Unlock()
		},
	}
	for _, o := range opts {
		o(&f.cfg)
	}
	f.kr, err = byok.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// tenant creates a platform-managed tenant.
func (f *fixture) tenant(id string, p byok.Policy) {
	f.t.Helper()
	if err := f.kr.CreateTenant(f.ctx, id, p); err != nil {
		f.t.Fatal(err)
	}
}

// byokTenant creates a tenant whose scope "covered" is protected by its own
// key (returned, versionless) and whose scope "other" stays platform-managed.
func (f *fixture) byokTenant(id string, p byok.Policy) string {
	f.t.Helper()
	f.tenant(id, p)
	keyID := f.cmk.AddKey(id)
	if _, err := f.kr.NewTenantKey(f.ctx, id, byok.CustomerManaged, keyID); err != nil {
		f.t.Fatal(err)
	}
	for scope, kind := range map[string]byok.KeyKind{"covered": byok.CustomerManaged, "other": byok.PlatformManaged} {
		if err := f.db.PutScope(f.ctx, byok.ScopeRecord{Tenant: id, Scope: scope, Kind: kind}); err != nil {
			f.t.Fatal(err)
		}
	}
	return keyID
}

func (f *fixture) encrypt(tenant, scope, msg string) []byte {
	f.t.Helper()
	ct, err := f.kr.Encrypt(f.ctx, tenant, scope, []byte(msg), []byte("aad"))
	if err != nil {
		f.t.Fatalf("Encrypt(%s, %s): %v", tenant, scope, err)
	}
	return ct
}

func (f *fixture) decrypt(tenant, scope string, ct []byte) (string, error) {
	pt, err := f.kr.Decrypt(f.ctx, tenant, scope, ct, []byte("aad"))
	return string(pt), err
}

func (f *fixture) mustDecrypt(tenant, scope string, ct []byte, want string) {
	f.t.Helper()
	got, err := f.decrypt(tenant, scope, ct)
	if err != nil {
		f.t.Fatalf("Decrypt(%s, %s): %v", tenant, scope, err)
	}
	if got != want {
		f.t.Fatalf("Decrypt(%s, %s) = %q, want %q", tenant, scope, got, want)
	}
}

// eventTypes returns the types of the events seen so far.
func (f *fixture) eventTypes() []byok.EventType {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ts []byok.EventType
	for _, e := range f.events {
		ts = append(ts, e.Type)
	}
	return ts
}

// dekOf returns the DEK id a ciphertext names.
func dekOf(t *testing.T, ct []byte) envelope.KeyID {
	t.Helper()
	id, err := envelope.ParseID(ct)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
