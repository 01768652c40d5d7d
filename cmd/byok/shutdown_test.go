package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

// On shutdown, the usage counts of the data calls served are flushed into
// the audit log, and run returns without error.
func TestShutdownFlushesUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Store.SQLite = filepath.Join(dir, "byok.db")
	cfg.PlatformKey.File = filepath.Join(dir, "platform.key")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := openApp(ctx, cfg, appOptions{getenv: func(string) string { return "" }}, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.lc.CreateTenant(ctx, audit.Actor{Kind: audit.Operator, ID: "op"}, "acme", byok.Grace, nil); err != nil {
		t.Fatal(err)
	}
	svc, _, err := server.IssueToken(ctx, a.db, token.Service, []string{"acme"}, "app", 0)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, ln, "", "") }()
	c := api{t: t, base: "http://" + ln.Addr().String()}
	for range 3 {
		c.must(svc, "POST", "/v1/tenants/acme/encrypt", map[string]any{"scope": "chat", "plaintext": base64.StdEncoding.EncodeToString([]byte("x"))}, nil)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	events, _, err := a.audit.List(context.Background(), audit.Filter{Tenant: "acme", ActionPrefix: "usage"}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Details["encrypt"] != "3" {
		t.Fatalf("usage after shutdown: %+v, want one event counting 3 encrypts", events)
	}
}
