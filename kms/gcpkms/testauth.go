package gcpkms

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"cloud.google.com/go/iam/apiv1/iampb"
	"github.com/googleapis/gax-go/v2"

	"github.com/openbyok/byok/kms"
)

// The permissions Test configuration asks TestIamPermissions about: the
// two of roles/cloudkms.cryptoKeyEncrypterDecrypter (Wrap, Unwrap) and the
// two of roles/cloudkms.viewer it needs (Describe, the key checks).
const (
	permEncrypt    = "cloudkms.cryptoKeyVersions.useToEncrypt"
	permDecrypt    = "cloudkms.cryptoKeyVersions.useToDecrypt"
	permGetKey     = "cloudkms.cryptoKeys.get"
	permGetVersion = "cloudkms.cryptoKeyVersions.get"
)

// Roles the platform's service account needs on the key.
const (
	RoleEncrypterDecrypter = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
	RoleViewer             = "roles/cloudkms.viewer"
)

// GrantCommand returns the gcloud command that grants role on the crypto
// key named by key to the service account, ready to paste.
func GrantCommand(key KeyName, serviceAccount, role string) string {
	if serviceAccount == "" {
		serviceAccount = "PLATFORM_SERVICE_ACCOUNT"
	}
	return fmt.Sprintf("gcloud kms keys add-iam-policy-binding %s --keyring %s --location %s --project %s --member serviceAccount:%s --role %s",
		key.CryptoKey, key.KeyRing, key.Location, key.Project, serviceAccount, role)
}

// checkCredentials signs in with an authenticated TestIamPermissions on
// the key (which needs no permission), then reports the permissions it
// answers.
func (t *tester) checkCredentials(ctx context.Context) {
	if !t.needs(CheckCredentials, CheckKeyName, CheckTLS) {
		t.add(Check{Name: CheckPermissions, Status: Skip, Reason: "not run: the credentials check did not pass"})
		return
	}
	sa := t.report.ServiceAccount
	var granted []string
	err := t.p.call(ctx, "test", t.name.Key(), "TestIamPermissions", func(ctx context.Context, o ...gax.CallOption) error {
		resp, err := t.p.client.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: t.name.Key(),
			Permissions: []string{permEncrypt, permDecrypt, permGetKey, permGetVersion}}, o...)
		granted = resp.GetPermissions()
		return err
	})
	if r := kms.ReasonOf(err); err != nil && r != kms.ReasonNotFound && r != kms.ReasonDenied {
		t.add(t.credentialsFailure(err, sa))
		t.add(Check{Name: CheckPermissions, Status: Skip, Reason: "not run: the credentials check did not pass"})
		return
	}
	t.add(Check{Name: CheckCredentials, Status: Pass, Value: sa, Reason: "Cloud KMS accepted the platform's credentials"})
	if err != nil {
		t.add(Check{Name: CheckPermissions, Status: Fail, Value: t.name.Key(), Reason: "Cloud KMS answered: " + firstLine(err.Error()),
			Remedy: "check the key's name (project, location, key ring and key); `gcloud kms keys list --keyring " + t.name.KeyRing +
				" --location " + t.name.Location + " --project " + t.name.Project + "` lists the keys"})
		return
	}
	var missing, cmds []string
	if !slices.Contains(granted, permEncrypt) || !slices.Contains(granted, permDecrypt) {
		missing = append(missing, "encrypt and decrypt ("+RoleEncrypterDecrypter+")")
		cmds = append(cmds, GrantCommand(t.name, sa, RoleEncrypterDecrypter))
	}
	if !slices.Contains(granted, permGetKey) || !slices.Contains(granted, permGetVersion) {
		missing = append(missing, "read the key's settings ("+RoleViewer+")")
		cmds = append(cmds, GrantCommand(t.name, sa, RoleViewer))
	}
	if len(missing) > 0 {
		c := Check{Name: CheckPermissions, Status: Fail, Value: strings.Join(granted, ", "),
			Reason: "the platform's service account may not " + strings.Join(missing, " nor ") + " on the key",
			Remedy: "grant the role on the key (Key Management > the key > Permissions > Grant access, or run):\n" + strings.Join(cmds, "\n")}
		if len(granted) == 0 {
			c.Reason += ", or the key does not exist (Cloud KMS does not tell a caller without permission which)"
			c.Remedy = "check the key's name: `gcloud kms keys list --keyring " + t.name.KeyRing + " --location " + t.name.Location + " --project " + t.name.Project +
				"` lists the keys; then " + c.Remedy
		}
		t.add(c)
		return
	}
	t.add(Check{Name: CheckPermissions, Status: Pass, Value: strings.Join(granted, ", "),
		Reason: "the platform's service account may encrypt, decrypt and read the key"})
}

// credentialsFailure explains a failed sign-in, from the status's
// ErrorInfo reason (never its text).
func (t *tester) credentialsFailure(err error, sa string) Check {
	c := Check{Name: CheckCredentials, Status: Fail, Value: sa, Reason: "Cloud KMS refused the platform's credentials: " + firstLine(err.Error())}
	project := "PROJECT"
	if _, domain, ok := strings.Cut(sa, "@"); ok {
		project, _, _ = strings.Cut(domain, ".")
	}
	if kms.ReasonOf(err) != kms.ReasonUnauthenticated {
		c.Reason = "Cloud KMS did not answer: " + firstLine(err.Error())
		c.Remedy = "retry; if it persists, check https://status.cloud.google.com and the platform's network path to " + t.cfg.endpoint()
		return c
	}
	switch reason := errorInfoReason(err); {
	case t.cfg.CredentialsJSON == nil && reason == "":
		c.Reason = "Application Default Credentials gave no usable token (no key file is configured): " + firstLine(err.Error())
		c.Remedy = "configure the platform's service account key file (IAM & Admin > Service accounts > the account > Keys > Add key > JSON), " +
			"set GOOGLE_APPLICATION_CREDENTIALS to its path, or run the platform on Google Cloud with that service account attached"
	case reason == "":
		c.Reason = "the platform could not get a token for its credentials: " + firstLine(err.Error())
		c.Remedy = "allow the platform to reach Google's token endpoints (oauth2.googleapis.com, sts.googleapis.com and iamcredentials.googleapis.com for workload identity federation), " +
			"and check the credentials file's token_uri or credential_source"
	case reason == "ACCOUNT_STATE_INVALID":
		c.Reason = "the platform's service account " + sa + " is disabled or deleted"
		c.Remedy = fmt.Sprintf("enable it: `gcloud iam service-accounts enable %s --project %s` (IAM & Admin > Service accounts > the account > Enable); a deleted account can be undeleted within 30 days", sa, project)
	case reason == "ACCESS_TOKEN_EXPIRED":
		c.Reason = "the platform's credentials were refused as expired or not yet valid: the platform's clock may be wrong"
		c.Remedy = "synchronise the platform host's clock (NTP)"
	case reason == "CREDENTIALS_MISSING":
		c.Reason = "the platform sent no credentials"
		c.Remedy = "configure the platform's service account key file, or Application Default Credentials"
	default:
		c.Remedy = fmt.Sprintf("the key file's key was deleted or disabled, or the file is not of this service account: create a new key, "+
			"`gcloud iam service-accounts keys create key.json --iam-account %s`, and configure it; list the account's keys with "+
			"`gcloud iam service-accounts keys list --iam-account %s`", sa, sa)
	}
	return c
}
