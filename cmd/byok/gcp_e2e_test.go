package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kmsapi "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/gcpkmsemu"
	"github.com/openbyok/byok/kms/gcpkms"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

const (
	gcpRing    = "projects/customer/locations/global/keyRings/byok"
	gcpKey     = gcpRing + "/cryptoKeys/acme"
	gcpViewer  = "roles/cloudkms.viewer"
	gcpVersion = gcpKey + "/cryptoKeyVersions/"
)

// gcpJourney is byok serve's wiring with a gcp: block (the platform's key
// file, the emulator's endpoint and CA file), on a loopback port, against
// gcpkmsemu reached through the official Cloud KMS client (kms/gcpkms).
// The customer's administrator manages the key through the same client.
type gcpJourney struct {
	t        *testing.T
	emu      *gcpkmsemu.Emulator
	platform string // the platform's service account
	admin    *kmsapi.KeyManagementClient
	c        api
	operator string
}

func startGCPJourney(t *testing.T) *gcpJourney {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	platform, err := emu.CreateServiceAccount("byok-platform", "byok-platform")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "platform-key.json")
	if err := emu.WriteServiceAccountKeyFile(platform, keyFile); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, emu.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	// The customer's administrator and its key ring and key.
	adminEmail, err := emu.CreateServiceAccount("customer", "kms-admin")
	if err != nil {
		t.Fatal(err)
	}
	adminKey, err := emu.CreateServiceAccountKey(adminEmail)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.AddBinding("customer", "roles/cloudkms.admin", "serviceAccount:"+adminEmail); err != nil {
		t.Fatal(err)
	}
	admin, err := kmsapi.NewKeyManagementClient(ctx, emu.ClientOptions(adminKey)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{Parent: "projects/customer/locations/global", KeyRingId: "byok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: gcpRing, CryptoKeyId: "acme",
		CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}}); err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.Store.SQLite = filepath.Join(dir, "byok.db")
	cfg.PlatformKey.File = filepath.Join(dir, "platform.key")
	cfg.Keyring.CheckInterval = e2eCheckInterval
	cfg.Keyring.MaxStaleness = time.Minute
	cfg.GCP = &config.GCP{CredentialsFile: keyFile, Endpoint: emu.Addr(), CAFile: caFile}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{b: &bytes.Buffer{}}
	a, err := openApp(ctx, cfg, appOptions{getenv: func(string) string { return "" }}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, ln, "", "") }()
	t.Cleanup(func() { cancel(); <-done; a.close() })
	operator, _, err := server.IssueToken(ctx, a.db, token.Operator, nil, "e2e", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), platform) {
		t.Errorf("the server's logs do not name the platform's service account %s:\n%s", platform, logs.String())
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), operator) || strings.Contains(logs.String(), "PRIVATE KEY") {
			t.Error("a token or the platform's private key appears in the server's logs")
		}
	})
	return &gcpJourney{t: t, emu: emu, platform: platform, admin: admin, c: api{t: t, base: "http://" + ln.Addr().String()}, operator: operator}
}

// tenant creates a tenant with the scopes chat and analytics and returns
// an API client for it with its admin and service tokens.
func (j *gcpJourney) tenant(id string) (c api, admin, service string) {
	c = j.c
	c.tenant = id
	c.must(j.operator, "POST", "/v1/tenants", map[string]any{"id": id, "policy": "grace", "scopes": []string{"chat", "analytics"}}, nil)
	var adminTok, serviceTok struct{ Token string }
	c.must(j.operator, "POST", "/v1/tokens", map[string]any{"kind": "tenant-admin", "tenants": []string{id}, "name": "admin"}, &adminTok)
	c.must(j.operator, "POST", "/v1/tokens", map[string]any{"kind": "service", "tenants": []string{id}, "name": "app"}, &serviceTok)
	return c, adminTok.Token, serviceTok.Token
}

// rotate makes a new version of the key its primary, as `gcloud kms keys
// versions create --primary` does, and returns its name.
func (j *gcpJourney) rotate() string {
	j.t.Helper()
	ctx := context.Background()
	v, err := j.admin.CreateCryptoKeyVersion(ctx, &kmspb.CreateCryptoKeyVersionRequest{Parent: gcpKey, CryptoKeyVersion: &kmspb.CryptoKeyVersion{}})
	if err != nil {
		j.t.Fatal(err)
	}
	if _, err := j.admin.UpdateCryptoKeyPrimaryVersion(ctx, &kmspb.UpdateCryptoKeyPrimaryVersionRequest{Name: gcpKey, CryptoKeyVersionId: strings.TrimPrefix(v.Name, gcpVersion)}); err != nil {
		j.t.Fatal(err)
	}
	return v.Name
}

