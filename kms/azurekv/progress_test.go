package azurekv

import (
	"slices"
	"testing"

	"github.com/openbyok/byok/kvemu"
)

// TestConfigurationProgressOrder: progress sees every check of the report,
// in order, each before the next check's vault calls start.
func TestConfigurationProgressOrder(t *testing.T) {
	e := newEnv(t)
	var seen []Check
	callsAt := map[string]int{} // vault calls made when the check was reported
	e.emu.ResetCalls()
	r := TestConfigurationProgress(bg, e.config(contoso+"/keys/cmk"), func(c Check) {
		seen = append(seen, c)
		callsAt[c.Name] = vaultCalls(e.emu)
	})
	if !r.OK() {
		t.Fatalf("report failed:\n%s", dump(r))
	}
	if !slices.Equal(seen, r.Checks) {
		t.Fatalf("progress saw %d checks, the report has %d", len(seen), len(r.Checks))
	}
	// key-read is reported after its get, before the probes of wrapKey
	// and the rest; the round trip comes after the probes.
	if callsAt[CheckKeyRead] == 0 || callsAt[CheckKeyRead] >= callsAt[CheckPermissions] ||
		callsAt[CheckPermissions] >= callsAt[CheckRoundTrip] || callsAt[CheckRoundTrip] >= callsAt[CheckLatency] {
		t.Errorf("vault calls when each check was reported: %v", callsAt)
	}
	if callsAt[CheckKeyURI] != 0 {
		t.Errorf("key-uri was reported after %d vault calls, want before any", callsAt[CheckKeyURI])
	}
}

// TestConfigurationProgressFailing: failing and skipped checks are
// reported too, and a nil progress is TestConfiguration.
func TestConfigurationProgressFailing(t *testing.T) {
	e := newEnv(t)
	noRole := must(e.emu.CreateApp(kvemu.App{TenantID: e.customer, DisplayName: "no role"}))
	cfg := e.config(contoso + "/keys/cmk")
	cfg.Credential = ClientSecret{ClientID: noRole.ClientID, Secret: must(e.emu.AddSecret(noRole.ClientID, kvemu.Secret{})).Value}
	var statuses []Status
	r := TestConfigurationProgress(bg, cfg, func(c Check) { statuses = append(statuses, c.Status) })
	if r.OK() || !slices.Contains(statuses, Fail) || !slices.Contains(statuses, Skip) || len(statuses) != len(r.Checks) {
		t.Fatalf("statuses %v for a report of %d checks:\n%s", statuses, len(r.Checks), dump(r))
	}
	plain := TestConfigurationProgress(bg, cfg, nil)
	if len(plain.Checks) != len(r.Checks) || plain.OK() {
		t.Errorf("nil progress: %d checks, ok %v", len(plain.Checks), plain.OK())
	}
}

// vaultCalls counts the data-plane requests the emulator answered.
func vaultCalls(emu *kvemu.Emulator) int {
	n := 0
	for _, c := range emu.Calls() {
		n += int(c.N)
	}
	return n
}
