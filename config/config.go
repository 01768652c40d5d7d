// Package config is the versioned configuration file of `byok serve`:
// plain structs, strict decoding (an unknown or misspelt field is an
// error, not a silent default), environment overrides, and Validate.
//
// A minimal file:
//
//	version: v1
//	listen: 127.0.0.1:8080
//	store:
//	  sqlite: /var/lib/byok/byok.db
//	platform_key:
//	  file: /var/lib/byok/platform.key
//
// Every other field has a default (see [Default]). The library packages
// never read files or environment variables; only this package and the
// byok command do.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Version is the only file version this package reads.
const Version = "v1"

// Config is the whole configuration of a byok server.
type Config struct {
	Version     string      `yaml:"version"`
	Listen      string      `yaml:"listen"`
	TLS         TLS         `yaml:"tls"`
	Store       Store       `yaml:"store"`
	PlatformKey PlatformKey `yaml:"platform_key"`
	Keyring     Keyring     `yaml:"keyring"`
	Azure       Azure       `yaml:"azure"`
	AWS         *AWS        `yaml:"aws"` // when present, customer keys in AWS KMS are offered (aws.go)
	GCP         *GCP        `yaml:"gcp"` // when present, customer keys in Google Cloud KMS are offered (gcp.go)
	Jobs        Jobs        `yaml:"jobs"`
	Console     Console     `yaml:"console"`
	Log         Log         `yaml:"log"`
}

// Jobs tunes the lifecycle's jobs (activation, re-key, scope moves).
type Jobs struct {
	// Lease is how long a replica holds a job it runs before another
	// replica may take it over; each batch renews it.
	Lease time.Duration `yaml:"lease"`
	// BatchSize is how many DEKs a job re-wraps per transaction.
	BatchSize int `yaml:"batch_size"`
}

// Console tunes the Enterprise Key web console.
type Console struct {
	// SecureCookies marks the console's cookies Secure on plain-HTTP
	// requests too: set it when TLS ends at a proxy in front of byok.
	SecureCookies bool `yaml:"secure_cookies"`
	// SessionLifetime ends a session this long after sign-in, whatever
	// its use; 0 means 8h.
	SessionLifetime time.Duration `yaml:"session_lifetime"`
	// SessionIdleTimeout ends a session unused this long; 0 means 1h.
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout"`
	// OIDC offers sign-in through the platform's OpenID Connect issuer
	// (Entra ID first) next to token sign-in.
	OIDC *ConsoleOIDC `yaml:"oidc"`
}

// ConsoleOIDC is the console's OpenID Connect relying party: its app
// registration and the rules that map ID token claims to roles
// (docs/console.md, "Sign-in").
type ConsoleOIDC struct {
	// Issuer is the issuer URL, e.g.
	// https://login.microsoftonline.com/<platform directory>/v2.0, or
	// https://login.microsoftonline.com/organizations/v2.0 to let
	// customers' admins sign in from their own directories.
	Issuer string `yaml:"issuer"`
	// ClientID is the console's app registration (application id).
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv names the environment variable holding the app's
	// client secret; the secret never goes in the file.
	ClientSecretEnv string `yaml:"client_secret_env"`
	// ClientAssertionFile, instead of ClientSecretEnv, is a federated
	// token file the app trusts (the Kubernetes workload identity's,
	// /var/run/secrets/azure/tokens/azure-identity-token), read at each
	// sign-in: no secret anywhere.
	ClientAssertionFile string `yaml:"client_assertion_file"`
	// RedirectURL is https://<console host>/console/oidc/callback, a Web
	// redirect URI of the app.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes requested; default openid, profile, email.
	Scopes []string `yaml:"scopes"`
	// Label is the sign-in button's text.
	Label string `yaml:"label"`
	// Operators: a user matching any rule is an operator.
	Operators []OIDCRule `yaml:"operators"`
	// TenantAdmins: the first matching rule makes the user admin of its
	// tenant (tenant, or from_key_settings: the tenant whose key settings
	// name the user's directory, the tid claim).
	TenantAdmins []OIDCRule `yaml:"tenant_admins"`
}