// setEnabled enables or disables a version, as `gcloud kms keys versions
// enable|disable` does.
func (j *gcpJourney) setEnabled(version string, enabled bool) {
	j.t.Helper()
	st := kmspb.CryptoKeyVersion_DISABLED
	if enabled {
		st = kmspb.CryptoKeyVersion_ENABLED
	}
	if _, err := j.admin.UpdateCryptoKeyVersion(context.Background(), &kmspb.UpdateCryptoKeyVersionRequest{
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: version, State: st}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"state"}}}); err != nil {
		j.t.Fatal(err)
	}
}

// TestEndToEndGCP runs the customer's journey with a key in Google Cloud
// KMS, reached as the platform's service account that the customer grants
// on the key, through the HTTP API of the real service against gcpkmsemu.
func TestEndToEndGCP(t *testing.T) {
	j := startGCPJourney(t)
	emu := j.emu
	member := "serviceAccount:" + j.platform
	c, admin, service := j.tenant("acme")
	d := data{t: t, c: c, service: service}

	// Configure, then Test: it fails at the permission check, and its
	// remedy is the gcloud line that grants the role.
	c.must(admin, "PUT", "/v1/tenants/acme/key", map[string]any{"provider": "gcp-kms", "key_id": gcpKey}, nil)
	var rep awsReport
	c.must(admin, "POST", "/v1/tenants/acme/key/test", nil, &rep)
	name, _ := gcpkms.ParseKeyName(gcpKey)
	grant := gcpkms.GrantCommand(name, j.platform, gcpkms.RoleEncrypterDecrypter)
	if fail, remedy := rep.firstFailure(); rep.Passed || fail != gcpkms.CheckPermissions || !strings.Contains(remedy, grant) {
		t.Fatalf("Test without the role: passed %v, first failure %s with remedy %q; want %s with the line to paste:\n%s", rep.Passed, fail, remedy, gcpkms.CheckPermissions, grant)
	}
	if status, code := c.call(admin, "POST", "/v1/tenants/acme/key/proceed", map[string]any{"enforce_at": time.Now().Add(time.Hour)}, nil); status != 409 {
		t.Fatalf("Proceed after a failed test: %d %s, want 409", status, code)
	}
	// The customer runs the lines (the viewer role lets Test read the key).
	for _, role := range []string{gcpkms.RoleEncrypterDecrypter, gcpViewer} {
		if err := emu.AddBinding(gcpKey, role, member); err != nil {
			t.Fatal(err)
		}
	}
	c.must(admin, "POST", "/v1/tenants/acme/key/test", nil, &rep)
	if !rep.Passed {
		t.Fatalf("Test fails with the roles granted: %+v", rep.Checks)
	}

	// Proceed: chat is covered, analytics is not.
	c.must(admin, "POST", "/v1/tenants/acme/key/proceed", map[string]any{
		"enforce_at": time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano),
		"coverage":   map[string]any{"all": true, "exclude": []string{"analytics"}},
	}, nil)
	waitFor(t, "activation", 30*time.Second, func() bool { return c.status(admin).State == "active" })
	v1 := gcpVersion + "1"
	if cur := c.status(admin).CurrentKeyID; cur != v1 {
		t.Fatalf("current key after activation: %s, want the primary version %s", cur, v1)
	}
	chat := d.encrypt("chat", "covered by the customer's key")
	analytics := d.encrypt("analytics", "platform-managed")
	d.mustDecrypt("chat", chat, "covered by the customer's key")

	// The customer rotates: a new primary version. byok re-wraps the share
	// under it; the old version is safe to disable only once the
	// inventory says so, and disabling it then breaks nothing.
	v2 := j.rotate()
	rotateNow(t, c, admin, v2)
	d.mustDecrypt("chat", chat, "covered by the customer's key")
	inv := inventory(c, admin)
	if old, cur := inv[v1], inv[v2]; !old.SafeToRetire || old.Shares != 0 || cur.Shares != 1 || cur.SafeToRetire {
		t.Fatalf("inventory after the rotation: %+v; want %s safe to retire and %s holding the share", inv, v1, v2)
	}
	j.setEnabled(v1, false)
	d.mustDecrypt("chat", chat, "covered by the customer's key")
	d.mustDecrypt("chat", d.encrypt("chat", "after the rotation"), "after the rotation")

	// Revoke by removing the IAM binding: the covered scope fails closed
	// within the check interval, the other keeps working; granting again
	// restores.
	if err := emu.RemoveBinding(gcpKey, gcpkms.RoleEncrypterDecrypter, member); err != nil {
		t.Fatal(err)
	}
	revokedIAM := d.failsClosed("the role was removed", "chat", chat)
	d.mustDecrypt("analytics", analytics, "platform-managed")
	if status, code := c.call(service, "POST", "/v1/tenants/acme/encrypt", map[string]any{"scope": "chat", "plaintext": "eA=="}, nil); status != 403 || code != "key_revoked" {
		t.Fatalf("encrypt in the covered scope after revocation: %d %s", status, code)
	}
	if err := emu.AddBinding(gcpKey, gcpkms.RoleEncrypterDecrypter, member); err != nil {
		t.Fatal(err)
	}
	restoredIAM := d.restored("the role was granted again", "chat", chat)
	waitFor(t, "the monitor marks the key active again", 3*e2eCheckInterval+5*time.Second, func() bool { return c.status(admin).State == "active" })

	// Revoke by disabling the version that holds the share; enabling it
	// restores.
	j.setEnabled(v2, false)
	revokedVersion := d.failsClosed("the version was disabled", "chat", chat)
	d.mustDecrypt("analytics", analytics, "platform-managed")
	j.setEnabled(v2, true)
	restoredVersion := d.restored("the version was enabled", "chat", chat)
	waitFor(t, "the monitor marks the key active again", 3*e2eCheckInterval+5*time.Second, func() bool { return c.status(admin).State == "active" })

	// Disable BYOK, then remove the platform's roles: everything still
	// decrypts.
	c.must(admin, "POST", "/v1/tenants/acme/key/disable", nil, nil)
	waitFor(t, "disable", 30*time.Second, func() bool {
		s := c.status(admin)
		for _, sc := range s.Scopes {
			if sc.Kind != "platform-managed" {
				return false
			}
		}
		return s.State == "disabled"
	})
	for _, role := range []string{gcpkms.RoleEncrypterDecrypter, gcpViewer} {
		if err := emu.RemoveBinding(gcpKey, role, member); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now() // several health checks pass
	waitFor(t, "three check intervals without the roles", 10*e2eCheckInterval+5*time.Second, func() bool {
		d.mustDecrypt("chat", chat, "covered by the customer's key")
		d.mustDecrypt("analytics", analytics, "platform-managed")
		return time.Since(start) > 3*e2eCheckInterval
	})
	d.mustDecrypt("chat", d.encrypt("chat", "after disable"), "after disable")

	// Every Encrypt and Decrypt that succeeded was made as the platform's
	// service account, through the official client.
	used := 0
	for call, n := range emu.Calls() {
		if (call.Method == "Encrypt" || call.Method == "Decrypt") && call.Code == codes.OK {
			if call.Principal != j.platform {
				t.Fatalf("%s as %q, not the platform's service account", call.Method, call.Principal)
			}
			used += n
		}
	}
	if used == 0 {
		t.Fatal("no Encrypt or Decrypt reached the emulator")
	}
	t.Logf("revocation enforced %v after the role was removed, %v after the version was disabled; restored %v after the grant, %v after enabling (check interval %v)",
		revokedIAM.Round(time.Millisecond), revokedVersion.Round(time.Millisecond), restoredIAM.Round(time.Millisecond), restoredVersion.Round(time.Millisecond), e2eCheckInterval)
}

