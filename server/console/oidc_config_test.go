package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/server/console"
)

// TestNewRejectsBadOIDC: New refuses an OIDC configuration that lacks a
// field, maps nobody, or has a rule that would match everyone or names
// its tenant twice or not at all; and a negative idle timeout.
func TestNewRejectsBadOIDC(t *testing.T) {
	f := newFixture(t, false)
	ok := func() *console.OIDC {
		return &console.OIDC{Issuer: "https://login.microsoftonline.com/organizations/v2.0", ClientID: "c", ClientSecret: "s",
			RedirectURL: "https://byok.example.com/console/oidc/callback",
			Operators:   []console.Rule{{Require: []console.Claim{{Name: "groups", Value: "g"}}}}}
	}
	for name, tc := range map[string]struct {
		mod  func(*console.OIDC)
		want string
	}{
		"no secret": {func(o *console.OIDC) { o.ClientSecret = "" }, "ClientSecret"},
		"secret and assertion": {func(o *console.OIDC) {
			o.ClientAssertion = func(context.Context) (string, error) { return "", nil }
		}, "both ClientSecret and ClientAssertion"},
		"no issuer":        {func(o *console.OIDC) { o.Issuer = "" }, "Issuer"},
		"wrong callback":   {func(o *console.OIDC) { o.RedirectURL = "https://byok.example.com/cb" }, "/oidc/callback"},
		"nobody mapped":    {func(o *console.OIDC) { o.Operators = nil }, "maps nobody"},
		"matches everyone": {func(o *console.OIDC) { o.Operators[0].Require = nil }, "Operators[0]"},
		"operator tenant":  {func(o *console.OIDC) { o.Operators[0].Tenant = "acme" }, "Operators[0]"},
		"admin both": {func(o *console.OIDC) {
			o.TenantAdmins = []console.Rule{{Tenant: "a", FromKeySettings: true, Require: o.Operators[0].Require}}
		}, "TenantAdmins[0]"},
		"admin neither": {func(o *console.OIDC) { o.TenantAdmins = []console.Rule{{Require: o.Operators[0].Require}} }, "TenantAdmins[0]"},
	} {
		o := ok()
		tc.mod(o)
		_, err := console.New(console.Config{Lifecycle: f.lc, Tokens: f.db, Audit: audit.New(f.db, nil), OIDC: o})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error naming %s", name, err, tc.want)
		}
	}
	if _, err := console.New(console.Config{Lifecycle: f.lc, Tokens: f.db, Audit: audit.New(f.db, nil), OIDC: ok()}); err != nil {
		t.Errorf("New with a good OIDC configuration: %v", err)
	}
	if _, err := console.New(console.Config{Lifecycle: f.lc, Tokens: f.db, Audit: audit.New(f.db, nil), SessionIdleTimeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "SessionIdleTimeout") {
		t.Errorf("New with a negative idle timeout = %v", err)
	}
}
