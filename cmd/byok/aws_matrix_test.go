package main

import (
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/kms/awskms"
)

// awsCase is one way a customer gets its AWS setup wrong: the estate in
// awsemu, the settings entered through the API, and what byok says.
type awsCase struct {
	name string
	// estate prepares the customer's account and returns the settings
	// (besides provider) to PUT.
	estate func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any
	// putCode, when set, is the error code PUT answers (400 invalid
	// settings, nothing saved).
	putCode string
	// check is the first check Test configuration fails; remedy a piece
	// of its remedy.
	check, remedy string
}

const matrixRole = "arn:aws:iam::" + awsCustomer + ":role/byok-access"

// matrixKey creates a key of spec (account and region filled in) with the
// platform's (or role's) statements for tenant unless policy is given.
func matrixKey(t *testing.T, emu *awsemu.Emulator, spec awsemu.KeySpec) awsemu.Key {
	t.Helper()
	spec.Account, spec.Region = awsCustomer, awsRegion
	k, err := emu.CreateKey(spec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func granted(t *testing.T, principal, tenant string) string {
	return awsPolicy(t, awsCustomer, awskms.KeyPolicyStatement(principal, tenant))
}

var awsCases = []awsCase{
	{name: "a bare key id", putCode: "invalid_input",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			return map[string]any{"key_id": "1234abcd-12ab-34cd-56ef-1234567890ab"}
		}},
	{name: "an external id without a role", putCode: "invalid_input",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			k := matrixKey(t, emu, awsemu.KeySpec{Policy: granted(t, awsPlatform, tenant)})
			return map[string]any{"key_id": k.ARN, "external_id": "byok-x1"}
		}},
	{name: "a secret", putCode: "invalid_input",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			k := matrixKey(t, emu, awsemu.KeySpec{Policy: granted(t, awsPlatform, tenant)})
			return map[string]any{"key_id": k.ARN, "secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
		}},
	{name: "an alias that does not exist", check: awskms.CheckKeyRead, remedy: "alias",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			return map[string]any{"key_id": "arn:aws:kms:" + awsRegion + ":" + awsCustomer + ":alias/" + tenant + "-missing"}
		}},
	{name: "the key's ARN with another region", check: awskms.CheckKeyRead, remedy: "region",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			k := matrixKey(t, emu, awsemu.KeySpec{Policy: granted(t, awsPlatform, tenant)})
			return map[string]any{"key_id": strings.Replace(k.ARN, awsRegion, "us-east-1", 1)}
		}},
	{name: "no statement for the platform", check: awskms.CheckKeyRead, remedy: `"kms:EncryptionContext:byok:tenant": "`,
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			return map[string]any{"key_id": matrixKey(t, emu, awsemu.KeySpec{}).ARN}
		}},
	{name: "DescribeKey granted, Encrypt not", check: awskms.CheckPermissions, remedy: "kms:Encrypt",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			describe := `[{"Effect":"Allow","Principal":{"AWS":"` + awsPlatform + `"},"Action":["kms:DescribeKey","kms:GetKeyRotationStatus"],"Resource":"*"}]`
			return map[string]any{"key_id": matrixKey(t, emu, awsemu.KeySpec{Policy: awsPolicy(t, awsCustomer, describe)}).ARN}
		}},
	{name: "a statement for every tenant", check: awskms.CheckTenantBound, remedy: "kms:EncryptionContext:byok:tenant",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			open := `[{"Effect":"Allow","Principal":{"AWS":"` + awsPlatform + `"},"Action":["kms:DescribeKey","kms:GetKeyRotationStatus","kms:Encrypt","kms:Decrypt"],"Resource":"*"}]`
			return map[string]any{"key_id": matrixKey(t, emu, awsemu.KeySpec{Policy: awsPolicy(t, awsCustomer, open)}).ARN}
		}},
	{name: "a disabled key", check: awskms.CheckKeyState, remedy: "nable",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			return map[string]any{"key_id": matrixKey(t, emu, awsemu.KeySpec{Disabled: true, Policy: granted(t, awsPlatform, tenant)}).ARN}
		}},
	{name: "a key pending deletion", check: awskms.CheckKeyState, remedy: "ancel",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			k := matrixKey(t, emu, awsemu.KeySpec{Policy: granted(t, awsPlatform, tenant)})
			if err := emu.ScheduleKeyDeletion(k.ARN, 7); err != nil {
				t.Fatal(err)
			}
			return map[string]any{"key_id": k.ARN}
		}},
	{name: "an RSA key", check: awskms.CheckKeySpec, remedy: "SYMMETRIC_DEFAULT",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			return map[string]any{"key_id": matrixKey(t, emu, awsemu.KeySpec{KeySpec: "RSA_2048", Policy: granted(t, awsPlatform, tenant)}).ARN}
		}},
	{name: "an HMAC key", check: awskms.CheckKeySpec, remedy: "SYMMETRIC_DEFAULT",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			return map[string]any{"key_id": matrixKey(t, emu, awsemu.KeySpec{KeySpec: "HMAC_256", Policy: granted(t, awsPlatform, tenant)}).ARN}
		}},
	{name: "an AWS managed key", check: awskms.CheckKeyManager, remedy: "customer managed",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			return map[string]any{"key_id": matrixKey(t, emu, awsemu.KeySpec{AWSManaged: true, Policy: granted(t, awsPlatform, tenant)}).ARN}
		}},
	{name: "a role that does not exist", check: awskms.CheckAssumeRole, remedy: "sts:ExternalId",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			k := matrixKey(t, emu, awsemu.KeySpec{Policy: granted(t, matrixRole+"-missing", tenant)})
			return map[string]any{"key_id": k.ARN, "role_arn": matrixRole + "-missing", "external_id": "byok-" + tenant}
		}},
	{name: "a trust policy with another external id", check: awskms.CheckAssumeRole, remedy: "sts:ExternalId",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			role := matrixRole + "-" + tenant
			mustDo(t, emu.PutRole(role, awskms.TrustPolicy(awsPlatform, "byok-someone-else")))
			k := matrixKey(t, emu, awsemu.KeySpec{Policy: granted(t, role, tenant)})
			return map[string]any{"key_id": k.ARN, "role_arn": role, "external_id": "byok-" + tenant}
		}},
	{name: "a trust policy without the external id", check: awskms.CheckExternalID, remedy: "sts:ExternalId",
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			role := matrixRole + "-" + tenant
			mustDo(t, emu.PutRole(role, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"`+awsPlatform+`"},"Action":"sts:AssumeRole"}]}`))
			k := matrixKey(t, emu, awsemu.KeySpec{Policy: granted(t, role, tenant)})
			return map[string]any{"key_id": k.ARN, "role_arn": role, "external_id": "byok-" + tenant}
		}},
	{name: "a role the key policy does not name", check: awskms.CheckKeyRead, remedy: matrixRole,
		estate: func(t *testing.T, emu *awsemu.Emulator, tenant string) map[string]any {
			role := matrixRole + "-" + tenant
			mustDo(t, emu.PutRole(role, awskms.TrustPolicy(awsPlatform, "byok-"+tenant)))
			admin := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + awsCustomer + `:user/admin"},"Action":"kms:*","Resource":"*"}]}`
			k := matrixKey(t, emu, awsemu.KeySpec{Policy: admin})
			return map[string]any{"key_id": k.ARN, "role_arn": role, "external_id": "byok-" + tenant}
		}},
}

