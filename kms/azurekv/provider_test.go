package azurekv

import (
	"strings"
	"testing"

	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/kvemu"
)

func TestConformance(t *testing.T) {
	for _, mode := range []Mode{ModeWrap, ModeEncrypt} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t)
			must(e.emu.CreateKey("contoso", "other", kvemu.KeySpec{Size: 3072}))
			e.grant(t, "contoso", e.app.ObjectID, kvemu.RoleAssignment{Role: "Key Vault Crypto User"})
			cfg := e.config(contoso + "/keys/cmk")
			cfg.Mode = mode
			kmstest.RunConformance(t, kmstest.Harness{
				Provider:         e.provider(t, cfg),
				KeyID:            contoso + "/keys/cmk",
				OtherKeyID:       contoso + "/keys/other",
				UnknownKeyID:     contoso + "/keys/missing",
				UnknownVersionID: contoso + "/keys/cmk/" + strings.Repeat("ab", 16),
				NewVersion: func(t testing.TB) string {
					return must(e.emu.RotateKey("contoso", "cmk")).ID
				},
			})
		})
	}
}
