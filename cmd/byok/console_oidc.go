package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/server/console"
	"github.com/openbyok/byok/store"
)

// consoleSignIn returns the console's session store (the metadata store,
// so that every replica serves every session) and, when console.oidc is
// set, its OpenID Connect configuration with the client secret read from
// the variable client_secret_env names. The issuer is reached through
// azure when it is an *http.Client (the demo's and tests' emulator).
func consoleSignIn(c config.Console, db any, getenv func(string) string, azure any) (store.SessionStore, *console.OIDC, error) {
	sessions, _ := db.(store.SessionStore) // SQLite and PostgreSQL both are
	o := c.OIDC
	if o == nil {
		return sessions, nil, nil
	}
	var secret string
	var assertion func(context.Context) (string, error)
	if o.ClientAssertionFile != "" {
		if _, err := os.Stat(o.ClientAssertionFile); err != nil {
			return nil, nil, fmt.Errorf("console.oidc.client_assertion_file: %w; give the federated token file the console's app trusts (AZURE_FEDERATED_TOKEN_FILE of the workload identity)", err)
		}
		file := o.ClientAssertionFile
		assertion = func(context.Context) (string, error) {
			b, err := os.ReadFile(file) // rotated by the kubelet: read each time
			return strings.TrimSpace(string(b)), err
		}
	} else {
		var err error
		if secret, err = secretFromEnv("console.oidc.client_secret_env", o.ClientSecretEnv, getenv); err != nil {
			return nil, nil, err
		}
	}
	rule := func(r config.OIDCRule) console.Rule {
		out := console.Rule{Tenant: r.Tenant, FromKeySettings: r.FromKeySettings}
		for _, c := range r.Require {
			out.Require = append(out.Require, console.Claim{Name: c.Claim, Value: c.Value})
		}
		return out
	}
	oc := &console.OIDC{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, ClientAssertion: assertion, RedirectURL: o.RedirectURL,
		Scopes: o.Scopes, Label: o.Label, HTTPClient: &http.Client{Timeout: 30 * time.Second}}
	if hc, ok := azure.(*http.Client); ok {
		oc.HTTPClient = hc
	}
	for _, r := range o.Operators {
		oc.Operators = append(oc.Operators, rule(r))
	}
	for _, r := range o.TenantAdmins {
		oc.TenantAdmins = append(oc.TenantAdmins, rule(r))
	}
	return sessions, oc, nil
}
