package azurekv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/openbyok/byok/kms"
)

// remedyFor403 names what to change for a 403 of the vault on op
// ("get", "wrapKey", …).
func (t *tester) remedyFor403(err error, op string) (reason, remedy string) {
	var re *azcore.ResponseError
	inner := ""
	if errors.As(err, &re) {
		_, inner, _ = responseCodes(re)
	}
	principal := t.cfg.Credential.String()
	switch inner {
	case "ForbiddenByFirewall":
		return "the vault's firewall refuses the platform's address",
			"on the vault's Networking blade, allow the platform's egress IP addresses, or give the platform a private endpoint (Networking > Private endpoint connections)"
	case "ForbiddenByPolicy":
		return "an Azure Policy on the vault refuses the call", "ask the vault's owner which Azure Policy denies Key Vault data actions for " + principal
	case "AccessDenied":
		return fmt.Sprintf("the vault's access policies do not give %s the %s permission", principal, op),
			fmt.Sprintf("on the vault's Access policies blade, give %s the key permissions Get, Wrap Key and Unwrap Key (or move the vault to Azure RBAC and assign Key Vault Crypto Service Encryption User)", principal)
	}
	action := map[string]string{"get": "keys/read", "wrapKey": "keys/wrap/action", "unwrapKey": "keys/unwrap/action",
		"encrypt": "keys/encrypt/action", "decrypt": "keys/decrypt/action"}[op]
	return fmt.Sprintf("%s has no role on the vault or key that allows Microsoft.KeyVault/vaults/%s", principal, action),
		fmt.Sprintf("on the vault's Access control (IAM) blade, assign %s the role Key Vault Crypto Service Encryption User (or Key Vault Crypto User, or a custom role with the data actions Microsoft.KeyVault/vaults/keys/read, Microsoft.KeyVault/vaults/keys/wrap/action and Microsoft.KeyVault/vaults/keys/unwrap/action)", principal)
}

func (t *tester) checkKeyRead(ctx context.Context) {
	if !t.needs(CheckKeyRead, CheckAuthentication) {
		return
	}
	info, err := t.p.describe(ctx, t.id.String())
	if err == nil {
		t.info = info
		t.add(Check{Name: CheckKeyRead, Status: Pass, Value: info.KeyID, Reason: "the principal can read the key (get)"})
		return
	}
	t.countThrottled(err)
	c := Check{Name: CheckKeyRead, Status: Fail, Value: string(kms.ReasonOf(err))}
	switch kms.ReasonOf(err) {
	case kms.ReasonDenied:
		c.Reason, c.Remedy = t.remedyFor403(err, "get")
	case kms.ReasonNotFound:
		c.Reason = fmt.Sprintf("the vault %s has no key %s", t.id.Vault, t.id.Name)
		if t.id.Version != "" {
			c.Reason = fmt.Sprintf("the key %s has no version %s", t.id.Name, t.id.Version)
		}
		c.Remedy = "check the key identifier on the vault's Keys blade; a deleted key can be recovered under Keys > Manage deleted keys (az keyvault key recover)"
	case kms.ReasonUnauthenticated:
		c.Reason = "the vault refused the token: " + errors.Unwrap(err).Error()
		c.Remedy = "make sure the vault and the app are in tenant " + t.cfg.TenantID
	default:
		c.Reason = "reading the key failed: " + errors.Unwrap(err).Error()
		c.Remedy = "test again; if it persists, check the vault's health in the Azure portal"
	}
	t.add(c)
}

// checkOwnership runs with a shared identity only (PlatformApp, or
// Config.SharedIdentity): the key read must carry the owner tag, since the
// platform's own identities reach the vaults of other tenants too.
func (t *tester) checkOwnership() {
	if !t.cfg.sharedIdentity() {
		t.add(Check{Name: CheckOwnership, Status: Skip,
			Reason: "not needed: byok signs in with the customer's own credential, which proves control of the directory"})
		return
	}
	if !t.needs(CheckOwnership, CheckKeyRead) {
		return
	}
	tag := OwnerTagName + "=" + t.cfg.OwnerTag
	if t.cfg.owns(t.info.Tags) {
		t.add(Check{Name: CheckOwnership, Status: Pass, Value: tag, Reason: "the key carries the tag that proves this byok tenant owns it"})
		return
	}
	t.add(Check{Name: CheckOwnership, Status: Fail, Value: "no tag " + tag,
		Reason: t.cfg.sharedWhy() + ", so the key must prove that this tenant owns it: its version " +
			versionOf(t.info.KeyID) + " does not carry the tag " + tag + " (only someone allowed to change the key can set it); no operation was tried on the key",
		Remedy: t.cfg.ownerRemedy(t.id)})
}