// OIDCRule maps ID token claims to a role: every claim of Require must
// hold its value (a list claim, such as groups or roles, must contain it).
type OIDCRule struct {
	Tenant          string      `yaml:"tenant"`
	FromKeySettings bool        `yaml:"from_key_settings"`
	Require         []OIDCClaim `yaml:"require"`
}

// OIDCClaim is one required claim value.
type OIDCClaim struct {
	Claim string `yaml:"claim"`
	Value string `yaml:"value"`
}

// TLS serves HTTPS when both files are set.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Store names where metadata lives: exactly one of the fields.
type Store struct {
	// SQLite is the path of the SQLite database file, created if missing:
	// one replica.
	SQLite string `yaml:"sqlite"`
	// Postgres is a PostgreSQL connection string (libpq form, e.g.
	// "host=db.internal dbname=byok user=byok sslmode=verify-full"),
	// for several replicas sharing one database. Keep the password out
	// of the file: PGPASSWORD or a .pgpass file supply it.
	Postgres string `yaml:"postgres"`
}

// PlatformKey names where the platform root key comes from: exactly one
// of the fields. File is the embedded default for the demo and
// development; Azure is the production choice: the key never leaves the
// platform's own vault or Managed HSM, and no secret need be kept.
type PlatformKey struct {
	// File is a key file, created on first run with mode 0600.
	File string `yaml:"file"`
	// Env is the name of an environment variable holding the key file's
	// content (entries separated by ';').
	Env string `yaml:"env"`
	// Azure is a key in the platform's own Azure Key Vault or Managed HSM.
	Azure *AzureKey `yaml:"azure"`
}

// Keyring tunes the cache and revocation rules.
type Keyring struct {
	CheckInterval  time.Duration `yaml:"check_interval"`
	MaxStaleness   time.Duration `yaml:"max_staleness"`
	DEKMaxMessages uint64        `yaml:"dek_max_messages"`
	DEKMaxAge      time.Duration `yaml:"dek_max_age"`
	// Cache bounds (docs/operations.md, "Cache limits"): zero means the
	// keyring's default, negative no limit (no idle eviction).
	MaxTenantKeys        int           `yaml:"max_tenant_keys"`
	MaxDEKs              int           `yaml:"max_deks"`
	TenantKeyIdleTimeout time.Duration `yaml:"tenant_key_idle_timeout"`
}

// Log sets the server's logs.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Default returns the configuration with every default set and no store
// or platform key chosen.
func Default() Config {
	return Config{
		Version: Version,
		Listen:  "127.0.0.1:8080",
		Keyring: Keyring{
			CheckInterval:  60 * time.Second,
			MaxStaleness:   time.Hour,
			DEKMaxMessages: 1 << 28,
			DEKMaxAge:      24 * time.Hour,
		},
		Jobs: Jobs{Lease: 2 * time.Minute, BatchSize: 1000},
		Log:  Log{Level: "info", Format: "json"},
	}
}

