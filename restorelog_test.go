package byok_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

// The log shows the restoration as it shows the revocation, at the same
// level: byok demo logs warnings only, and showed the one but not the
// other.
func TestRestorationIsLogged(t *testing.T) {
	var log bytes.Buffer
	f := newFixture(t, func(c *byok.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	keyID := f.byokTenant("acme", byok.Grace)
	ct := f.encrypt("acme", "covered", "data")
	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonDenied)
	f.clock.Advance(checkInterval)
	if _, err := f.decrypt("acme", "covered", ct); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Decrypt = %v, want ErrKeyRevoked", err)
	}
	f.cmk.HealKey(keyID)
	f.clock.Advance(checkInterval)
	f.mustDecrypt("acme", "covered", ct, "data")

	out := log.String()
	revoked := strings.Index(out, "tenant key revoked")
	restored := strings.Index(out, "tenant key restored")
	if revoked < 0 || restored < revoked {
		t.Fatalf("the log does not show the revocation, then the restoration:\n%s", out)
	}
	line := out[restored:]
	line = line[:strings.IndexByte(line, '\n')]
	for _, want := range []string{"level=WARN", "tenant=acme", "kind=customer-managed", "was_revoked=true"} {
		if !strings.Contains(out[strings.LastIndex(out[:restored], "\n")+1:restored+len(line)], want) {
			t.Errorf("the restoration line lacks %s: %s", want, line)
		}
	}
}