// owned reports whether operations may be tried on the key: with the
// customer's own credential always, with PlatformApp once ownership passed.
func (t *tester) owned() bool {
	return !t.cfg.sharedIdentity() || t.status[CheckOwnership] == Pass
}

// versionOf returns the version of a versioned key id, or the id itself.
func versionOf(keyID string) string {
	if id, err := ParseKeyID(keyID); err == nil && id.Version != "" {
		return id.Version
	}
	return keyID
}

// opResult is the outcome of one probed operation.
type opResult struct {
	allowed bool
	err     error // nil when allowed
}

// probeOperations tries wrapKey, encrypt, unwrapKey and decrypt. The
// unwrap probes use a real ciphertext when a wrap succeeded, else random
// bytes: the vault checks rights before it decrypts, so 400 means allowed.
func (t *tester) probeOperations(ctx context.Context) {
	if t.status[CheckAuthentication] != Pass || !t.owned() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.timeout())
	defer cancel()
	c, err := t.p.client(t.id)
	if err != nil {
		return
	}
	alg := to.Ptr(azkeys.EncryptionAlgorithm(t.cfg.algorithm()))
	pt := make([]byte, 32)
	rand.Read(pt)
	t.ops = map[string]opResult{}
	var ct []byte
	record := func(op string, err error) {
		t.countThrottled(err)
		if err == nil {
			t.ops[op] = opResult{allowed: true}
			return
		}
		ke := Classify(op, t.id.String(), err)
		if ke.Class == kms.Invalid { // got past the rights check
			t.ops[op] = opResult{allowed: true}
			return
		}
		t.ops[op] = opResult{err: ke}
	}
	w, err := c.WrapKey(ctx, t.id.Name, t.id.Version, azkeys.KeyOperationParameters{Algorithm: alg, Value: pt}, nil)
	record("wrapKey", err)
	if err == nil {
		ct = w.Result
	}
	e, err := c.Encrypt(ctx, t.id.Name, t.id.Version, azkeys.KeyOperationParameters{Algorithm: alg, Value: pt}, nil)
	record("encrypt", err)
	if err == nil && ct == nil {
		ct = e.Result
	}
	version := t.id.Version
	if ct == nil {
		ct = make([]byte, 256)
		rand.Read(ct)
	} else if w.KID != nil {
		version = w.KID.Version()
	} else if e.KID != nil {
		version = e.KID.Version()
	}
	_, err = c.UnwrapKey(ctx, t.id.Name, version, azkeys.KeyOperationParameters{Algorithm: alg, Value: ct}, nil)
	record("unwrapKey", err)
	_, err = c.Decrypt(ctx, t.id.Name, version, azkeys.KeyOperationParameters{Algorithm: alg, Value: ct}, nil)
	record("decrypt", err)
	for _, op := range []string{"wrapKey", "unwrapKey", "encrypt", "decrypt"} {
		if t.ops[op].allowed {
			t.report.Operations = append(t.report.Operations, op)
		}
	}
}

func (t *tester) countThrottled(err error) {
	if err != nil && Classify("", "", err).Reason == kms.ReasonThrottled {
		t.throttled++
	}
}

