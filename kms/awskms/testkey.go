package awskms

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/openbyok/byok/kms"
)

// accessDeps are the checks before any KMS call with the principal.
func (t *tester) accessDeps() []string {
	deps := []string{CheckTLS, CheckCredentials}
	if t.cfg.RoleARN != "" {
		deps = append(deps, CheckAssumeRole)
	}
	return deps
}

// denied fills c for an AccessDeniedException on action: the key policy
// statements to paste.
func (t *tester) denied(c *Check, action string, err error) {
	t.report.KeyPolicy = KeyPolicyStatement(t.principal(), t.cfg.Tenant)
	c.Reason = fmt.Sprintf("the key policy does not let %s use %s on the key: %s", t.principal(), action, errors.Unwrap(err).Error())
	c.Remedy = pasteKeyPolicy(t.principal(), t.cfg.Tenant)
	if t.cfg.RoleARN == "" && t.arn.Account != accountOf(t.platform) {
		c.Remedy += "\nIf the key policy already has them: the key is in another account than the platform's, so the platform's own IAM policy must allow these actions on the key too; the platform operator checks it."
	}
}

// accountOf returns the account of an IAM or STS ARN.
func accountOf(arn string) string {
	if parts := strings.SplitN(arn, ":", 6); len(parts) == 6 {
		return parts[4]
	}
	return ""
}

func (t *tester) checkKeyRead(ctx context.Context) {
	if !t.needs(CheckKeyRead, t.accessDeps()...) {
		return
	}
	md, err := t.p.describe(ctx, "describe", t.arn.String())
	if err == nil {
		t.md = md
		v := aws.ToString(md.Arn)
		if t.arn.IsAlias() {
			v = t.arn.Alias + " → " + v
		}
		if md.MultiRegion != nil && *md.MultiRegion {
			v += " (multi-region)"
		}
		t.add(Check{Name: CheckKeyRead, Status: Pass, Value: v, Reason: "the principal can read the key (kms:DescribeKey)"})
		return
	}
	c := Check{Name: CheckKeyRead, Status: Fail, Value: string(kms.ReasonOf(err))}
	switch kms.ReasonOf(err) {
	case kms.ReasonDenied:
		t.denied(&c, "kms:DescribeKey", err)
	case kms.ReasonNotFound:
		what := "key " + t.arn.KeyID
		if t.arn.IsAlias() {
			what = t.arn.Alias
		}
		c.Reason = fmt.Sprintf("account %s has no %s in region %s: %s", t.arn.Account, what, t.arn.Region, errors.Unwrap(err).Error())
		c.Remedy = "check the ARN in the KMS console of the key's region: a key and its aliases live in one region, and each replica of a multi-region key has its own ARN in its region"
	case kms.ReasonUnauthenticated:
		c.Reason = "KMS refused the credentials: " + errors.Unwrap(err).Error()
		c.Remedy = "the platform operator checks the platform's AWS credentials"
	default:
		c.Reason = "reading the key failed: " + errors.Unwrap(err).Error()
		c.Remedy = "test again; if it persists, check the AWS Health Dashboard for KMS in " + t.arn.Region
	}
	t.add(c)
}

func (t *tester) checkKeyManager() {
	if !t.needs(CheckKeyManager, CheckKeyRead) {
		return
	}
	v := fmt.Sprintf("%s, origin %s", t.md.KeyManager, t.md.Origin)
	switch {
	case t.md.KeyManager == types.KeyManagerTypeAws:
		t.add(Check{Name: CheckKeyManager, Status: Fail, Value: v, Reason: "the key is an AWS managed key (alias/aws/…), whose policy cannot be changed to let the platform in",
			Remedy: "create a customer managed key: KMS console > Customer managed keys > Create key > Symmetric, Encrypt and decrypt"})
	case t.md.Origin == types.OriginTypeExternal:
		t.add(Check{Name: CheckKeyManager, Status: Warn, Value: v, Reason: "the key's material is imported: if it expires or is deleted, the tenant's data is unreadable until the same material is imported again, and KMS cannot rotate it",
			Remedy: "keep a copy of the key material; prefer a key with KMS-generated material"})
	default:
		t.add(Check{Name: CheckKeyManager, Status: Pass, Value: v, Reason: "a customer managed key"})
	}
}

func (t *tester) checkKeySpec() {
	if !t.needs(CheckKeySpec, CheckKeyRead) {
		return
	}
	if t.md.KeySpec != types.KeySpecSymmetricDefault {
		t.add(Check{Name: CheckKeySpec, Status: Fail, Value: string(t.md.KeySpec),
			Reason: fmt.Sprintf("the key is %s; byok wraps with KMS's symmetric encryption and needs a SYMMETRIC_DEFAULT key", t.md.KeySpec),
			Remedy: "create a symmetric key (KMS console > Create key > Symmetric, Encrypt and decrypt; or `aws kms create-key --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT`) and enter its ARN, or point the alias at it"})
		return
	}
	t.add(Check{Name: CheckKeySpec, Status: Pass, Value: string(t.md.KeySpec), Reason: "a symmetric key (AES-256-GCM in KMS's HSMs)"})
}

