package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// Two replicas share a PostgreSQL store. Replica B checks keys only once
// an hour; replica A every second. When the customer revokes the role,
// B fails closed as soon as A has seen it — not an hour later — and comes
// back when A sees the role restored.
func TestReplicasEnforceRevocationTogether(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dirID := "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = emu.CreateTenant(kvemu.Tenant{ID: dirID})
	must(err)
	entraApp, err := emu.CreateApp(kvemu.App{TenantID: dirID})
	must(err)
	secret, err := emu.AddSecret(entraApp.ClientID, kvemu.Secret{})
	must(err)
	must(emu.CreateVault(kvemu.VaultConfig{Name: "acme-keys", TenantID: dirID, PurgeProtection: true}))
	_, err = emu.CreateKey("acme-keys", "cmk", kvemu.KeySpec{})
	must(err)
	roleID, err := emu.AssignRole("acme-keys", kvemu.RoleAssignment{PrincipalID: entraApp.ObjectID, Role: "Key Vault Crypto User"})
	must(err)

	dsn := pgtest.NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "platform.key") // one platform key for every replica
	replica := func(name string, interval time.Duration) *app {
		cfg := config.Default()
		cfg.Store.Postgres = dsn
		cfg.PlatformKey.File = keyFile
		cfg.Keyring.CheckInterval, cfg.Keyring.MaxStaleness = interval, 2*interval
		a, err := openApp(ctx, cfg, appOptions{azureTransport: emu.HTTPClient(), getenv: func(string) string { return "" }, replicaID: name},
			slog.New(slog.NewTextHandler(&lockedBuffer{b: &bytes.Buffer{}}, nil)))
		must(err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(err)
		done := make(chan error, 1)
		go func() { done <- a.run(ctx, ln, "", "") }()
		t.Cleanup(func() { cancel(); <-done; a.close() })
		return a
	}
	a := replica("a", time.Second)
	b := replica("b", time.Hour)

	admin := audit.Actor{Kind: audit.TenantAdmin, ID: "alice"}
	must(a.lc.CreateTenant(ctx, audit.Actor{Kind: audit.Operator, ID: "op"}, "acme", byok.Grace, []string{"chat"}))
	_, err = a.lc.Configure(ctx, admin, "acme", azure.Settings("https://acme-keys.vault.azure.net/keys/cmk", azure.Options{DirectoryID: dirID, ClientID: entraApp.ClientID, Credential: azure.CredentialClientSecret}, lifecycle.NewSecret(secret.Value)))
	must(err)
	r, err := a.lc.Test(ctx, admin, "acme")
	must(err)
	if !r.Passed() {
		t.Fatalf("Test configuration: %+v", r.Checks)
	}
	_, err = a.lc.Proceed(ctx, admin, "acme", time.Now().Add(100*time.Millisecond), nil)
	must(err)
	waitFor(t, "activation by replica a", 20*time.Second, func() bool {
		s, err := a.lc.Status(ctx, "acme")
		return err == nil && s.State == lifecycle.StateActive
	})

	kb := b.lc.Keyring()
	var ct []byte
	waitFor(t, "replica b encrypts under the customer's key", 10*time.Second, func() bool {
		ct, err = kb.Encrypt(ctx, "acme", "chat", []byte("covered"), nil)
		if err != nil {
			return false
		}
		for _, h := range kb.Health("acme") {
			if h.Kind == byok.CustomerManaged && h.State == byok.StateHealthy {
				return true
			}
		}
		return false
	})

	must(emu.RevokeRole("acme-keys", roleID))
	took := waitFor(t, "replica b fails closed", time.Second+5*time.Second, func() bool {
		_, err := kb.Decrypt(ctx, "acme", "chat", ct, nil)
		return err != nil
	})
	if _, err := kb.Decrypt(ctx, "acme", "chat", ct, nil); !isRevoked(err) {
		t.Fatalf("replica b after the revocation: %v, want ErrKeyRevoked", err)
	}
	must(emu.RestoreRole("acme-keys", roleID))
	back := waitFor(t, "replica b serves again", time.Second+5*time.Second, func() bool {
		_, err := kb.Decrypt(ctx, "acme", "chat", ct, nil)
		return err == nil
	})
	t.Logf("replica b (checks hourly) enforced the revocation %v after the role was removed, and served again %v after it came back",
		took.Round(time.Millisecond), back.Round(time.Millisecond))
}

func isRevoked(err error) bool { return errors.Is(err, byok.ErrKeyRevoked) }
