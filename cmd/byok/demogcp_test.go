package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/server/token"
)

// The demo seeds a third tenant on Google Cloud KMS (gcpkmsemu) whose Test
// configuration passes, names it in the banner with its tokens and the
// lines that revoke, and, after a restart on the same directory, finds
// the key's name and the platform's roles again.
func TestDemoGCP(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := startDemo(ctx, dir, "127.0.0.1:0", slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !d.gcpTestedOK {
		r, err := d.app.lc.Test(ctx, audit.Actor{Kind: "tenant-admin", ID: "demo"}, demoGCPTenant)
		t.Fatalf("the Google Cloud tenant's Test configuration failed: %v %+v", err, r.Checks)
	}
	var banner bytes.Buffer
	if err := d.printBanner(&banner); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`Tenant "` + demoGCPTenant + `"`, "Google Cloud KMS", d.gcpTokens[token.TenantAdmin], d.gcpTokens[token.Service],
		demoGCPKeyName, demoGCPPlatform, d.gcpEmu.Addr(), d.gcpControl() + "/bindings", filepath.Join(dir, "gcpkmsemu", "ca.pem"), "docs/gcp-setup.md"} {
		if !strings.Contains(banner.String(), want) {
			t.Fatalf("the banner does not show %q:\n%s", want, banner.String())
		}
	}
	env, err := os.ReadFile(filepath.Join(dir, "demo.env"))
	if err != nil || !strings.Contains(string(env), "BYOK_GCP_TOKEN="+d.gcpTokens[token.TenantAdmin]) {
		t.Fatalf("demo.env lacks the Google Cloud tenant's token: %v\n%s", err, env)
	}
	done := make(chan error, 1)
	go func() { done <- d.app.run(ctx, d.ln, "", "") }()
	c := api{t: t, base: d.url, tenant: demoGCPTenant}
	var view struct {
		State    string
		Settings map[string]any
	}
	c.must(d.gcpTokens[token.TenantAdmin], "GET", "/v1/tenants/"+demoGCPTenant+"/key", nil, &view)
	if view.State != "draft" || view.Settings["provider"] != "gcp-kms" || view.Settings["key_id"] != demoGCPKeyName {
		t.Fatalf("the Google Cloud tenant's key: %+v; want draft settings of %s on gcp-kms", view, demoGCPKeyName)
	}
	// The CLI shows the key in plain words.
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(d.gcpTokens[token.TenantAdmin]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	status := mustRun(t, "", []string{"key", "status", "--server", d.url, "--token-file", f, "--tenant", demoGCPTenant})
	if !strings.Contains(status, "Google Cloud KMS (gcp-kms)") || !strings.Contains(status, demoGCPKeyName) {
		t.Fatalf("byok key status of the Google Cloud tenant:\n%s", status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	d.close()

	// A restart on the same directory seeds the emulator's key again.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	d2, err := startDemo(ctx2, dir, "127.0.0.1:0", slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.close()
	r, err := d2.app.lc.Test(ctx2, audit.Actor{Kind: "tenant-admin", ID: "demo"}, demoGCPTenant)
	if err != nil || !r.Passed() {
		t.Fatalf("Test configuration of the Google Cloud tenant after a restart: %v %+v", err, r.Checks)
	}
}
