package gcpkms

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/openbyok/byok/kms"
)

// testBinding is the binding of Test configuration's round trip, so that
// its shares can never be taken for a tenant's.
var testBinding = kms.Binding{Kind: "byok-test-configuration", Epoch: 0}

// otherTenant is the tenant of the tenant-binding check.
const otherTenant = "byok-test-configuration-other-tenant"

func (t *tester) checkKeyRead(ctx context.Context) {
	if !t.needs(CheckKeyRead, CheckPermissions) {
		return
	}
	k, err := t.p.getKey(ctx, "test", t.name.Key())
	if err != nil {
		t.add(Check{Name: CheckKeyRead, Status: Fail, Value: t.name.Key(), Reason: "GetCryptoKey failed: " + firstLine(err.Error()), Remedy: t.remedyFor(err)})
		return
	}
	t.key, t.ver = k, k.GetPrimary()
	if t.name.Version != 0 {
		if t.ver, err = t.p.getVersion(ctx, "test", t.name.String()); err != nil {
			t.add(Check{Name: CheckKeyRead, Status: Fail, Value: t.name.String(), Reason: "GetCryptoKeyVersion failed: " + firstLine(err.Error()), Remedy: t.remedyFor(err)})
			return
		}
	}
	t.add(Check{Name: CheckKeyRead, Status: Pass, Value: k.GetName(), Reason: "the platform reads the key's settings"})
}

func (t *tester) checkPurpose() {
	if !t.needs(CheckPurpose, CheckKeyRead) {
		return
	}
	if p := t.key.GetPurpose(); p != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		t.add(Check{Name: CheckPurpose, Status: Fail, Value: p.String(),
			Reason: "the key's purpose is " + p.String() + "; byok needs a symmetric encrypt/decrypt key (a key's purpose cannot be changed)",
			Remedy: fmt.Sprintf("create a key with purpose Symmetric encrypt/decrypt, `gcloud kms keys create KEY %s --purpose encryption --rotation-period 90d --next-rotation-time %s`, and enter its name",
				t.gcloud(), nextRotation())})
		return
	}
	t.add(Check{Name: CheckPurpose, Status: Pass, Value: "ENCRYPT_DECRYPT", Reason: "a symmetric encrypt/decrypt key"})
}

func (t *tester) checkVersion() {
	if !t.needs(CheckVersion, CheckPurpose) {
		return
	}
	v := t.ver
	if v == nil {
		t.add(Check{Name: CheckVersion, Status: Fail, Reason: "the key has no primary version: every Encrypt is refused",
			Remedy: fmt.Sprintf("create one: `gcloud kms keys versions create --key %s %s --primary`", t.name.CryptoKey, t.gcloud())})
		return
	}
	n, _ := ParseKeyName(v.GetName())
	ver := strconv.Itoa(n.Version)
	flags := fmt.Sprintf("--key %s %s", t.name.CryptoKey, t.gcloud())
	switch st := v.GetState(); st {
	case kmspb.CryptoKeyVersion_ENABLED:
		t.add(Check{Name: CheckVersion, Status: Pass, Value: v.GetName() + " ENABLED", Reason: "the version byok wraps under is enabled"})
	case kmspb.CryptoKeyVersion_DISABLED:
		t.add(Check{Name: CheckVersion, Status: Fail, Value: v.GetName() + " DISABLED", Reason: "the version byok wraps under is disabled: every Encrypt and Decrypt with it is refused",
			Remedy: fmt.Sprintf("enable it: `gcloud kms keys versions enable %s %s` (Key Management > the key > the version > ⋮ > Enable)", ver, flags)})
	case kmspb.CryptoKeyVersion_DESTROY_SCHEDULED:
		t.add(Check{Name: CheckVersion, Status: Fail, Value: v.GetName() + " DESTROY_SCHEDULED",
			Reason: fmt.Sprintf("the version byok wraps under is scheduled for destruction on %s; everything wrapped under it is then lost", v.GetDestroyTime().AsTime().UTC().Format(time.RFC3339)),
			Remedy: fmt.Sprintf("restore it before then, `gcloud kms keys versions restore %s %s`, then enable it, `gcloud kms keys versions enable %s %s`", ver, flags, ver, flags)})
	default:
		t.add(Check{Name: CheckVersion, Status: Fail, Value: v.GetName() + " " + st.String(), Reason: "the version byok wraps under is " + st.String() + " and cannot be used",
			Remedy: fmt.Sprintf("make a new primary version: `gcloud kms keys versions create --key %s --primary`", flags)})
	}
}

func (t *tester) checkProtection() {
	if !t.needs(CheckProtection, CheckVersion) {
		return
	}
	switch pl := t.ver.GetProtectionLevel(); pl {
	case kmspb.ProtectionLevel_HSM:
		t.add(Check{Name: CheckProtection, Status: Pass, Value: "HSM", Reason: "the key material is held in Cloud HSM (FIPS 140-2 Level 3) and never leaves it"})
	case kmspb.ProtectionLevel_SOFTWARE:
		t.add(Check{Name: CheckProtection, Status: Pass, Value: "SOFTWARE", Reason: "the key material is protected by Google in software (FIPS 140-2 Level 1); choose an HSM key if your policy requires hardware"})
	default:
		t.add(Check{Name: CheckProtection, Status: Warn, Value: pl.String(), Reason: "byok has not been tested with " + pl.String() + " keys",
			Remedy: "use a key with protection level SOFTWARE or HSM"})
	}
}

