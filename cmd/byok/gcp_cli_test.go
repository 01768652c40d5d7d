package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbyok/byok/client"
	"github.com/openbyok/byok/kms/gcpkms"
)

// A tenant admin configures a Google Cloud KMS key with the CLI, through
// byok's real entry point against byok serve with a gcp: block over
// gcpkmsemu: the key's resource name alone; byok key status says the
// provider and the key name in plain words; byok key test prints the
// gcloud line that grants the role until the customer runs it, then
// passes. Azure's and AWS's flags are refused with gcp-kms, saying whose
// they are, and the shell completes gcp-kms.
func TestKeyConfigureGCP(t *testing.T) {
	j := startGCPJourney(t)
	c, admin, _ := j.tenant("acme")
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--server", j.c.base, "--token-file", f, "--tenant", "acme"}

	code, out, errOut := cli(t, "", args("key configure --provider gcp-kms --key-id "+gcpKey, flags)...)
	if code != 0 || !strings.Contains(lineWith(t, out, "provider"), "Google Cloud KMS (gcp-kms)") || !strings.Contains(lineWith(t, out, "key name"), gcpKey) ||
		strings.Contains(out, "directory / app") || strings.Contains(out, "key ARN") || strings.Contains(errOut, "external id") {
		t.Fatalf("key configure --provider gcp-kms: exit %d\n%s%s\nwant the provider and the key name, nothing of Azure's or AWS's", code, out, errOut)
	}
	status := mustRun(t, "", args("key status", flags))
	if !strings.Contains(lineWith(t, status, "provider"), "Google Cloud KMS (gcp-kms)") || !strings.Contains(lineWith(t, status, "key name"), gcpKey) ||
		!strings.Contains(lineWith(t, status, "access"), "platform's service account") {
		t.Fatalf("key status of a GCP key:\n%s\nwant the provider, the key name and the access in plain words", status)
	}
	var saved struct{ Settings map[string]any }
	c.must(admin, "GET", "/v1/tenants/acme/key", nil, &saved)
	if saved.Settings["provider"] != "gcp-kms" || saved.Settings["key_id"] != gcpKey {
		t.Fatalf("settings saved: %v; want gcp-kms and %s", saved.Settings, gcpKey)
	}
	var k client.Key
	if err := json.Unmarshal([]byte(mustRun(t, "", args("key status --json", flags))), &k); err != nil || k.Settings.Provider != "gcp-kms" || k.Settings.KeyID != gcpKey {
		t.Fatalf("key status --json: %+v, %v; want gcp-kms and %s", k.Settings, err, gcpKey)
	}

	// Test fails at the permission check with the gcloud line to paste;
	// once the customer grants the roles it passes.
	name, _ := gcpkms.ParseKeyName(gcpKey)
	grant := gcpkms.GrantCommand(name, j.platform, gcpkms.RoleEncrypterDecrypter)
	if code, out, _ := cli(t, "", args("key test", flags)...); code != 1 || !strings.Contains(out, "✗ "+gcpkms.CheckPermissions) || !strings.Contains(out, grant) {
		t.Fatalf("key test without the role: exit %d\n%s\nwant %s failed with the line:\n%s", code, out, gcpkms.CheckPermissions, grant)
	}
	for _, role := range []string{gcpkms.RoleEncrypterDecrypter, gcpViewer} {
		if err := j.emu.AddBinding(gcpKey, role, "serviceAccount:"+j.platform); err != nil {
			t.Fatal(err)
		}
	}
	if out := mustRun(t, "", args("key test", flags)); !strings.Contains(out, "✓ "+gcpkms.CheckPermissions) || !strings.Contains(out, "Test configuration passed") {
		t.Fatalf("key test with the roles granted printed %q", out)
	}

	// Another provider's flags are usage errors that say whose they are;
	// nothing is sent.
	for _, tc := range []struct{ flags, want string }{
		{"--credential platform-app", "--credential: Azure Key Vault's, not Google Cloud KMS's"},
		{"--directory-id d --client-id a --secret-file -", "--directory-id, --client-id, --secret-file: Azure Key Vault's, not Google Cloud KMS's"},
		{"--role-arn arn:aws:iam::111122223333:role/byok-access", "--role-arn: AWS KMS's, not Google Cloud KMS's"},
		{"--external-id byok-x", "--external-id: AWS KMS's, not Google Cloud KMS's"},
	} {
		mustFail(t, 2, tc.want, "secret", args("key configure --provider gcp-kms --key-id "+gcpKey+" "+tc.flags, flags))
	}
	mustFail(t, 2, "--role-arn: AWS KMS's, not Google Cloud KMS's", "", args("key rotate --provider gcp-kms --new-key "+gcpKey+" --role-arn arn:aws:iam::1:role/r", flags))
	if last := lineWith(t, mustRun(t, "", args("key status", flags)), "last test"); !strings.Contains(last, "passed") {
		t.Fatalf("the refused commands changed the settings: last test %q", last)
	}

	// The shell completes gcp-kms for --provider.
	for _, cmd := range []string{"configure", "rotate"} {
		out := mustRun(t, "", []string{"__complete", "key", cmd, "--provider", ""})
		if !strings.Contains(out, "gcp-kms\n") || !strings.Contains(out, "aws-kms\n") {
			t.Fatalf("completion of key %s --provider: %q; want gcp-kms offered", cmd, out)
		}
	}
}