func (t *tester) checkPermissions() {
	if !t.needs(CheckPermissions, CheckAuthentication) {
		return
	}
	if !t.owned() {
		t.add(Check{Name: CheckPermissions, Status: Skip, Reason: "not run: the ownership check did not pass"})
		return
	}
	var allowed, denied []string
	for _, op := range []string{"wrapKey", "unwrapKey", "encrypt", "decrypt"} {
		if t.ops[op].allowed {
			allowed = append(allowed, op)
		} else if kms.ReasonOf(t.ops[op].err) == kms.ReasonDenied {
			denied = append(denied, op)
		}
	}
	v := fmt.Sprintf("allowed: %s; denied: %s", list(allowed), list(denied))
	want := []string{"wrapKey", "unwrapKey"}
	other, otherMode := []string{"encrypt", "decrypt"}, ModeEncrypt
	if t.cfg.mode() == ModeEncrypt {
		want, other, otherMode = other, want, ModeWrap
	}
	has := func(ops []string) bool { return slices.Contains(allowed, ops[0]) && slices.Contains(allowed, ops[1]) }
	var deniedWant, undetermined []string
	var firstDenied error
	for _, op := range want {
		r := t.ops[op]
		switch {
		case r.allowed:
		case kms.ReasonOf(r.err) == kms.ReasonDenied:
			deniedWant = append(deniedWant, op)
			if firstDenied == nil {
				firstDenied = r.err
			}
		default:
			undetermined = append(undetermined, op+" ("+string(kms.ReasonOf(r.err))+")")
		}
	}
	switch {
	case has(want):
		t.add(Check{Name: CheckPermissions, Status: Pass, Value: v, Reason: fmt.Sprintf("the principal may use %s and %s, as the %s mode needs", want[0], want[1], t.cfg.mode())})
	case has(other):
		t.report.SuggestedMode = otherMode
		t.add(Check{Name: CheckPermissions, Status: Fail, Value: v,
			Reason: fmt.Sprintf("the principal's role grants %s and %s but not %s and %s, which the %s mode uses", other[0], other[1], want[0], want[1], t.cfg.mode()),
			Remedy: fmt.Sprintf("switch the key's mode to %q (byok then uses %s/%s), or add the data actions %s to the role", otherMode, other[0], other[1], dataActions(want))})
	case firstDenied == nil:
		t.add(Check{Name: CheckPermissions, Status: Skip, Value: v + "; not determined: " + strings.Join(undetermined, ", "),
			Reason: "the key's state prevents testing the principal's rights; see the key checks below"})
	default:
		reason, remedy := t.remedyFor403(firstDenied, deniedWant[0])
		t.add(Check{Name: CheckPermissions, Status: Fail, Value: v, Reason: fmt.Sprintf("%s may not use %s: %s", t.cfg.Credential, list(deniedWant), reason), Remedy: remedy})
	}
}

func missingOps(want, allowed []string) []string {
	var out []string
	for _, op := range want {
		if !slices.Contains(allowed, op) {
			out = append(out, op)
		}
	}
	return out
}

