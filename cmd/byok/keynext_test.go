package main

import (
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/client"
)

// byok key status says what to do next: after a passing test in draft it
// is proceed (not a bare "draft" beside "last test passed"), and the
// version that is not chosen yet says when it will be.
func TestKeyStatusNextStep(t *testing.T) {
	at := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		key  client.Key
		want string
	}{
		{"draft, tested", client.Key{Tenant: "contoso", State: "draft", LastTest: &client.Report{Passed: true, At: at}},
			"next              byok key proceed --tenant contoso --enforce-at TIME (or --in 72h)"},
		{"draft, untested", client.Key{Tenant: "contoso", State: "draft"}, "byok key test --tenant contoso"},
		{"draft, test failed", client.Key{Tenant: "contoso", State: "draft", LastTest: &client.Report{At: at}}, "fix what the last test reported, then byok key test --tenant contoso"},
		{"none", client.Key{Tenant: "contoso", State: "none"}, "byok key configure --tenant contoso --key-id"},
		{"scheduled", client.Key{Tenant: "contoso", State: "scheduled", EnforceAt: at}, "enforced at 2026-12-03T15:00:00Z"},
	} {
		var b strings.Builder
		if err := printKey(&b, false, tc.key); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(tc.want), " ")) {
			t.Errorf("%s: key status lacks %q:\n%s", tc.name, tc.want, out)
		}
		if tc.key.State == "draft" && !strings.Contains(out, "- (chosen when the key activates)") {
			t.Errorf("%s: the current version does not say when it is chosen:\n%s", tc.name, out)
		}
	}
	var b strings.Builder
	if err := printKey(&b, false, client.Key{Tenant: "contoso", State: "active", CurrentKeyID: "https://v.vault.azure.net/keys/k/1"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "next") {
		t.Errorf("an active key has a next step:\n%s", b.String())
	}
}

// byok key status of an AWS KMS key names the provider, the key ARN and
// how byok reaches it, in place of Azure's directory, app and credential.
func TestKeyStatusAWS(t *testing.T) {
	const arn = "arn:aws:kms:eu-west-1:111122223333:alias/byok"
	for _, tc := range []struct {
		settings client.KeySettings
		access   string
	}{
		{client.KeySettings{Provider: "aws-kms", KeyID: arn}, "key policy: byok calls KMS as the platform's principal, which the key policy names"},
		{client.KeySettings{Provider: "aws-kms", KeyID: arn, RoleARN: "arn:aws:iam::111122223333:role/byok-access", ExternalID: "byok-abc"},
			"role: byok assumes arn:aws:iam::111122223333:role/byok-access with external id byok-abc, which the role's trust policy requires"},
	} {
		var b strings.Builder
		if err := printKey(&b, false, client.Key{Tenant: "initech", State: "draft", Settings: tc.settings}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"provider          AWS KMS (aws-kms)", "key ARN           " + arn, "access            " + tc.access} {
			if !strings.Contains(out, want) {
				t.Errorf("key status lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "directory / app") || strings.Contains(out, "credential") {
			t.Errorf("key status of an AWS key shows Azure's settings:\n%s", out)
		}
	}
}
