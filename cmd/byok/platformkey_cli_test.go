package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbyok/byok/client"
	"github.com/openbyok/byok/client/clienttest"
	"github.com/openbyok/byok/kms/local"
)

// TestPlatformKeyCommands rotates the platform root key and moves the
// tenants' shares onto the new version with byok platform-key rekey
// --wait; the inventory then shows the old version safe to retire.
func TestPlatformKeyCommands(t *testing.T) {
	srv := clienttest.New(t, 0)
	op := as(t, srv, srv.Operator)
	for _, id := range []string{"acme", "globex", "initech"} {
		mustRun(t, "", args("tenant create "+id, op))
	}
	out := mustRun(t, "", args("platform-key status", op))
	if !strings.Contains(out, "fake:prk/v1") || !strings.Contains(out, "SHARES") {
		t.Fatalf("status:\n%s", out)
	}
	v2 := srv.Platform.Rotate("fake:prk")
	out = mustRun(t, "", args("platform-key rekey --wait --poll 5ms", op))
	if !strings.Contains(out, "6/6") || !strings.Contains(out, "done") || !strings.Contains(out, "nothing is left") {
		t.Fatalf("rekey --wait:\n%s", out)
	}
	var inv client.Inventory
	if err := json.Unmarshal([]byte(mustRun(t, "", args("platform-key inventory --json", op))), &inv); err != nil {
		t.Fatal(err)
	}
	for _, v := range inv.Versions {
		if v.KeyID == v2 && (!v.Current || v.Shares != 6) {
			t.Fatalf("inventory after the re-key: %+v", inv)
		}
	}
	out = mustRun(t, "", args("platform-key inventory", op))
	if !strings.Contains(out, v2) || !strings.Contains(out, "SAFE TO RETIRE") {
		t.Fatalf("inventory:\n%s", out)
	}
	mustFail(t, 2, "usage: byok platform-key", "", args("platform-key"))
	mustFail(t, 2, "unknown", "", args("platform-key retire", op))
	if _, _, errOut := cli(t, "", args("platform-key rekey -h")...); !strings.Contains(errOut, "safe to retire") {
		t.Fatalf("help of rekey does not explain it:\n%s", errOut)
	}
}

// TestPlatformKeyRotateFile adds a version to a key file; the key file's
// next use wraps under it.
func TestPlatformKeyRotateFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "platform.key")
	k, err := local.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "", args("platform-key rotate --file "+file))
	if !strings.Contains(out, "local:platform/v2") || !strings.Contains(out, "rekey --wait") {
		t.Fatalf("rotate:\n%s", out)
	}
	if info, err := k.Describe(context.Background(), k.KeyID()); err != nil || info.KeyID != "local:platform/v2" {
		t.Fatalf("the key file's current version after rotate: %+v, %v", info, err)
	}
	mustFail(t, 2, "--file is required", "", args("platform-key rotate"))
	mustFail(t, 1, "no such file", "", args("platform-key rotate --file "+file+".missing"))
}
