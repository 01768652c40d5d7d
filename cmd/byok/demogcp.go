package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/gcpkmsemu"
	"github.com/openbyok/byok/kms/gcpkms"
	"github.com/openbyok/byok/lifecycle/gcp"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

// The demo's Google Cloud customer "Northwind": a project with a key ring
// and a symmetric key that rotates every 90 days in gcpkmsemu, on which
// the platform's service account holds the two roles byok needs. The
// emulator keeps its keys in memory: each start seeds the same names
// (with new key material), so a restart finds the key and the bindings
// again, but not what was wrapped under the previous material.
const (
	demoGCPTenant   = "northwind"
	demoGCPProject  = "northwind-prod"
	demoGCPLocation = "europe-west1"
	demoGCPRing     = "projects/" + demoGCPProject + "/locations/" + demoGCPLocation + "/keyRings/byok"
	demoGCPKeyName  = demoGCPRing + "/cryptoKeys/byok"
	demoGCPPlatform = "byok-platform@saas-platform.iam.gserviceaccount.com"
	demoGCPAdmin    = "kms-admin@" + demoGCPProject + ".iam.gserviceaccount.com"
)

// startGCP starts gcpkmsemu seeded with the platform's service account
// (its key file in dir/gcpkmsemu/platform-key.json), the customer's admin
// (admin-key.json) and key, and the CA (ca.pem), into d; it returns the
// gcp: block that reaches it.
func (d *demo) startGCP(logger *slog.Logger) (*config.GCP, error) {
	data := filepath.Join(d.dir, "gcpkmsemu")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	platformKey := filepath.Join(data, "platform-key.json")
	member := "serviceAccount:" + demoGCPPlatform
	seed := &gcpkmsemu.Seed{
		Projects: []gcpkmsemu.SeedProject{{ID: "saas-platform"}, {ID: demoGCPProject, Bindings: []gcpkmsemu.SeedBinding{
			{Role: "roles/cloudkms.admin", Members: []string{"serviceAccount:" + demoGCPAdmin}}}}},
		ServiceAccounts: []gcpkmsemu.SeedServiceAccount{
			{Project: "saas-platform", AccountID: "byok-platform", KeyFile: platformKey},
			{Project: demoGCPProject, AccountID: "kms-admin", KeyFile: filepath.Join(data, "admin-key.json")},
		},
		KeyRings: []gcpkmsemu.SeedKeyRing{{Name: demoGCPRing, CryptoKeys: []gcpkmsemu.SeedCryptoKey{{
			ID: "byok", Purpose: "ENCRYPT_DECRYPT", RotationPeriod: (90 * 24 * time.Hour).String(),
			Bindings: []gcpkmsemu.SeedBinding{
				{Role: gcpkms.RoleEncrypterDecrypter, Members: []string{member}},
				{Role: gcpkms.RoleViewer, Members: []string{member}},
			},
		}}}},
	}
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{Logger: logger, Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("starting the Cloud KMS emulator: %w", err)
	}
	caFile := filepath.Join(data, "ca.pem")
	if err := os.WriteFile(caFile, emu.CACertPEM(), 0o600); err != nil {
		emu.Close()
		return nil, err
	}
	d.gcpEmu = emu
	return &config.GCP{CredentialsFile: platformKey, Endpoint: emu.Addr(), CAFile: caFile}, nil
}

// seedGCP creates Northwind's tenant, its settings (the key's resource
// name) and tokens, and runs Test configuration.
func (d *demo) seedGCP(ctx context.Context) error {
	operator := audit.Actor{Kind: "operator", ID: "demo"}
	admin := audit.Actor{Kind: "tenant-admin", ID: "demo"}
	if err := d.app.lc.CreateTenant(ctx, operator, demoGCPTenant, byok.Grace, demoScopes); err != nil {
		return err
	}
	if _, err := d.app.lc.Configure(ctx, admin, demoGCPTenant, gcp.Settings(demoGCPKeyName)); err != nil {
		return err
	}
	report, err := d.app.lc.Test(ctx, admin, demoGCPTenant)
	if err != nil {
		return err
	}
	d.gcpTestedOK = report.Passed()
	for _, k := range []token.Kind{token.TenantAdmin, token.Service} {
		text, _, err := server.IssueToken(ctx, d.app.db, k, []string{demoGCPTenant}, "demo "+demoGCPTenant+" "+string(k), 0)
		if err != nil {
			return err
		}
		d.gcpTokens[k] = text
	}
	return nil
}

// gcpEnv is the demo.env lines of the Google Cloud tenant.
func (d *demo) gcpEnv() string {
	return fmt.Sprintf("export BYOK_GCP_TENANT=%s\nexport BYOK_GCP_TOKEN=%s\nexport BYOK_GCP_SERVICE_TOKEN=%s\n",
		demoGCPTenant, d.gcpTokens[token.TenantAdmin], d.gcpTokens[token.Service])
}

// gcpControl is the base URL of the emulator's HTTP control API.
func (d *demo) gcpControl() string {
	return strings.TrimSuffix(d.gcpEmu.TokenURI(), "/token") + "/control"
}
