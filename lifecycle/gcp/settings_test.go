package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
)

const (
	keyName     = "projects/customer/locations/global/keyRings/byok/cryptoKeys/tenant-a"
	versionName = keyName + "/cryptoKeyVersions/3"
)

func testConnector(t *testing.T) *Connector {
	t.Helper()
	c, err := New(Config{ServiceAccount: "byok@platform.iam.gserviceaccount.com"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var checkSettingsTests = []struct {
	name   string
	s      lifecycle.KeySettings
	field  string // "" when valid
	reason string // part of the reason
}{
	{"crypto key", Settings(keyName), "", ""},
	{"pinned version", Settings(versionName), "", ""},
	{"no options at all", lifecycle.KeySettings{Provider: Provider, KeyID: keyName}, "", ""},
	{"null options", lifecycle.KeySettings{Provider: Provider, KeyID: keyName, Options: json.RawMessage(`null`)}, "", ""},
	{"spaces trimmed", Settings("  " + keyName + "\n"), "", ""},
	{"empty key", Settings(""), "key_id", "is empty"},
	{"key ring", Settings("projects/customer/locations/global/keyRings/byok"), "key_id", "not a Cloud KMS key name"},
	{"version 0", Settings(keyName + "/cryptoKeyVersions/0"), "key_id", "not a number from 1"},
	{"trailing slash", Settings(keyName + "/"), "key_id", "parts"},
	{"console URL", Settings("https://console.cloud.google.com/security/kms/key/manage/global/byok/tenant-a?project=customer"), "key_id", "not a Cloud KMS key name"},
	{"AWS ARN", Settings("arn:aws:kms:eu-west-1:111122223333:alias/byok"), "key_id", ""},
	{"secret", func() lifecycle.KeySettings {
		s := Settings(keyName)
		s.Secret = lifecycle.NewSecret(`{"type":"service_account"}`)
		return s
	}(), "secret", "must be empty"},
	{"unknown field", lifecycle.KeySettings{Provider: Provider, KeyID: keyName, Options: json.RawMessage(`{"service_account":"x@y.iam.gserviceaccount.com"}`)}, "service_account", "not a setting of a Cloud KMS key"},
	{"empty field", lifecycle.KeySettings{Provider: Provider, KeyID: keyName, Options: json.RawMessage(`{"role_arn":""}`)}, "role_arn", "not a setting"},
	{"not an object", lifecycle.KeySettings{Provider: Provider, KeyID: keyName, Options: json.RawMessage(`["x"]`)}, "options", "JSON object"},
}

func TestCheckSettings(t *testing.T) {
	c := testConnector(t)
	for _, tt := range checkSettingsTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.CheckSettings(context.Background(), tt.s, false)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("CheckSettings: %v", err)
				}
				if string(got.Options) != `{}` {
					t.Errorf("Options = %s, want {}", got.Options)
				}
				if strings.TrimSpace(got.KeyID) != got.KeyID || got.KeyID == "" {
					t.Errorf("KeyID %q not trimmed", got.KeyID)
				}
				return
			}
			var fe *lifecycle.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("CheckSettings = %v, want a FieldError on %s containing %q", err, tt.field, tt.reason)
			}
			if strings.Contains(fe.Reason, "gcpkms:") {
				t.Errorf("reason %q carries the package prefix", fe.Reason)
			}
		})
	}
}

func TestSplitKeyID(t *testing.T) {
	c := testConnector(t)
	for _, tt := range []struct{ id, key, version string }{
		{keyName, keyName, ""},
		{versionName, keyName, "3"},
		{keyName + "/cryptoKeyVersions/12", keyName, "12"},
		{"not a key", "not a key", ""},
		{keyName + "/cryptoKeyVersions/x", keyName + "/cryptoKeyVersions/x", ""},
	} {
		if k, v := c.SplitKeyID(tt.id); k != tt.key || v != tt.version {
			t.Errorf("SplitKeyID(%q) = %q, %q; want %q, %q", tt.id, k, v, tt.key, tt.version)
		}
	}
}

