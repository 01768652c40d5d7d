package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbyok/byok/awsemu"
)

// On a platform that offers AWS KMS besides Azure, byok key configure
// (whose flags are Azure's) still saves Azure settings, and byok key test
// prints an AWS tenant's report with the statement to paste.
func TestKeyCommandsWithAWS(t *testing.T) {
	j := startAWSJourney(t)
	flags := func(tenant, tok string) []string {
		f := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"--server", j.c.base, "--token-file", f, "--tenant", tenant}
	}
	_, azAdmin, _ := j.tenant("contoso")
	mustRun(t, "s3cret-value\n", args("key configure --key-id https://contoso.vault.azure.net/keys/cmk --directory-id 11111111-2222-3333-4444-555555555555 --client-id 66666666-7777-8888-9999-000000000000 --credential client-secret --secret-file -", flags("contoso", azAdmin)))

	key, err := j.emu.CreateKey(awsemu.KeySpec{Account: awsCustomer, Region: awsRegion})
	if err != nil {
		t.Fatal(err)
	}
	c, admin, _ := j.tenant("initech")
	c.must(admin, "PUT", "/v1/tenants/initech/key", map[string]any{"provider": "aws-kms", "key_id": key.ARN}, nil)
	code, out, errOut := cli(t, "", args("key test", flags("initech", admin))...)
	if code != 1 || !strings.Contains(out, `"kms:EncryptionContext:byok:tenant": "initech"`) || !strings.Contains(out, awsPlatform) {
		t.Fatalf("byok key test of an AWS tenant without the statement: exit %d\n%s%s\nwant exit 1 and the statement to paste", code, out, errOut)
	}
}
