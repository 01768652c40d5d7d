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
azure: {client_id: 1111, client_secret_env: BYOK_AZURE_SECRET}
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
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "not both") || !strings.Contains(err.Error(), "max_staleness") {
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