// Load reads a file, applies environment overrides from getenv (nil means
// none) and validates the result.
func Load(path string, getenv func(string) string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if getenv != nil {
		if err := c.ApplyEnv(getenv); err != nil {
			return Config{}, err
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a file's content over [Default]. Unknown fields, a missing
// or unknown version, and trailing documents are errors.
func Parse(data []byte) (Config, error) {
	c := Default()
	c.Version = ""
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("the file is empty; it needs at least \"version: v1\"")
		}
		return Config{}, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("the file holds more than one YAML document; keep one")
	}
	switch c.Version {
	case Version:
	case "":
		return Config{}, fmt.Errorf("version is missing; add \"version: %s\" at the top", Version)
	default:
		return Config{}, fmt.Errorf("version %q is not one this byok reads; it reads %q", c.Version, Version)
	}
	return c, nil
}

// Override is one environment variable that overrides one field.
type Override struct {
	Env   string
	Field string
	set   func(c *Config, v string) error
}

// Overrides lists every environment variable ApplyEnv reads.
var Overrides = []Override{
	{"BYOK_LISTEN", "listen", func(c *Config, v string) error { c.Listen = v; return nil }},
	{"BYOK_STORE_SQLITE", "store.sqlite", func(c *Config, v string) error { c.Store.SQLite = v; return nil }},
	{"BYOK_STORE_POSTGRES", "store.postgres", func(c *Config, v string) error { c.Store.Postgres = v; return nil }},
	{"BYOK_PLATFORM_KEY_FILE", "platform_key.file", func(c *Config, v string) error { c.PlatformKey.File = v; return nil }},
	{"BYOK_CHECK_INTERVAL", "keyring.check_interval", durationSetter(func(c *Config) *time.Duration { return &c.Keyring.CheckInterval })},
	{"BYOK_MAX_STALENESS", "keyring.max_staleness", durationSetter(func(c *Config) *time.Duration { return &c.Keyring.MaxStaleness })},
	{"BYOK_DEK_MAX_AGE", "keyring.dek_max_age", durationSetter(func(c *Config) *time.Duration { return &c.Keyring.DEKMaxAge })},
	{"BYOK_DEK_MAX_MESSAGES", "keyring.dek_max_messages", func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		c.Keyring.DEKMaxMessages = n
		return err
	}},
	{"BYOK_AZURE_CLIENT_ID", "azure.client_id", func(c *Config, v string) error { c.Azure.ClientID = v; return nil }},
	{"BYOK_LOG_LEVEL", "log.level", func(c *Config, v string) error { c.Log.Level = v; return nil }},
	{"BYOK_LOG_FORMAT", "log.format", func(c *Config, v string) error { c.Log.Format = v; return nil }},
}

func durationSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		*field(c) = d
		return err
	}
}

// ApplyEnv sets the fields whose override variable getenv returns
// non-empty.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	for _, o := range Overrides {
		v := getenv(o.Env)
		if v == "" {
			continue
		}
		if err := o.set(c, v); err != nil {
			return fmt.Errorf("config: %s=%q (overrides %s): %v", o.Env, v, o.Field, err)
		}
	}
	return nil
}

// Validate reports every problem of c at once, each naming its field and
// how to fix it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Version != Version {
		bad("version", "is %q; this byok reads %q", c.Version, Version)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "is %q, not host:port; use e.g. 127.0.0.1:8080 or :8443", c.Listen)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "set both cert_file and key_file, or neither (plain HTTP)")
	}
	switch {
	case c.Store.SQLite == "" && c.Store.Postgres == "":
		bad("store", "set sqlite (a database file, e.g. /var/lib/byok/byok.db) or postgres (a connection string, for several replicas)")
	case c.Store.SQLite != "" && c.Store.Postgres != "":
		bad("store", "set sqlite or postgres, not both")
	case strings.Contains(strings.ToLower(c.Store.Postgres), "password="):
		bad("store.postgres", "holds a password; remove it and set PGPASSWORD or use a .pgpass file")
	}
	c.validatePlatformKey(bad)
	k := c.Keyring
	if k.CheckInterval < time.Second {
		bad("keyring.check_interval", "is %v; use at least 1s (default 60s)", k.CheckInterval)
	}
	if k.MaxStaleness < k.CheckInterval {
		bad("keyring.max_staleness", "is %v, shorter than check_interval %v; it must be at least one interval", k.MaxStaleness, k.CheckInterval)
	}
	if k.DEKMaxMessages == 0 || k.DEKMaxMessages > 1<<32 {
		bad("keyring.dek_max_messages", "is %d; use 1 to 2^32 (default 2^28): random nonces must stay far below 2^32 per key", k.DEKMaxMessages)
	}
	if k.DEKMaxAge < time.Minute {
		bad("keyring.dek_max_age", "is %v; use at least 1m (default 24h)", k.DEKMaxAge)
	}
	if c.Jobs.Lease < 10*time.Second {
		bad("jobs.lease", "is %v; use at least 10s (default 2m): a lease shorter than a batch lets replicas take jobs from each other", c.Jobs.Lease)
	}
	if c.Jobs.BatchSize < 1 || c.Jobs.BatchSize > 100_000 {
		bad("jobs.batch_size", "is %d; use 1 to 100000 (default 1000)", c.Jobs.BatchSize)
	}
	c.validateAzure(bad)
	c.validateAWS(bad)
	c.validateGCP(bad)
	c.validateConsole(bad)
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "is %q; use debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "is %q; use json or text", c.Log.Format)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
	}
	return nil
}

