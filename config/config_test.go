package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/config"
)

const minimal = `version: v1
store:
  sqlite: /tmp/byok.db
platform_key:
  file: /tmp/platform.key
`

func TestParseMinimalTakesDefaults(t *testing.T) {
	c, err := config.Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Store.SQLite, want.PlatformKey.File = "/tmp/byok.db", "/tmp/platform.key"
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
}

func TestParseFull(t *testing.T) {
	c, err := config.Parse([]byte(minimal + `listen: :8443
tls: {cert_file: c.pem, key_file: k.pem}
keyring:
  check_interval: 5s
  max_staleness: 10m
  dek_max_messages: 1000
  dek_max_age: 1h
azure: {client_id: 11111111-2222-3333-4444-555555555555, client_secret_env: BYOK_AZURE_SECRET}
log: {level: debug, format: text}
console: {secure_cookies: true}
jobs: {lease: 5m, batch_size: 500}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Keyring.CheckInterval != 5*time.Second || c.Keyring.MaxStaleness != 10*time.Minute || c.Keyring.DEKMaxMessages != 1000 || c.Listen != ":8443" || !c.Console.SecureCookies || c.Jobs.Lease != 5*time.Minute || c.Jobs.BatchSize != 500 {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]struct{ file, want string }{
		"empty":          {"", "empty"},
		"no version":     {"listen: :80\n", `add "version: v1"`},
		"future version": {"version: v2\n", `"v2" is not one`},
		"misspelt field": {minimal + "keyrnig: {}\n", "keyrnig"},
		"unknown nested": {minimal + "keyring: {check_intervall: 5s}\n", "check_intervall"},
		"bad duration":   {minimal + "keyring: {check_interval: soon}\n", "soon"},
		"two documents":  {minimal + "---\nversion: v1\n", "more than one YAML document"},
	}
	for name, c := range cases {
		_, err := config.Parse([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one saying %q", name, err, c.want)
		}
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	c := config.Default()
	c.Listen = "8080"
	c.TLS.CertFile = "c.pem"
	c.Keyring.CheckInterval = 10 * time.Millisecond
	c.Keyring.DEKMaxMessages = 1 << 33
	c.Log.Level = "loud"
	c.Jobs = config.Jobs{Lease: time.Second, BatchSize: 0}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken configuration")
	}
	for _, field := range []string{"listen:", "tls:", "store:", "platform_key:", "keyring.check_interval:", "keyring.dek_max_messages:", "log.level:", "jobs.lease:", "jobs.batch_size:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("the error does not name %s:\n%v", field, err)
		}
	}
	c = config.Default()
	c.Store.SQLite = "x.db"
	c.PlatformKey = config.PlatformKey{File: "k", Env: "K"}
	c.Keyring.MaxStaleness = time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "not several") || !strings.Contains(err.Error(), "max_staleness") {
		t.Fatalf("Validate = %v", err)
	}
	c = config.Default()
	c.PlatformKey.File = "k"
	c.Store = config.Store{SQLite: "x.db", Postgres: "dbname=byok"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "store: set sqlite or postgres, not both") {
		t.Fatalf("both stores: %v", err)
	}
	c.Store = config.Store{Postgres: "dbname=byok password=hunter2"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "PGPASSWORD") {
		t.Fatalf("a password in the file: %v", err)
	}
	c.Store = config.Store{Postgres: "host=/run/postgresql dbname=byok"}
	if err := c.Validate(); err != nil {
		t.Fatalf("a PostgreSQL store: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	c, _ := config.Parse([]byte(minimal))
	env := map[string]string{"BYOK_LISTEN": "0.0.0.0:9000", "BYOK_CHECK_INTERVAL": "15s", "BYOK_DEK_MAX_MESSAGES": "42", "BYOK_STORE_SQLITE": "/data/b.db"}
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.Keyring.CheckInterval != 15*time.Second || c.Keyring.DEKMaxMessages != 42 || c.Store.SQLite != "/data/b.db" {
		t.Fatalf("after overrides: %+v", c)
	}
	err := c.ApplyEnv(func(k string) string {
		if k == "BYOK_MAX_STALENESS" {
			return "forever"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "BYOK_MAX_STALENESS") || !strings.Contains(err.Error(), "keyring.max_staleness") {
		t.Fatalf("bad override: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "byok.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, func(k string) string {
		if k == "BYOK_LOG_LEVEL" {
			return "warn"
		}
		return ""
	})
	if err != nil || c.Log.Level != "warn" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := config.Load(filepath.Join(dir, "missing.yaml"), nil); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	os.WriteFile(path, []byte(minimal+"log: {level: loud}\n"), 0o600)
	if _, err := config.Load(path, nil); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "log.level") {
		t.Fatalf("Load of an invalid file = %v, want an error naming the file and the field", err)
	}
}

// production is the configuration of docs/operations.md: no secret in any
// file or variable.
const production = `version: v1
listen: :8080
store:
  postgres: "host=db.internal dbname=byok user=byok sslmode=verify-full"
platform_key:
  azure:
    key_id: https://contoso-byok.managedhsm.azure.net/keys/platform-root
    tenant_id: 11111111-2222-3333-4444-555555555555
    credential:
      managed_identity: {client_id: 22222222-3333-4444-5555-666666666666}
azure:
  tenant_id: 11111111-2222-3333-4444-555555555555
  client_id: 33333333-4444-5555-6666-777777777777
  credential:
    managed_identity: {client_id: 22222222-3333-4444-5555-666666666666}
  managed_identity: {client_id: 22222222-3333-4444-5555-666666666666}
  workload_identity:
    token_file: /var/run/secrets/azure/tokens/azure-identity-token
    issuer: https://oidc.prod-aks.azure.com/abc/
    subject: system:serviceaccount:byok:byok
`

func TestParseProduction(t *testing.T) {
	c, err := config.Parse([]byte(production))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	pk := c.PlatformKey.Azure
	if pk == nil || pk.Credential.Kind() != "managed_identity" || pk.Credential.ManagedIdentity.ClientID != "22222222-3333-4444-5555-666666666666" {
		t.Fatalf("platform_key.azure = %+v", pk)
	}
	if c.Azure.Credential.Kind() != "managed_identity" || c.Azure.WorkloadIdentity == nil || c.Azure.WorkloadIdentity.Subject != "system:serviceaccount:byok:byok" {
		t.Fatalf("azure = %+v", c.Azure)
	}
	// {} is the system-assigned identity, not "no credential".
	c, err = config.Parse([]byte(strings.Replace(production, "managed_identity: {client_id: 22222222-3333-4444-5555-666666666666}\nazure:", "managed_identity: {}\nazure:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.PlatformKey.Azure.Credential.Kind() != "managed_identity" || *c.PlatformKey.Azure.Credential.ManagedIdentity != (config.ManagedIdentity{}) {
		t.Fatalf("system-assigned: %v %+v", err, c.PlatformKey.Azure.Credential)
	}
}

// TestValidateAzureMistakes holds one case per mistake an operator makes in
// the Azure parts of the file; each error names the field and the fix.
func TestValidateAzureMistakes(t *testing.T) {
	const mi = "managed_identity: {client_id: 22222222-3333-4444-5555-666666666666}\nazure:"
	cases := []struct {
		name, old, new string
		want           []string
	}{
		{"file and azure both", "platform_key:\n", "platform_key:\n  file: /tmp/k\n", []string{"platform_key:", "not several"}},
		{"secret id as key", "/keys/platform-root", "/secrets/platform-root", []string{"platform_key.azure.key_id", "must be a key"}},
		{"key id not https", "https://contoso-byok.managedhsm.azure.net/keys/platform-root", "contoso-byok/platform-root", []string{"platform_key.azure.key_id", "not an https key identifier"}},
		{"no key id", "key_id: https://contoso-byok.managedhsm.azure.net/keys/platform-root", "key_id: ''", []string{"platform_key.azure.key_id", "is empty"}},
		{"tenant not a GUID", "    tenant_id: 11111111-2222-3333-4444-555555555555", "    tenant_id: contoso", []string{"platform_key.azure.tenant_id", "GUID"}},
		{"no platform key credential", mi, "{}\nazure:", []string{"platform_key.azure.credential", "is empty"}},
		{"two platform key credentials", mi, "managed_identity: {}\n      client_secret: {client_id: 44444444-5555-6666-7777-888888888888, env: PRK_SECRET}\nazure:", []string{"platform_key.azure.credential", "more than one"}},
		{"client secret without variable", mi, "client_secret: {client_id: 44444444-5555-6666-7777-888888888888}\nazure:", []string{"platform_key.azure.credential.client_secret.env", "environment variable"}},
		{"workload identity without app", mi, "workload_identity: {token_file: /t}\nazure:", []string{"platform_key.azure.credential.workload_identity.client_id", "GUID"}},
		{"certificate without file", mi, "certificate: {client_id: 44444444-5555-6666-7777-888888888888}\nazure:", []string{"platform_key.azure.credential.certificate.file", "PEM file"}},
		{"identity named twice", mi, "managed_identity: {client_id: 22222222-3333-4444-5555-666666666666, resource_id: /subscriptions/x}\nazure:", []string{"platform_key.azure.credential.managed_identity", "one of them"}},
		{"app credential for another app", "  credential:\n    managed_identity: {client_id: 22222222-3333-4444-5555-666666666666}\n  managed_identity",
			"  credential:\n    client_secret: {client_id: 44444444-5555-6666-7777-888888888888, env: S}\n  managed_identity", []string{"azure.credential.client_secret.client_id", "leave it out"}},
		{"legacy secret beside credential", "  client_id: 33333333-4444-5555-6666-777777777777\n", "  client_id: 33333333-4444-5555-6666-777777777777\n  client_secret_env: S\n", []string{"azure.client_secret_env", "keep one"}},
		{"app without tenant", "azure:\n  tenant_id: 11111111-2222-3333-4444-555555555555\n", "azure:\n", []string{"azure.tenant_id", "home of its app"}},
		{"workload federation without issuer", "    issuer: https://oidc.prod-aks.azure.com/abc/\n", "", []string{"azure.workload_identity.issuer", "OIDC issuer"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(production, c.old) {
				t.Fatalf("the case's text %q is not in the production file", c.old)
			}
			cfg, err := config.Parse([]byte(strings.Replace(production, c.old, c.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}
