package azurekv

import (
	"errors"
	"strings"
	"testing"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kvemu"
)

// consentPlatform consents the customer's tenant to the platform's app and
// makes it Key Vault Crypto Service Encryption User on the vault contoso.
func (e *env) consentPlatform(t testing.TB) {
	t.Helper()
	oid := must(e.emu.Consent(e.customer, e.platform.ClientID))
	e.grant(t, "contoso", oid, kvemu.RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})
}

// platformConfig returns env's configuration of key in platform-app mode.
func (e *env) platformConfig(key string) Config {
	cfg := e.config(key)
	cfg.Credential = PlatformApp{ClientID: e.platform.ClientID, Secret: e.platSec}
	return cfg
}

func TestTagKeyCommand(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{contoso + "/keys/cmk", "az keyvault key set-attributes --vault-name contoso --name cmk --tags byok-tenant=acme"},
		{contoso + "/keys/cmk/0123456789abcdef0123456789abcdef", "az keyvault key set-attributes --vault-name contoso --name cmk --version 0123456789abcdef0123456789abcdef --tags byok-tenant=acme"},
		{"https://hsm1.managedhsm.azure.net/keys/cmk", "az keyvault key set-attributes --hsm-name hsm1 --name cmk --tags byok-tenant=acme"},
	} {
		if got := TagKeyCommand(must(ParseKeyID(tc.key)), "acme"); got != tc.want {
			t.Errorf("TagKeyCommand(%s) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestValidateOwnerTag(t *testing.T) {
	e := newEnv(t)
	cfg := e.platformConfig(contoso + "/keys/cmk")
	cfg.OwnerTag = ""
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Config.OwnerTag is empty") {
		t.Errorf("PlatformApp without OwnerTag: %v, want an error naming OwnerTag", err)
	}
	cfg = e.config(contoso + "/keys/cmk")
	cfg.OwnerTag = ""
	if err := cfg.Validate(); err != nil {
		t.Errorf("the customer's own credential needs no OwnerTag: %v", err)
	}
}

// TestConfigurationOwnership: in platform-app mode the ownership check
// passes only with the owner's tag on the key, and no operation is tried
// on a key without it; with the customer's own app it is skipped.
func TestConfigurationOwnership(t *testing.T) {
	for _, tc := range []struct {
		name string
		tags map[string]string
		cfg  func(e *env) Config
		want Status
	}{
		{"tagged for this tenant", map[string]string{OwnerTagName: owner, "env": "prod"}, func(e *env) Config { return e.platformConfig(contoso + "/keys/cmk") }, Pass},
		{"untagged", map[string]string{}, func(e *env) Config { return e.platformConfig(contoso + "/keys/cmk") }, Fail},
		{"tagged for another tenant", map[string]string{OwnerTagName: "fabrikam-tenant"}, func(e *env) Config { return e.platformConfig(contoso + "/keys/cmk") }, Fail},
		{"tag name in another case", map[string]string{"BYOK-TENANT": owner}, func(e *env) Config { return e.platformConfig(contoso + "/keys/cmk") }, Fail},
		{"own credential, untagged", map[string]string{}, func(e *env) Config { return e.config(contoso + "/keys/cmk") }, Skip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.consentPlatform(t)
			must(0, e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{Tags: tc.tags}))
			r := TestConfiguration(bg, tc.cfg(e))
			c, _ := r.Check(CheckOwnership)
			if c.Status != tc.want {
				t.Fatalf("ownership %s, want %s\n%s", c.Status, tc.want, dump(r))
			}
			wraps := e.emu.CallCount("contoso", kvemu.OpWrapKey, 0)
			switch tc.want {
			case Fail:
				for _, want := range []string{"Key vault > Keys > cmk > the version in use > Tags", "--tags byok-tenant=" + owner} {
					if !strings.Contains(c.Remedy, want) {
						t.Errorf("remedy %q lacks %q", c.Remedy, want)
					}
				}
				if strings.Contains(dump(r), "fabrikam-tenant") {
					t.Error("the report shows the value of another tenant's tag")
				}
				for _, name := range []string{CheckPermissions, CheckRoundTrip, CheckLatency} {
					if c, _ := r.Check(name); c.Status != Skip {
						t.Errorf("%s: %s, want skip after a failed ownership check", name, c.Status)
					}
				}
				if r.OK() || wraps != 0 || len(r.Operations) != 0 {
					t.Errorf("OK %v, %d wrapKey calls, operations %v; want a failed report and no operation", r.OK(), wraps, r.Operations)
				}
			default:
				if !r.OK() || wraps == 0 {
					t.Errorf("OK %v after %d wrapKey calls; want a passing report with a round trip\n%s", r.OK(), wraps, dump(r))
				}
			}
		})
	}
}