func TestNameAndSecretKind(t *testing.T) {
	c := testConnector(t)
	if c.Name() != "gcp-kms" || c.SecretKind(Settings(keyName)) != "" {
		t.Fatalf("Name %q, SecretKind %q", c.Name(), c.SecretKind(Settings(keyName)))
	}
	if s := Settings(keyName); s.Provider != Provider || s.KeyID != keyName || string(s.Options) != "{}" {
		t.Fatalf("Settings = %+v", s)
	}
}

func TestNewRefusesBadPlatformConfig(t *testing.T) {
	for name, tt := range map[string]struct {
		cfg  Config
		want string
	}{
		"not JSON":      {Config{CredentialsJSON: []byte("-----BEGIN PRIVATE KEY-----")}, "not JSON"},
		"no key":        {Config{CredentialsJSON: []byte(`{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com"}`)}, "lacks client_email or private_key"},
		"wrong type":    {Config{CredentialsJSON: []byte(`{"type":"authorized_user"}`)}, `type "authorized_user"`},
		"endpoint":      {Config{Endpoint: "https://cloudkms.googleapis.com"}, "not host:port"},
		"negative time": {Config{Timeout: -1}, "negative"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPlatformOf(t *testing.T) {
	c := testConnector(t)
	ctx := context.Background()
	if p := PlatformOf(ctx, c); p.ServiceAccount != "byok@platform.iam.gserviceaccount.com" || p.NotOffered != "" {
		t.Fatalf("PlatformOf(connector) = %+v", p)
	}
	for _, src := range []any{nil, "x", (*Connector)(nil), lifecycleWithout{}} {
		if p := PlatformOf(ctx, src); p.ServiceAccount != "" || p.NotOffered != "gcp-kms is not offered by this platform" {
			t.Fatalf("PlatformOf(%T) = %+v", src, p)
		}
	}
	if p := PlatformOf(ctx, lifecycleWith{c}); p.ServiceAccount != "byok@platform.iam.gserviceaccount.com" {
		t.Fatalf("PlatformOf(lifecycle) = %+v", p)
	}
}

type lifecycleWithout struct{}

func (lifecycleWithout) Connector(string) (lifecycle.Connector, error) {
	return nil, errors.New("no such provider")
}

type lifecycleWith struct{ c *Connector }

func (l lifecycleWith) Connector(name string) (lifecycle.Connector, error) {
	if name != Provider {
		return nil, errors.New("no such provider")
	}
	return l.c, nil
}

// TestProviderWithoutCredentials: Provider builds no client, so settings
// are accepted whatever the platform's credentials; a call without any
// fails as transient (the platform's fault, not a revocation), and says
// why.
func TestProviderWithoutCredentials(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Platform(context.Background()); p.ServiceAccount != "" || p.NotOffered != "" {
		t.Fatalf("Platform without a key file or service account = %+v", p)
	}
	s := Settings(keyName)
	s.Tenant = "acme"
	p, err := c.Provider(context.Background(), s)
	if err != nil {
		t.Fatalf("Provider: %v", err)
	}
	_, err = p.Wrap(context.Background(), keyName, []byte("share"))
	var ke *kms.Error
	if !errors.As(err, &ke) || ke.Class != kms.Transient || ke.Reason != kms.ReasonUnauthenticated || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("Wrap without credentials: %v; want a transient authentication error naming the file", err)
	}
	if _, err := p.Unwrap(context.Background(), kms.Wrapped{KeyID: versionName, Ciphertext: []byte("x")}); kms.ClassOf(err) != kms.Transient {
		t.Fatalf("Unwrap without credentials: %v", err)
	}
	if _, err := p.Describe(context.Background(), keyName); kms.ClassOf(err) != kms.Transient {
		t.Fatalf("Describe without credentials: %v", err)
	}
}