func (t *tester) checkKeyUsage() {
	if !t.needs(CheckKeyUsage, CheckKeyRead) {
		return
	}
	if t.md.KeyUsage != types.KeyUsageTypeEncryptDecrypt {
		t.add(Check{Name: CheckKeyUsage, Status: Fail, Value: string(t.md.KeyUsage),
			Reason: fmt.Sprintf("the key's usage is %s; byok needs ENCRYPT_DECRYPT", t.md.KeyUsage),
			Remedy: "a key's usage cannot change: create a key with usage Encrypt and decrypt (`aws kms create-key --key-usage ENCRYPT_DECRYPT`) and enter its ARN"})
		return
	}
	t.add(Check{Name: CheckKeyUsage, Status: Pass, Value: string(t.md.KeyUsage), Reason: "the key encrypts and decrypts"})
}

func (t *tester) checkKeyState() {
	if !t.needs(CheckKeyState, CheckKeyRead) {
		return
	}
	arn := aws.ToString(t.md.Arn)
	c := Check{Name: CheckKeyState, Status: Fail, Value: string(t.md.KeyState)}
	switch t.md.KeyState {
	case types.KeyStateEnabled:
		c.Status, c.Reason = Pass, "the key is enabled"
	case types.KeyStateDisabled:
		c.Reason = "the key is disabled: every Encrypt and Decrypt is refused"
		c.Remedy = "enable it: KMS console > the key > Key actions > Enable, or `aws kms enable-key --key-id " + arn + "`"
	case types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
		when := ""
		if t.md.DeletionDate != nil {
			when = " on " + t.md.DeletionDate.UTC().Format("2006-01-02")
		}
		c.Reason = "the key is scheduled for deletion" + when + ": it is unusable now, and once deleted the tenant's data is lost for good"
		c.Remedy = "cancel the deletion and enable the key: KMS console > the key > Key actions > Cancel key deletion, then Enable; or `aws kms cancel-key-deletion --key-id " + arn + "` and `aws kms enable-key --key-id " + arn + "`"
	case types.KeyStatePendingImport:
		c.Reason = "the key has no key material: it was created for imported material that is not imported (or has expired)"
		c.Remedy = "import the key material (KMS console > the key > Key material > Import key material)"
	case types.KeyStateUnavailable:
		c.Reason = "the key is unavailable: its custom key store is disconnected"
		c.Remedy = "connect the custom key store (KMS console > Custom key stores > Connect)"
	default:
		c.Status, c.Reason = Warn, "the key is "+string(t.md.KeyState)+"; test again once KMS has finished"
	}
	t.add(c)
}

func (t *tester) checkRotation(ctx context.Context) {
	if !t.needs(CheckRotation, CheckKeySpec) {
		return
	}
	if t.md.Origin == types.OriginTypeExternal {
		t.add(Check{Name: CheckRotation, Status: Warn, Value: "not available", Reason: "KMS does not rotate imported key material automatically",
			Remedy: "rotate by creating a new key and pointing the alias at it; byok re-wraps the tenant's share under the new key"})
		return
	}
	arn := aws.ToString(t.md.Arn)
	var out *awskms.GetKeyRotationStatusOutput
	err := t.p.call(ctx, "rotation-status", arn, t.arn, func(ctx context.Context, c *awskms.Client, o func(*awskms.Options)) (middleware.Metadata, error) {
		var err error
		out, err = c.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: aws.String(arn)}, o)
		if err != nil {
			return middleware.Metadata{}, err
		}
		return out.ResultMetadata, nil
	})
	c := Check{Name: CheckRotation, Status: Warn}
	switch {
	case err == nil && out.KeyRotationEnabled:
		c.Status, c.Value, c.Reason = Pass, "on", "KMS rotates the key's material automatically; the ARN stays, old ciphertexts still decrypt, and byok has nothing to re-wrap"
		if out.RotationPeriodInDays != nil {
			c.Value = fmt.Sprintf("on, every %d days", *out.RotationPeriodInDays)
		}
	case err == nil:
		c.Value, c.Reason = "off", "automatic key rotation is off"
		c.Remedy = "turn it on: KMS console > the key > Key rotation > Automatically rotate this KMS key, or `aws kms enable-key-rotation --key-id " + arn + "`"
	case kms.ReasonOf(err) == kms.ReasonDenied:
		t.denied(&c, "kms:GetKeyRotationStatus", err)
		c.Value = "unknown"
		c.Reason = "could not read whether automatic rotation is on: " + c.Reason
	default:
		c.Value, c.Reason, c.Remedy = "unknown", "could not read the rotation status: "+errors.Unwrap(err).Error(), "test again"
	}
	t.add(c)
}