func dataActions(ops []string) string {
	var out []string
	for _, op := range ops {
		out = append(out, "Microsoft.KeyVault/vaults/keys/"+map[string]string{"wrapKey": "wrap", "unwrapKey": "unwrap", "encrypt": "encrypt", "decrypt": "decrypt"}[op]+"/action")
	}
	return strings.Join(out, " and ")
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (t *tester) checkKeyType() {
	if !t.needs(CheckKeyType, CheckKeyRead) {
		return
	}
	i := t.info
	v := fmt.Sprintf("%s %d-bit", i.Type, i.Size)
	switch {
	case i.Type != "RSA" && i.Type != "RSA-HSM":
		t.add(Check{Name: CheckKeyType, Status: Fail, Value: i.Type, Reason: fmt.Sprintf("the key is %s; byok wraps with RSA-OAEP and needs an RSA or RSA-HSM key", i.Type),
			Remedy: "create an RSA key of 2048, 3072 or 4096 bits (Keys > Generate/Import, Key type RSA; az keyvault key create --kty RSA --size 3072)"})
	case i.Size < 2048:
		t.add(Check{Name: CheckKeyType, Status: Fail, Value: v, Reason: "RSA keys under 2048 bits are too weak",
			Remedy: "create an RSA key of 2048, 3072 or 4096 bits"})
	default:
		t.add(Check{Name: CheckKeyType, Status: Pass, Value: v, Reason: "an RSA key of a supported size"})
	}
}

func (t *tester) checkKeyOperations() {
	if !t.needs(CheckKeyOperations, CheckKeyRead) {
		return
	}
	want := []string{"wrapKey", "unwrapKey"}
	if t.cfg.mode() == ModeEncrypt {
		want = []string{"encrypt", "decrypt"}
	}
	v := list(t.info.Ops)
	if miss := missingOps(want, t.info.Ops); len(miss) > 0 {
		t.add(Check{Name: CheckKeyOperations, Status: Fail, Value: v, Reason: fmt.Sprintf("the key's permitted operations exclude %s", list(miss)),
			Remedy: fmt.Sprintf("enable %s under the key version's Permitted operations (az keyvault key set-attributes --ops %s ...)", list(want), strings.Join(append(want, t.info.Ops...), " "))})
		return
	}
	t.add(Check{Name: CheckKeyOperations, Status: Pass, Value: v, Reason: fmt.Sprintf("the key permits %s", list(want))})
}

func (t *tester) checkKeyEnabled() {
	if !t.needs(CheckKeyEnabled, CheckKeyRead) {
		return
	}
	if !t.info.Enabled {
		t.add(Check{Name: CheckKeyEnabled, Status: Fail, Value: "disabled", Reason: "the key version is disabled: every wrap and unwrap is refused",
			Remedy: "set Enabled to Yes on the key version (Keys > key > version; az keyvault key set-attributes --enabled true)"})
		return
	}
	t.add(Check{Name: CheckKeyEnabled, Status: Pass, Value: "enabled", Reason: "the key version is enabled"})
}

func (t *tester) checkKeyValidity() {
	if !t.needs(CheckKeyValidity, CheckKeyRead) {
		return
	}
	now := time.Now()
	i := t.info
	v := "no activation or expiration date"
	if !i.NotBefore.IsZero() || !i.Expires.IsZero() {
		v = fmt.Sprintf("activation %s, expiration %s", dateOr(i.NotBefore, "none"), dateOr(i.Expires, "none"))
	}
	switch {
	case !i.NotBefore.IsZero() && now.Before(i.NotBefore):
		t.add(Check{Name: CheckKeyValidity, Status: Fail, Value: v, Reason: "the key is not active yet: wrapping is refused until its activation date",
			Remedy: "clear or move back the key version's Activation date (az keyvault key set-attributes --not-before)"})
	case !i.Expires.IsZero() && !now.Before(i.Expires):
		t.add(Check{Name: CheckKeyValidity, Status: Fail, Value: v, Reason: "the key has expired: wrapping is refused",
			Remedy: "rotate to a new key version, or extend the version's Expiration date (az keyvault key set-attributes --expires)"})
	case !i.Expires.IsZero() && i.Expires.Sub(now) < expiryWarn:
		t.add(Check{Name: CheckKeyValidity, Status: Warn, Value: v, Reason: "the key expires within 30 days; after that byok cannot wrap new shares with it",
			Remedy: "rotate the key (new version) or extend its Expiration date before " + dateOr(i.Expires, "")})
	default:
		t.add(Check{Name: CheckKeyValidity, Status: Pass, Value: v, Reason: "the key is within its validity window"})
	}
}

func dateOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func (t *tester) checkSoftDelete() {
	if !t.needs(CheckSoftDelete, CheckKeyRead) {
		return
	}
	lvl := t.info.RecoveryLevel
	v := fmt.Sprintf("recoveryLevel %s, %d days", lvl, t.info.RecoverableDays)
	switch {
	case lvl == "" || lvl == "Purgeable":
		t.add(Check{Name: CheckSoftDelete, Status: Fail, Value: v, Reason: "the vault has no soft delete: a deleted key is gone at once, and with it the tenant's data",
			Remedy: "enable soft delete and purge protection on the vault's Properties blade (az keyvault update --enable-purge-protection true)"})
	case strings.Contains(lvl, "Purgeable"):
		t.add(Check{Name: CheckSoftDelete, Status: Fail, Value: v, Reason: "the vault has soft delete but no purge protection: anyone with purge rights can destroy the key, and with it the tenant's data, before the retention period ends",
			Remedy: "enable purge protection on the vault's Properties blade (az keyvault update --name " + t.id.Vault + " --enable-purge-protection true); it cannot be turned off again"})
	default:
		t.add(Check{Name: CheckSoftDelete, Status: Pass, Value: v, Reason: "soft delete and purge protection are on"})
	}
}

func (t *tester) checkRoundTrip(ctx context.Context) {
	if !t.needs(CheckRoundTrip, CheckPermissions, CheckKeyEnabled, CheckKeyValidity, CheckKeyOperations) {
		return
	}
	pt := make([]byte, 32)
	rand.Read(pt)
	w, err := t.p.Wrap(ctx, t.id.String(), pt)
	if err == nil {
		var got []byte
		got, err = t.p.Unwrap(ctx, w)
		if err == nil && string(got) != string(pt) {
			err = errors.New("the unwrapped value differs from the wrapped one")
		}
	}
	if err != nil {
		t.countThrottled(err)
		t.add(Check{Name: CheckRoundTrip, Status: Fail, Value: string(kms.ReasonOf(err)), Reason: "a wrap/unwrap round trip failed: " + err.Error(),
			Remedy: "fix the failures above and test again; if none, retry later (the vault may be throttling or unavailable)"})
		return
	}
	t.wrapped = w
	t.add(Check{Name: CheckRoundTrip, Status: Pass, Value: w.KeyID + " " + w.Algorithm, Reason: "a 32-byte share wrapped and unwrapped; byok records the exact key version"})
}

func (t *tester) checkLatency(ctx context.Context) {
	if !t.needs(CheckLatency, CheckRoundTrip) {
		return
	}
	var d []time.Duration
	for range latencySample {
		start := time.Now()
		if _, err := t.p.Unwrap(ctx, t.wrapped); err != nil {
			t.countThrottled(err)
			t.add(Check{Name: CheckLatency, Status: Warn, Value: fmt.Sprintf("%d of %d calls done", len(d), latencySample),
				Reason: "an unwrap failed while measuring latency: " + err.Error(), Remedy: "test again; if it persists, check the vault's health in the Azure portal"})
			return
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	p50, p95 := d[len(d)/2], d[(len(d)*95+99)/100-1]
	v := fmt.Sprintf("unwrap p50 %v, p95 %v over %d calls", p50.Round(time.Millisecond), p95.Round(time.Millisecond), len(d))
	if p95 > latencyWarn {
		t.add(Check{Name: CheckLatency, Status: Warn, Value: v, Reason: "the vault answers slowly; byok's periodic key checks and cold starts will be slow",
			Remedy: "use a vault in (or near) the platform's region, or a private endpoint"})
		return
	}
	t.add(Check{Name: CheckLatency, Status: Pass, Value: v, Reason: "the vault answers promptly"})
}

func (t *tester) checkThrottle() {
	if !t.needs(CheckThrottle, CheckKeyType) {
		return
	}
	limit := documentedLimit(t.info.Type, t.info.Size)
	v := fmt.Sprintf("Key Vault allows %d operations per 10 s on %s %d-bit keys per vault; byok's budget for %s has %.0f of %d left; %d throttled answers during this test",
		limit, t.info.Type, t.info.Size, t.id.Host, budgetFor(t.id.Host).available()/opCost(t.info.Type, t.info.Size), limit, t.throttled)
	if t.id.ManagedHSM {
		v = "Managed HSM does not throttle crypto operations per vault"
	}
	if t.throttled > 0 {
		t.add(Check{Name: CheckThrottle, Status: Warn, Value: v, Reason: "the vault throttled byok's test calls (429): other clients use most of its budget",
			Remedy: "give byok's key its own vault, or reduce the other load on this vault"})
		return
	}
	t.add(Check{Name: CheckThrottle, Status: Pass, Value: v, Reason: "no throttling seen; byok needs about one unwrap per tenant key per check interval"})
}

func (t *tester) checkClockSkew() {
	if !t.needs(CheckClockSkew, CheckTLS) {
		return
	}
	if t.probe.date.IsZero() {
		t.add(Check{Name: CheckClockSkew, Status: Warn, Value: "unknown", Reason: "the vault's answer had no Date header"})
		return
	}
	// The Date header has one-second resolution and was set during the
	// round trip.
	skew := t.probe.receivedAt.Sub(t.probe.date)
	abs := skew.Abs() - t.probe.roundTrip - time.Second
	v := fmt.Sprintf("local clock %+v from the vault's", skew.Round(time.Second))
	switch {
	case abs > skewFail:
		t.add(Check{Name: CheckClockSkew, Status: Fail, Value: v, Reason: "the platform's clock is more than 5 minutes off: tokens and key validity dates are judged wrongly",
			Remedy: "synchronise the platform host's clock (NTP, e.g. chrony or systemd-timesyncd)"})
	case abs > skewWarn:
		t.add(Check{Name: CheckClockSkew, Status: Warn, Value: v, Reason: "the platform's clock is more than a minute off",
			Remedy: "synchronise the platform host's clock (NTP)"})
	default:
		t.add(Check{Name: CheckClockSkew, Status: Pass, Value: v, Reason: "the clocks agree"})
	}
}
