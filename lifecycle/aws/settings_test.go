package aws

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/openbyok/byok/lifecycle"
)

const (
	keyARN   = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	aliasARN = "arn:aws:kms:eu-west-1:111122223333:alias/byok"
	roleARN  = "arn:aws:iam::111122223333:role/byok-access"
	extID    = "byok-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

func testConnector(t *testing.T) *Connector {
	t.Helper()
	c, err := New(Config{Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", ""),
		PlatformPrincipal: "arn:aws:iam::999988887777:role/byok"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var checkSettingsTests = []struct {
	name    string
	s       lifecycle.KeySettings
	field   string // "" when valid
	reason  string // part of the reason
	options string // canonical options when valid
}{
	{"direct key ARN", Settings(keyARN, Options{}), "", "", `{}`},
	{"direct alias ARN", Settings(aliasARN, Options{}), "", "", `{}`},
	{"no options at all", lifecycle.KeySettings{Provider: Provider, KeyID: keyARN}, "", "", `{}`},
	{"role", Settings(keyARN, Options{RoleARN: roleARN, ExternalID: extID}), "", "", `{"role_arn":"` + roleARN + `","external_id":"` + extID + `"}`},
	{"role with path, spaces trimmed", Settings(" "+aliasARN+" ", Options{RoleARN: " arn:aws:iam::111122223333:role/svc/byok ", ExternalID: extID}), "", "",
		`{"role_arn":"arn:aws:iam::111122223333:role/svc/byok","external_id":"` + extID + `"}`},
	{"empty key", Settings("", Options{}), "key_id", "is empty", ""},
	{"bare key id", Settings("1234abcd-12ab-34cd-56ef-1234567890ab", Options{}), "key_id", "", ""},
	{"Azure key id", Settings("https://contoso.vault.azure.net/keys/byok", Options{}), "key_id", "", ""},
	{"external id without role", Settings(keyARN, Options{ExternalID: extID}), "external_id", "without a role_arn", ""},
	{"role without external id", Settings(keyARN, Options{RoleARN: roleARN}), "external_id", "is empty", ""},
	{"user ARN as role", Settings(keyARN, Options{RoleARN: "arn:aws:iam::111122223333:user/alice", ExternalID: extID}), "role_arn", "not a role ARN", ""},
	{"external id with a space", Settings(keyARN, Options{RoleARN: roleARN, ExternalID: "byok x"}), "external_id", "letters", ""},
	{"external id too short", Settings(keyARN, Options{RoleARN: roleARN, ExternalID: "b"}), "external_id", "2 to 1224", ""},
	{"secret", func() lifecycle.KeySettings {
		s := Settings(keyARN, Options{})
		s.Secret = lifecycle.NewSecret("AKIA…")
		return s
	}(), "secret", "must be empty", ""},
	{"unknown field", lifecycle.KeySettings{Provider: Provider, KeyID: keyARN, Options: json.RawMessage(`{"role_arn":"","client_id":"x"}`)}, "client_id", "not a setting of an AWS KMS key", ""},
	{"not an object", lifecycle.KeySettings{Provider: Provider, KeyID: keyARN, Options: json.RawMessage(`["x"]`)}, "options", "JSON object", ""},
	{"not strings", lifecycle.KeySettings{Provider: Provider, KeyID: keyARN, Options: json.RawMessage(`{"role_arn":1}`)}, "options", "must be strings", ""},
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
				if string(got.Options) != tt.options {
					t.Errorf("Options = %s, want %s", got.Options, tt.options)
				}
				if strings.TrimSpace(got.KeyID) != got.KeyID {
					t.Errorf("KeyID %q not trimmed", got.KeyID)
				}
				return
			}
			var fe *lifecycle.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("CheckSettings error = %v, want a *lifecycle.FieldError on %s", err, tt.field)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("FieldError = %s: %s, want %s containing %q", fe.Field, fe.Reason, tt.field, tt.reason)
			}
			if strings.Contains(err.Error(), "AKIA") {
				t.Errorf("error quotes the secret: %v", err)
			}
		})
	}
}

func TestOptionsRoundTrip(t *testing.T) {
	for _, o := range []Options{{}, {RoleARN: roleARN, ExternalID: extID}} {
		got, err := OptionsOf(Settings(keyARN, o))
		if err != nil || got != o {
			t.Errorf("OptionsOf(Settings(%+v)) = %+v, %v", o, got, err)
		}
	}
	if s := Settings(keyARN, Options{}); s.Provider != Provider || s.KeyID != keyARN || s.Secret.IsSet() {
		t.Errorf("Settings = %+v", s)
	}
}

func TestSplitKeyID(t *testing.T) {
	c := testConnector(t)
	for _, tt := range []struct{ id, key, version string }{
		{keyARN, keyARN, keyARN},
		{aliasARN, aliasARN, ""},
		{"arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef", "arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
			"arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"},
		{"not-an-arn", "not-an-arn", ""},
	} {
		if k, v := c.SplitKeyID(tt.id); k != tt.key || v != tt.version {
			t.Errorf("SplitKeyID(%q) = %q, %q; want %q, %q", tt.id, k, v, tt.key, tt.version)
		}
	}
}

func TestSetupPolicies(t *testing.T) {
	p := Platform{Principal: "arn:aws:iam::999988887777:role/byok"}
	kp, tp := SetupPolicies(p, Settings(aliasARN, Options{}), "acme")
	if !strings.Contains(kp, p.Principal) || !strings.Contains(kp, `"kms:EncryptionContext:byok:tenant": "acme"`) || tp != "" {
		t.Errorf("direct: key policy %s, trust policy %q", kp, tp)
	}
	kp, tp = SetupPolicies(p, Settings(aliasARN, Options{RoleARN: roleARN, ExternalID: extID}), "acme")
	if !strings.Contains(kp, roleARN) || strings.Contains(kp, p.Principal) {
		t.Errorf("role: the key policy names %s, want the role: %s", p.Principal, kp)
	}
	if !strings.Contains(tp, p.Principal) || !strings.Contains(tp, extID) || !json.Valid([]byte(tp)) {
		t.Errorf("role: trust policy %s", tp)
	}
	if kp, tp := SetupPolicies(Platform{}, Settings(aliasARN, Options{}), "acme"); kp != "" || tp != "" {
		t.Errorf("unknown principal: %q, %q", kp, tp)
	}
}

type fakeLifecycle struct{ conn lifecycle.Connector }

func (f fakeLifecycle) Connector(name string) (lifecycle.Connector, error) {
	if f.conn == nil || f.conn.Name() != name {
		return nil, errors.New("no connector " + name)
	}
	return f.conn, nil
}

func TestPlatformOf(t *testing.T) {
	c := testConnector(t)
	want := Platform{Principal: "arn:aws:iam::999988887777:role/byok"}
	for _, src := range []any{c, fakeLifecycle{c}} {
		if got := PlatformOf(context.Background(), src); got != want {
			t.Errorf("PlatformOf(%T) = %+v, want %+v", src, got, want)
		}
	}
	for _, src := range []any{nil, "x", fakeLifecycle{}, (*Connector)(nil)} {
		if got := PlatformOf(context.Background(), src); got.NotOffered != "aws-kms is not offered by this platform" || got.Principal != "" {
			t.Errorf("PlatformOf(%#v) = %+v", src, got)
		}
	}
}

func TestNewRefusesHTTPEndpoint(t *testing.T) {
	_, err := New(Config{Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""), Endpoint: "http://localhost:4566"})
	if err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("New with an http endpoint: %v", err)
	}
}