// TestWrapRefusesKeyNotOwned: in platform-app mode Wrap refuses a key
// without the owner tag before any wrapKey call; once tagged it wraps,
// describing the key once; Unwrap of an existing value does not check.
func TestWrapRefusesKeyNotOwned(t *testing.T) {
	e := newEnv(t)
	e.consentPlatform(t)
	key := contoso + "/keys/cmk"
	must(0, e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{Tags: map[string]string{}}))

	p := e.provider(t, e.platformConfig(key))
	_, err := p.Wrap(bg, key, make([]byte, 32))
	var ke *kms.Error
	if !errors.As(err, &ke) || ke.Class != kms.Authoritative || ke.Reason != kms.ReasonNotOwned || ke.Op != "wrap" ||
		!errors.Is(err, kms.ErrAuthoritative) || !strings.Contains(err.Error(), "--tags byok-tenant="+owner) {
		t.Fatalf("Wrap of an untagged key: %v, want an authoritative key-not-owned error with the remedy", err)
	}
	if n := e.emu.CallCount("contoso", kvemu.OpWrapKey, 0); n != 0 {
		t.Fatalf("%d wrapKey calls on a key not owned, want 0", n)
	}
	// The customer's own credential needs no tag.
	if _, err := e.provider(t, e.config(key)).Wrap(bg, key, make([]byte, 32)); err != nil {
		t.Fatalf("Wrap with the customer's own app: %v", err)
	}

	// A refusal is not cached: the tag, once set, is seen.
	must(0, e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{Tags: map[string]string{OwnerTagName: owner}}))
	e.emu.ResetCalls()
	w, err := p.Wrap(bg, key, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wrap(bg, key, []byte("share")); err != nil {
		t.Fatal(err)
	}
	if n := e.emu.CallCount("contoso", kvemu.OpGetKey, 0); n != 1 {
		t.Errorf("%d get calls for two wraps, want 1 (the owner check is cached)", n)
	}

	// Data already under the key still unwraps if the tag goes.
	must(0, e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{Tags: map[string]string{}}))
	fresh := e.provider(t, e.platformConfig(key))
	if got, err := fresh.Unwrap(bg, w); err != nil || string(got) != "share" {
		t.Fatalf("Unwrap after the tag was removed: %q, %v", got, err)
	}
	if _, err := fresh.Wrap(bg, key, []byte("share")); kms.ReasonOf(err) != kms.ReasonNotOwned {
		t.Errorf("Wrap after the tag was removed: %v, want key-not-owned", err)
	}
}

// TestDescribeTags: the package's describe reports the version's tags,
// which the owner check reads.
func TestDescribeTags(t *testing.T) {
	e := newEnv(t)
	info, err := e.provider(t, e.config(contoso+"/keys/cmk")).describe(bg, contoso+"/keys/cmk")
	if err != nil || len(info.Tags) != 1 || info.Tags[OwnerTagName] != owner {
		t.Fatalf("describe: tags %v, %v; want %s=%s", info.Tags, err, OwnerTagName, owner)
	}
}

// TestListKeysPlatformAppOwnedOnly: with the platform's app only the
// tenant's tagged keys are listed; the customer's own app sees them all.
func TestListKeysPlatformAppOwnedOnly(t *testing.T) {
	e := newEnv(t)
	e.consentPlatform(t)
	must(e.emu.CreateKey("contoso", "untagged", kvemu.KeySpec{}))
	must(e.emu.CreateKey("contoso", "fabrikam", kvemu.KeySpec{Tags: map[string]string{OwnerTagName: "fabrikam-tenant"}}))

	names := func(cfg Config) []string {
		t.Helper()
		keys, err := ListKeys(bg, cfg, contoso)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range keys {
			out = append(out, k.Name)
		}
		return out
	}
	if got := strings.Join(names(e.platformConfig("")), ","); got != "cmk" {
		t.Errorf("platform app lists %q, want only cmk", got)
	}
	if got := strings.Join(names(e.config("")), ","); got != "cmk,fabrikam,untagged" {
		t.Errorf("the customer's app lists %q, want every key", got)
	}
}
