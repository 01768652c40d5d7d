package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/config"
)

const consoleOIDC = `console:
  session_lifetime: 4h
  session_idle_timeout: 30m
  oidc:
    issuer: https://login.microsoftonline.com/organizations/v2.0
    client_id: 5b7c3f2e-8a41-4b6e-9c1d-2f0a3b4c5d6e
    client_secret_env: BYOK_OIDC_CLIENT_SECRET
    redirect_url: https://byok.example.com/console/oidc/callback
    operators:
      - require: [{claim: tid, value: 0a1b2c3d-0000-4000-8000-00000000000a}, {claim: groups, value: 6b1c0e2a-1111-4222-8333-444455556666}]
    tenant_admins:
      - tenant: acme
        require: [{claim: tid, value: 0f0f0f0f-0000-4000-8000-0000000000fb}]
      - from_key_settings: true
        require: [{claim: roles, value: BYOK.TenantAdmin}]
`

func TestConsoleOIDC(t *testing.T) {
	c, err := config.Parse([]byte(minimal + consoleOIDC))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	k := c.Console
	if k.SessionLifetime != 4*time.Hour || k.SessionIdleTimeout != 30*time.Minute {
		t.Errorf("session timers %v, %v", k.SessionLifetime, k.SessionIdleTimeout)
	}
	o := k.OIDC
	if o == nil || o.ClientSecretEnv != "BYOK_OIDC_CLIENT_SECRET" || len(o.Operators) != 1 || len(o.Operators[0].Require) != 2 ||
		o.TenantAdmins[0].Tenant != "acme" || !o.TenantAdmins[1].FromKeySettings || o.TenantAdmins[1].Require[0].Value != "BYOK.TenantAdmin" {
		t.Errorf("parsed %+v", o)
	}
	// Without the block: no OIDC, default timers (zero: the console's).
	c, _ = config.Parse([]byte(minimal))
	if c.Console.OIDC != nil || c.Console.SessionLifetime != 0 {
		t.Errorf("minimal config: %+v", c.Console)
	}
}

func TestConsoleOIDCMistakes(t *testing.T) {
	for name, tc := range map[string]struct{ from, to, want string }{
		"http issuer":        {"issuer: https://login", "issuer: http://login", "console.oidc.issuer"},
		"no client id":       {"client_id: 5b7c3f2e-8a41-4b6e-9c1d-2f0a3b4c5d6e", "client_id: ''", "Application (client) ID"},
		"no secret env":      {"client_secret_env: BYOK_OIDC_CLIENT_SECRET", "client_secret_env: ''", "environment variable"},
		"secret and file":    {"client_secret_env: BYOK_OIDC_CLIENT_SECRET", "client_secret_env: X\n    client_assertion_file: /var/run/t", "authenticates with one"},
		"wrong callback":     {"/console/oidc/callback", "/callback", "console.oidc.redirect_url"},
		"plain http":         {"https://byok.example.com/console", "http://byok.example.com/console", "must be https"},
		"operator tenant":    {"  - require: [{claim: tid", "  - tenant: acme\n        require: [{claim: tid", "move it to tenant_admins"},
		"both tenant forms":  {"      - from_key_settings: true", "      - from_key_settings: true\n        tenant: acme", "exactly one of tenant"},
		"empty require":      {"require: [{claim: roles, value: BYOK.TenantAdmin}]", "require: []", "or it would match everyone"},
		"claim no value":     {"{claim: roles, value: BYOK.TenantAdmin}", "{claim: roles}", "tenant_admins[1].require[0]"},
		"idle > lifetime":    {"session_idle_timeout: 30m", "session_idle_timeout: 5h", "console.session_idle_timeout"},
		"lifetime too short": {"session_lifetime: 4h", "session_lifetime: 10s", "console.session_lifetime"},
		"unknown field":      {"client_secret_env:", "client_secret:", "client_secret"},
	} {
		t.Run(name, func(t *testing.T) {
			text := strings.Replace(consoleOIDC, tc.from, tc.to, 1)
			if text == consoleOIDC {
				t.Fatalf("the case changes nothing: %q not found", tc.from)
			}
			c, err := config.Parse([]byte(minimal + text))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
