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

// The demo seeds a second tenant on AWS KMS (awsemu) whose Test
// configuration passes, prints its tokens and the aws CLI commands that
// revoke, and finds its key again after a restart.
func TestDemoAWS(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := startDemo(ctx, dir, "127.0.0.1:0", slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !d.awsTestedOK {
		t.Fatal("the AWS tenant's Test configuration failed")
	}
	var banner bytes.Buffer
	if err := d.printBanner(&banner); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{d.awsTokens[token.TenantAdmin], d.awsTokens[token.Service], demoAWSAlias, demoAWSKeyARN,
		"aws kms disable-key", d.awsEmu.Endpoint(), filepath.Join(dir, "awsemu", "ca.pem")} {
		if !strings.Contains(banner.String(), want) {
			t.Fatalf("the banner does not show %q:\n%s", want, banner.String())
		}
	}
	env, err := os.ReadFile(filepath.Join(dir, "demo.env"))
	if err != nil || !strings.Contains(string(env), "BYOK_AWS_TOKEN="+d.awsTokens[token.TenantAdmin]) {
		t.Fatalf("demo.env lacks the AWS tenant's token: %v\n%s", err, env)
	}
	if _, err := os.Stat(filepath.Join(dir, "awsemu", "ca.pem")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.app.run(ctx, d.ln, "", "") }()
	c := api{t: t, base: d.url, tenant: demoAWSTenant}
	var view struct {
		State    string
		Settings map[string]any
	}
	c.must(d.awsTokens[token.TenantAdmin], "GET", "/v1/tenants/"+demoAWSTenant+"/key", nil, &view)
	if view.State != "draft" || view.Settings["provider"] != "aws-kms" || view.Settings["key_id"] != demoAWSAlias {
		t.Fatalf("the AWS tenant's key: %+v; want draft settings of %s on aws-kms", view, demoAWSAlias)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	d.close()

	// A restart on the same directory finds the key, its alias and policy
	// (awsemu's store) and the platform's principal again.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	d2, err := startDemo(ctx2, dir, "127.0.0.1:0", slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.close()
	r, err := d2.app.lc.Test(ctx2, audit.Actor{Kind: "tenant-admin", ID: "demo"}, demoAWSTenant)
	if err != nil || !r.Passed() {
		t.Fatalf("Test configuration of the AWS tenant after a restart: %v %+v", err, r.Checks)
	}
}