// validateConsole checks the session timers and, when set, console.oidc.
func (c *Config) validateConsole(bad func(field, format string, args ...any)) {
	k := c.Console
	if k.SessionLifetime != 0 && k.SessionLifetime < time.Minute {
		bad("console.session_lifetime", "is %v; use at least 1m, or leave it out for 8h", k.SessionLifetime)
	}
	if k.SessionIdleTimeout != 0 && k.SessionIdleTimeout < time.Minute {
		bad("console.session_idle_timeout", "is %v; use at least 1m, or leave it out for 1h", k.SessionIdleTimeout)
	}
	if k.SessionLifetime != 0 && k.SessionIdleTimeout > k.SessionLifetime {
		bad("console.session_idle_timeout", "is %v, longer than session_lifetime %v; it would never end a session", k.SessionIdleTimeout, k.SessionLifetime)
	}
	o := k.OIDC
	if o == nil {
		return
	}
	const f = "console.oidc."
	if u, err := url.Parse(o.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
		bad(f+"issuer", "is %q; give the issuer's https URL, e.g. https://login.microsoftonline.com/<directory id>/v2.0 (or .../organizations/v2.0 for users of any directory)", o.Issuer)
	}
	if o.ClientID == "" {
		bad(f+"client_id", "is empty; give the console's app registration's Application (client) ID")
	}
	switch {
	case o.ClientSecretEnv == "" && o.ClientAssertionFile == "":
		bad(f+"client_secret_env", "and client_assertion_file are both empty; name the environment variable that holds the app's client secret (the secret never goes in the file), or the federated token file the app trusts (workload identity)")
	case o.ClientSecretEnv != "" && o.ClientAssertionFile != "":
		bad(f+"client_secret_env", "is set together with client_assertion_file; the app authenticates with one of them")
	}
	if u, err := url.Parse(o.RedirectURL); err != nil || u.Host == "" || !strings.HasSuffix(u.Path, "/console/oidc/callback") {
		bad(f+"redirect_url", "is %q; give https://<console host>/console/oidc/callback and register it as a Web redirect URI of the app", o.RedirectURL)
	} else if u.Scheme != "https" && u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1" {
		bad(f+"redirect_url", "is %q; the identity provider sends the sign-in code there, so it must be https (http only on localhost)", o.RedirectURL)
	}
	if len(o.Operators)+len(o.TenantAdmins) == 0 {
		bad(f+"operators", "and tenant_admins are both empty; add a rule, e.g. operators: [{require: [{claim: groups, value: <group object id>}]}]")
	}
	for i, r := range o.Operators {
		field := fmt.Sprintf(f+"operators[%d]", i)
		if r.Tenant != "" || r.FromKeySettings {
			bad(field, "names a tenant; an operator rule maps to the operator role only (move it to tenant_admins)")
		}
		validateRequire(field, r.Require, bad)
	}
	for i, r := range o.TenantAdmins {
		field := fmt.Sprintf(f+"tenant_admins[%d]", i)
		if (r.Tenant == "") == !r.FromKeySettings {
			bad(field, "sets %s; set exactly one of tenant (a byok tenant id) and from_key_settings: true", map[bool]string{true: "both tenant and from_key_settings", false: "neither tenant nor from_key_settings"}[r.Tenant != ""])
		}
		validateRequire(field, r.Require, bad)
	}
}

func validateRequire(field string, req []OIDCClaim, bad func(field, format string, args ...any)) {
	if len(req) == 0 {
		bad(field+".require", "is empty; a rule must require at least one claim (e.g. {claim: tid, value: <directory id>}), or it would match everyone")
	}
	for i, c := range req {
		if c.Claim == "" || c.Value == "" {
			bad(fmt.Sprintf("%s.require[%d]", field, i), "needs both claim and value, e.g. {claim: groups, value: <group object id>}")
		}
	}
}
