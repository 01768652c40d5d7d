package azurekv

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok/kvemu"
)

// clock is a settable clock shared by an emulator and a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is an emulator with a platform tenant holding a multi-tenant app, a
// customer tenant holding its own app with a secret, and the customer's
// vault "contoso" (purge protection on) with an RSA-2048 key "cmk", tagged
// byok-tenant=[owner], on which the customer's app is Key Vault Crypto
// Service Encryption User.
type env struct {
	emu      *kvemu.Emulator
	clk      *clock
	customer string // tenant id
	app      kvemu.App
	secret   string
	platform kvemu.App // multi-tenant app in the platform tenant
	platSec  string
	logs     *syncBuffer
}

const contoso = "https://contoso.vault.azure.net"

// owner is the byok tenant id of env's configurations and of cmk's tag.
const owner = "contoso-tenant"

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// must returns v, or panics on a setup error of the emulator's control
// API (which the emulator's own tests cover).
func must[T any](v T, err error) T {
	if err != nil {
		panic("test setup: " + err.Error())
	}
	return v
}

func newEnv(t testing.TB) *env {
	t.Helper()
	resetBudgets() // a hold left by another test's 429 would hold this one's calls
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	emu := must(kvemu.Start(kvemu.Options{Now: clk.Now}))
	t.Cleanup(func() { _ = emu.Close() })
	e := &env{emu: emu, clk: clk, logs: &syncBuffer{}}
	plat := must(emu.CreateTenant(kvemu.Tenant{Name: "platform"}))
	e.platform = must(emu.CreateApp(kvemu.App{TenantID: plat.ID, DisplayName: "byok platform", MultiTenant: true}))
	e.platSec = must(emu.AddSecret(e.platform.ClientID, kvemu.Secret{})).Value
	e.customer = must(emu.CreateTenant(kvemu.Tenant{Name: "contoso"})).ID
	e.app = must(emu.CreateApp(kvemu.App{TenantID: e.customer, DisplayName: "contoso byok"}))
	e.secret = must(emu.AddSecret(e.app.ClientID, kvemu.Secret{})).Value
	if err := emu.CreateVault(kvemu.VaultConfig{Name: "contoso", TenantID: e.customer, PurgeProtection: true}); err != nil {
		t.Fatal(err)
	}
	must(emu.CreateKey("contoso", "cmk", kvemu.KeySpec{Tags: map[string]string{OwnerTagName: owner}}))
	e.grant(t, "contoso", e.app.ObjectID, kvemu.RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})
	return e
}

// grant assigns a role to a principal and returns the assignment id.
func (e *env) grant(t testing.TB, vault, principal string, a kvemu.RoleAssignment) string {
	t.Helper()
	a.PrincipalID = principal
	return must(e.emu.AssignRole(vault, a))
}

// config returns a Config of the customer's app with its secret for key,
// for byok tenant owner.
func (e *env) config(key string) Config {
	return Config{
		KeyID:      key,
		OwnerTag:   owner,
		TenantID:   e.customer,
		Credential: ClientSecret{ClientID: e.app.ClientID, Secret: e.secret},
		Transport:  e.emu.HTTPClient(),
		MaxRetries: -1,
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (e *env) provider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	return must(New(cfg))
}

// recorder is an HTTP transport that records request headers.
type recorder struct {
	next *http.Client
	mu   sync.Mutex
	reqs []http.Header
	urls []string
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Header.Clone())
	r.urls = append(r.urls, req.Method+" "+req.URL.String())
	r.mu.Unlock()
	return r.next.Do(req)
}

var bg = context.Background()
