package lifecycle_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok/internal/fakeclock"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/lifecycle/lifecycletest"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/store/sqlite"
)

// connector is a lifecycle.Connector over one kmstest.Fake: every key id
// "fake:NAME" of the fake is reachable; testErr makes Test fail a check.
type connector struct {
	lifecycletest.AzureRules
	f *kmstest.Fake

	mu       sync.Mutex
	failTest string // a failing check's detail; "" passes
	tests    int
	tenants  []string // KeySettings.Tenant of every call
}

func (c *connector) Provider(ctx context.Context, s lifecycle.KeySettings) (kms.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tenants = append(c.tenants, s.Tenant)
	return c.f, nil
}

func (c *connector) Test(ctx context.Context, s lifecycle.KeySettings) (lifecycle.Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tests++
	c.tenants = append(c.tenants, s.Tenant)
	r := lifecycle.Report{KeyID: s.KeyID, Checks: []lifecycle.Check{{Name: "uri", Outcome: lifecycle.Pass}}}
	if c.failTest != "" {
		r.Checks = append(r.Checks, lifecycle.Check{Name: "permission", Outcome: lifecycle.Fail, Detail: c.failTest,
			Remedy: "grant Key Vault Crypto User"})
	} else {
		r.Checks = append(r.Checks, lifecycle.Check{Name: "round-trip", Outcome: lifecycle.Pass})
	}
	return r, nil
}

func (c *connector) setFail(detail string) {
	c.mu.Lock()
	c.failTest = detail
	c.mu.Unlock()
}

// auditor records into the real audit log and keeps what it recorded, and
// every event the log refused.
type auditor struct {
	log      *audit.Log
	mu       sync.Mutex
	events   []audit.Event
	refusals []error
}

func (a *auditor) Record(ctx context.Context, e audit.Event) (audit.Event, error) {
	stored, err := a.log.Record(ctx, e)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.refusals = append(a.refusals, err)
		return stored, err
	}
	a.events = append(a.events, stored)
	return stored, nil
}

func (a *auditor) actions() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]int)
	for _, e := range a.events {
		m[e.Action+"/"+string(e.Outcome)]++
	}
	return m
}

// fixture is a service on a fresh SQLite store with fake providers.
type fixture struct {
	t        testing.TB
	dbPath   string
	svc      *lifecycle.Service
	db       *sqlite.DB
	clock    *fakeclock.Clock
	platform *kmstest.Fake
	customer *kmstest.Fake
	conn     *connector
	audit    *auditor
	cmk      string // versionless id of the customer's key
}

var (
	operator = audit.Actor{Kind: audit.Operator, ID: "op"}
	admin    = audit.Actor{Kind: audit.TenantAdmin, ID: "alice"}
	t0       = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

func newFixture(t testing.TB, mod func(*lifecycle.Config)) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "byok.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, clock: fakeclock.New(t0), platform: kmstest.NewFake(), customer: kmstest.NewFake(), audit: &auditor{log: audit.New(db, nil)}, dbPath: path}
	t.Cleanup(func() {
		f.audit.mu.Lock()
		defer f.audit.mu.Unlock()
		for _, err := range f.audit.refusals {
			t.Errorf("the audit log refused an event of the lifecycle: %v", err)
		}
		db.Close()
	})
	prk := f.platform.AddKey("prk")
	f.cmk = f.customer.AddKey("cmk")
	f.conn = &connector{f: f.customer}
	cfg := lifecycle.Config{
		Store: db, PlatformKMS: f.platform, PlatformKeyID: prk, Connectors: []lifecycle.Connector{f.conn}, Audit: f.audit,
		PlatformOnlyScopes: []string{"cache"}, BatchSize: 7, Now: f.clock.Now,
		Keyring: byok.Config{CheckInterval: time.Minute},
	}
	if mod != nil {
		mod(&cfg)
	}
	if f.svc, err = lifecycle.New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) settings() lifecycle.KeySettings {
	return azure.Settings(f.cmk, azure.Options{DirectoryID: "dir-1", ClientID: "app-1", Credential: azure.CredentialPlatformApp}, lifecycle.Secret{})
}

// createTenant creates tenant t1 with scopes a, b and the platform-only
// scope cache.
func (f *fixture) createTenant() {
	f.t.Helper()
	if err := f.svc.CreateTenant(context.Background(), operator, "t1", byok.Grace, []string{"a", "b", "cache"}); err != nil {
		f.t.Fatal(err)
	}
}

// activate takes t1 from nothing to active with coverage cov.
func (f *fixture) activate(cov *lifecycle.Coverage) {
	f.t.Helper()
	ctx := context.Background()
	f.createTenant()
	f.must(f.svc.Configure(ctx, admin, "t1", f.settings()))
	if r, err := f.svc.Test(ctx, admin, "t1"); err != nil || !r.Passed() {
		f.t.Fatalf("Test: %+v, %v", r, err)
	}
	f.must(f.svc.Proceed(ctx, admin, "t1", f.clock.Now().Add(time.Hour), cov))
	f.clock.Advance(time.Hour)
	f.tick()
	f.wantState(lifecycle.StateActive)
}

func (f *fixture) must(ck lifecycle.CustomerKey, err error) lifecycle.CustomerKey {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	return ck
}

func (f *fixture) tick() {
	f.t.Helper()
	if err := f.svc.Tick(context.Background()); err != nil {
		f.t.Fatalf("Tick: %v", err)
	}
}

func (f *fixture) status() lifecycle.CustomerKey {
	f.t.Helper()
	return f.must(f.svc.Status(context.Background(), "t1"))
}

func (f *fixture) wantState(want lifecycle.State) {
	f.t.Helper()
	if got := f.status().State; got != want {
		f.t.Fatalf("state = %s, want %s", got, want)
	}
}

// scopeKinds returns the kind of each scope of t1.
func (f *fixture) scopeKinds() map[string]byok.KeyKind {
	m := make(map[string]byok.KeyKind)
	for _, s := range f.status().Scopes {
		m[s.Scope] = s.Kind
	}
	return m
}

// encrypt seals n messages in scope and returns them.
func (f *fixture) encrypt(scope string, n int) [][]byte {
	f.t.Helper()
	var cts [][]byte
	for i := range n {
		ct, err := f.svc.Keyring().Encrypt(context.Background(), "t1", scope, []byte{byte(i)}, nil)
		if err != nil {
			f.t.Fatalf("Encrypt %s: %v", scope, err)
		}
		cts = append(cts, ct)
	}
	return cts
}

// decryptAll checks that every ciphertext of scope decrypts.
func (f *fixture) decryptAll(scope string, cts [][]byte) {
	f.t.Helper()
	for i, ct := range cts {
		pt, err := f.svc.Keyring().Decrypt(context.Background(), "t1", scope, ct, nil)
		if err != nil || len(pt) != 1 || pt[0] != byte(i) {
			f.t.Fatalf("Decrypt %s #%d: %v", scope, i, err)
		}
	}
}

// withTenant returns s naming tenant.
func withTenant(s lifecycle.KeySettings, tenant string) lifecycle.KeySettings {
	s.Tenant = tenant
	return s
}

// options returns the Azure options of s.
func options(s lifecycle.KeySettings) azure.Options {
	o, _ := azure.OptionsOf(s)
	return o
}

// withOptions returns s with its Azure options changed by mod.
func withOptions(s lifecycle.KeySettings, mod func(*azure.Options)) lifecycle.KeySettings {
	o := options(s)
	mod(&o)
	s.Options = o.JSON()
	return s
}