// TestGCPConnectorErrors: byok serve refuses a gcp: block whose files
// cannot serve, saying which setting and why, and says at start which
// service account customers grant.
func TestGCPConnectorErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPEM := write("ca.txt", "not a certificate")
	notJSON := write("key.pem", "-----BEGIN PRIVATE KEY-----")
	for name, tt := range map[string]struct {
		c    config.GCP
		want string
	}{
		"key file missing":  {config.GCP{CredentialsFile: filepath.Join(dir, "none.json")}, "gcp.credentials_file: open"},
		"key file not JSON": {config.GCP{CredentialsFile: notJSON}, "gcp.credentials_file " + notJSON + ": gcp: the platform's Cloud KMS access: gcpkms: the credentials are not JSON"},
		"CA file missing":   {config.GCP{Endpoint: "127.0.0.1:8443", CAFile: filepath.Join(dir, "none.pem")}, "gcp.ca_file: open"},
		"CA file not PEM":   {config.GCP{Endpoint: "127.0.0.1:8443", CAFile: notPEM}, "gcp.ca_file: " + notPEM + " holds no PEM certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := gcpConnector(tt.c, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("gcpConnector = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	for _, tt := range []struct{ sa, want string }{
		{"byok@platform-project.iam.gserviceaccount.com", "service_account=byok@platform-project.iam.gserviceaccount.com"},
		{"", "set gcp.service_account"},
	} {
		var logs bytes.Buffer
		if _, err := gcpConnector(config.GCP{ServiceAccount: tt.sa}, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), tt.want) {
			t.Fatalf("start logs with service account %q: %s; want %q", tt.sa, logs.String(), tt.want)
		}
	}
}