// TestAWSFailureMatrix runs each wrong AWS setup through the API: invalid
// settings are refused when saved, the others fail Test configuration at
// the check that names what is wrong, with a remedy; in every case the
// tenant stays in draft and Proceed is refused.
func TestAWSFailureMatrix(t *testing.T) {
	j := startAWSJourney(t)
	for i, tc := range awsCases {
		t.Run(tc.name, func(t *testing.T) {
			id := "m" + string(rune('a'+i))
			c, admin, _ := j.tenant(id)
			body := tc.estate(t, j.emu, id)
			body["provider"] = "aws-kms"
			status, code := c.call(admin, "PUT", "/v1/tenants/"+id+"/key", body, nil)
			if tc.putCode != "" {
				if status != 400 || code != tc.putCode {
					t.Fatalf("PUT: %d %s, want 400 %s", status, code, tc.putCode)
				}
				var view struct{ Settings map[string]any }
				c.must(admin, "GET", "/v1/tenants/"+id+"/key", nil, &view)
				if view.Settings["key_id"] != nil && view.Settings["key_id"] != "" {
					t.Fatalf("refused settings were saved: %v", view.Settings)
				}
				return
			}
			if status != 200 {
				t.Fatalf("PUT: %d %s", status, code)
			}
			var rep awsReport
			c.must(admin, "POST", "/v1/tenants/"+id+"/key/test", nil, &rep)
			name, remedy := rep.firstFailure()
			if rep.Passed || name != tc.check || !strings.Contains(remedy, tc.remedy) {
				t.Fatalf("Test: passed %v, first failure %s with remedy %q; want %s with %q\n%+v", rep.Passed, name, remedy, tc.check, tc.remedy, rep.Checks)
			}
			for _, ch := range rep.Checks {
				if strings.Contains(ch.Detail+ch.Remedy, "wJalrXUtnFEMI") {
					t.Fatal("a report quotes a secret")
				}
			}
			if status, _ := c.call(admin, "POST", "/v1/tenants/"+id+"/key/proceed", map[string]any{"enforce_at": time.Now().Add(time.Hour)}, nil); status != 409 {
				t.Fatalf("Proceed after a failed test: %d, want 409", status)
			}
			if s := c.status(admin); s.State != "draft" {
				t.Fatalf("state after a failed test: %s, want draft", s.State)
			}
		})
	}
}