func (t *tester) checkRotation() {
	if !t.needs(CheckRotation, CheckPurpose) {
		return
	}
	rp := t.key.GetRotationPeriod()
	switch {
	case t.name.Version != 0:
		t.add(Check{Name: CheckRotation, Status: Warn, Value: "pinned to version " + strconv.Itoa(t.name.Version),
			Reason: "byok wraps under the pinned version whatever the key's rotation", Remedy: "enter the key's name without the version to follow rotation"})
	case rp == nil:
		t.add(Check{Name: CheckRotation, Status: Warn, Value: "none", Reason: "the key never rotates automatically",
			Remedy: fmt.Sprintf("set a rotation period: `gcloud kms keys update %s %s --rotation-period 90d --next-rotation-time %s` (Key Management > the key > Edit rotation period)",
				t.name.CryptoKey, t.gcloud(), nextRotation())})
	default:
		t.add(Check{Name: CheckRotation, Status: Pass, Value: rp.AsDuration().String(),
			Reason: "the key rotates automatically; next " + t.key.GetNextRotationTime().AsTime().UTC().Format(time.RFC3339) + "; byok follows the new primary version"})
	}
}

// nextRotation is a --next-rotation-time 90 days ahead.
func nextRotation() string {
	return time.Now().UTC().Add(90 * 24 * time.Hour).Format("2006-01-02T15:04:05Z")
}

// checkRoundTrip wraps and unwraps 32 random bytes with the tenant's AAD
// (and a test binding), then checks another tenant's AAD is refused.
func (t *tester) checkRoundTrip(ctx context.Context) {
	if !t.needs(CheckRoundTrip, CheckPermissions) {
		t.add(Check{Name: CheckTenantBound, Status: Skip, Reason: "not run: the round-trip check did not pass"})
		return
	}
	ctx = kms.WithBinding(ctx, testBinding)
	pt := make([]byte, 32)
	rand.Read(pt)
	start := time.Now()
	w, err := t.p.Wrap(ctx, t.cfg.KeyName, pt)
	var got []byte
	if err == nil {
		got, err = t.p.Unwrap(ctx, w)
	}
	if err != nil || !bytes.Equal(got, pt) {
		reason := "the round trip returned other bytes"
		if err != nil {
			reason = firstLine(err.Error())
		}
		t.add(Check{Name: CheckRoundTrip, Status: Fail, Reason: reason, Remedy: t.remedyFor(err)})
		t.add(Check{Name: CheckTenantBound, Status: Skip, Reason: "not run: the round-trip check did not pass"})
		return
	}
	t.add(Check{Name: CheckRoundTrip, Status: Pass, Value: fmt.Sprintf("%s in %s", w.KeyID, elapsed(time.Since(start))),
		Reason: "wrapped and unwrapped 32 bytes with the tenant's additional authenticated data"})
	cfg := t.p.cfg
	cfg.Tenant = otherTenant
	cfg.Logger = nil // a refusal is the answer hoped for: not a warning
	other := &Provider{cfg: cfg, client: t.p.client}
	if _, err := other.Unwrap(ctx, w); kms.ClassOf(err) != kms.Invalid {
		t.add(Check{Name: CheckTenantBound, Status: Fail, Reason: fmt.Sprintf("a share unwrapped with another tenant's AAD did not fail as invalid: %v", err),
			Remedy: "check that " + t.cfg.endpoint() + " is Cloud KMS: it must refuse a ciphertext with other additional authenticated data"})
		return
	}
	t.add(Check{Name: CheckTenantBound, Status: Pass, Reason: "Cloud KMS refuses the tenant's share with another tenant's AAD"})
}

// remedyFor is the remedy of a failed key call, by its reason.
func (t *tester) remedyFor(err error) string {
	flags := fmt.Sprintf("--key %s %s", t.name.CryptoKey, t.gcloud())
	switch kms.ReasonOf(err) {
	case kms.ReasonDenied:
		return "grant the platform's service account the roles on the key:\n" + GrantCommand(t.name, t.report.ServiceAccount, RoleEncrypterDecrypter) +
			"\n" + GrantCommand(t.name, t.report.ServiceAccount, RoleViewer)
	case kms.ReasonNotFound:
		return "the key or version does not exist: check the name; `gcloud kms keys versions list " + flags + "` lists the versions"
	case kms.ReasonDisabled:
		return "enable the version: `gcloud kms keys versions enable N " + flags + "`"
	case ReasonDestroyed:
		return "restore a version scheduled for destruction (`gcloud kms keys versions restore N " + flags + "`), or create a new primary version (`gcloud kms keys versions create " + flags + " --primary`)"
	case kms.ReasonUnauthenticated:
		return "check the platform's service account and its key (the credentials check)"
	case kms.ReasonBadRequest:
		return "use a key with purpose Symmetric encrypt/decrypt"
	}
	return "Cloud KMS did not answer in time or refused for a passing reason: retry; if it persists, check https://status.cloud.google.com and the platform's network path to " + t.cfg.endpoint()
}
