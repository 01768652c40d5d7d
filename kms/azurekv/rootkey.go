package azurekv

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/openbyok/byok/kms"
)

// The checks of [CheckRootKey], as [RootKeyError.Check] names them.
const (
	RootCheckKeyID           = "key-id"           // the id parses and names a key
	RootCheckConfig          = "config"           // the Config is valid
	RootCheckReach           = "reach"            // the vault answered (a transient failure)
	RootCheckAuthentication  = "authentication"   // byok's identity signed in
	RootCheckAccess          = "access"           // the identity holds a role that reads, wraps and unwraps
	RootCheckKeyFound        = "key-found"        // the key (version) exists
	RootCheckEnabled         = "key-enabled"      // the key is enabled
	RootCheckValidity        = "key-validity"     // now is within the key's nbf and exp
	RootCheckPurgeProtection = "purge-protection" // the vault has purge protection
	RootCheckKeyType         = "key-type"         // type and size fit the vault kind
	RootCheckKeyOps          = "key-ops"          // key_ops allow wrapKey and unwrapKey
	RootCheckRoundTrip       = "round-trip"       // 32 random bytes wrap and unwrap
)

// RootKeyInfo describes a platform root key that passed [CheckRootKey].
type RootKeyInfo struct {
	// KeyID is the versioned id of the version new shares go under (the
	// current one for a versionless id).
	KeyID string
	// Type is the key type: RSA or RSA-HSM in a vault; RSA-HSM or oct-HSM
	// in a Managed HSM.
	Type string
	// Size is the key size in bits (an oct-HSM key's 256 bits are proven
	// by the round trip with A256KW, since Key Vault does not report it).
	Size int
	// Algorithm is what Wrap records for a 32-byte share under this key.
	Algorithm string
	// ManagedHSM is set for a key in a Managed HSM.
	ManagedHSM bool
	// RecoveryLevel and RecoverableDays are the vault's soft-delete
	// settings as the key reports them.
	RecoveryLevel   string
	RecoverableDays int
	// Expires is the version's expiry; zero if none.
	Expires time.Time
}

// RootKeyError is the error of [CheckRootKey]: which check failed, why, and
// the fix, in words an operator can act on. It never holds key material,
// tokens or secrets. Err is the provider's [*kms.Error] when a vault call
// failed (errors.As reaches it), else nil.
type RootKeyError struct {
	KeyID  string // the configured key id
	Check  string // one of the RootCheck… constants
	Reason string // what is wrong
	Remedy string // how to fix it
	Err    error
}

func (e *RootKeyError) Error() string {
	msg := fmt.Sprintf("azurekv: platform root key %s: %s: %s; fix: %s", e.KeyID, e.Check, e.Reason, e.Remedy)
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

// Unwrap returns the provider's error, if any.
func (e *RootKeyError) Unwrap() error { return e.Err }

// Temporary reports whether the check failed only because the vault could
// not answer (timeout, connection, 5xx, 429): retrying may succeed.
func (e *RootKeyError) Temporary() bool {
	return e.Err != nil && kms.ClassOf(e.Err) == kms.Transient
}

// CheckRootKey checks cfg.KeyID as the platform root key, with cfg's
// credential: the id names a key (not a secret or certificate); byok's
// identity signs in and may read, wrap and unwrap; the key is enabled and
// within its nbf/exp; the vault has purge protection; the type is RSA
// (2048 bits or more) or RSA-HSM in a vault, RSA-HSM or a 256-bit oct-HSM
// in a Managed HSM; key_ops allow wrapKey and unwrapKey; and 32 random
// bytes wrap and unwrap. It makes three vault calls (get, wrap, unwrap).
// Any failure is a [*RootKeyError]. byok serve runs it at start; /readyz
// can run [Provider.CheckRootKey] on a long-lived Provider instead, which
// reuses its token.
func CheckRootKey(ctx context.Context, cfg Config) (RootKeyInfo, error) {
	if err := checkRootKeyID(cfg.KeyID); err != nil {
		return RootKeyInfo{}, err
	}
	p, err := New(cfg)
	if err != nil {
		return RootKeyInfo{}, &RootKeyError{KeyID: cfg.KeyID, Check: RootCheckConfig, Reason: err.Error(),
			Remedy: "correct platform_key.azure in the configuration (key_id and credential)"}
	}
	return p.CheckRootKey(ctx, cfg.KeyID)
}

// checkRootKeyID parses keyID, with a message of its own for the ids of a
// secret or a certificate, which look alike in the portal.
func checkRootKeyID(keyID string) *RootKeyError {
	_, err := ParseKeyID(keyID)
	if err == nil {
		return nil
	}
	e := &RootKeyError{KeyID: keyID, Check: RootCheckKeyID, Reason: err.Error(),
		Remedy: "set platform_key.azure.key_id to a key identifier, https://{vault}.vault.azure.net/keys/{name} or https://{hsm}.managedhsm.azure.net/keys/{name}"}
	if u, perr := url.Parse(keyID); perr == nil {
		switch seg, _, _ := strings.Cut(strings.TrimPrefix(strings.ToLower(u.Path), "/"), "/"); seg {
		case "secrets", "certificates":
			kind := strings.TrimSuffix(seg, "s")
			e.Reason = fmt.Sprintf("this is a %s id; the platform root key must be a key, which never leaves the vault", kind)
			e.Remedy = "open the vault's Keys blade (not Secrets or Certificates), create or pick an RSA-HSM key (or an oct-HSM key in a Managed HSM) and use its Key Identifier, https://{vault}.vault.azure.net/keys/{name}"
		}
	}
	return e
}

// CheckRootKey runs the checks of [CheckRootKey] on keyID with p's
// credential.
func (p *Provider) CheckRootKey(ctx context.Context, keyID string) (RootKeyInfo, error) {
	if err := checkRootKeyID(keyID); err != nil {
		return RootKeyInfo{}, err
	}
	id, _ := ParseKeyID(keyID)
	fail := func(check, reason, remedy string) (RootKeyInfo, error) {
		return RootKeyInfo{}, &RootKeyError{KeyID: keyID, Check: check, Reason: reason, Remedy: remedy}
	}

	info, err := p.describe(ctx, keyID)
	if err != nil {
		return RootKeyInfo{}, p.rootCallError(keyID, id, "reading the key", err)
	}
	out := RootKeyInfo{KeyID: info.KeyID, Type: info.Type, Size: info.Size, ManagedHSM: id.ManagedHSM,
		RecoveryLevel: info.RecoveryLevel, RecoverableDays: info.RecoverableDays, Expires: info.Expires}

	now := time.Now()
	switch {
	case !info.Enabled:
		return fail(RootCheckEnabled, "the key version "+info.KeyID+" is disabled, so the vault refuses to wrap and unwrap with it",
			"enable it: "+keyCommand("set-attributes", id, info.KeyID)+" --enabled true")
	case !info.NotBefore.IsZero() && now.Before(info.NotBefore):
		return fail(RootCheckValidity, "the key version is not active until "+info.NotBefore.UTC().Format(time.RFC3339),
			"clear or move back its activation date: "+keyCommand("set-attributes", id, info.KeyID)+" --not-before "+now.UTC().Format("2006-01-02T15:04:05Z"))
	case !info.Expires.IsZero() && !now.Before(info.Expires):
		return fail(RootCheckValidity, "the key version expired at "+info.Expires.UTC().Format(time.RFC3339)+"; the vault no longer wraps with it",
			"create a new version ("+keyCommand("rotate", id, "")+") or extend this one ("+keyCommand("set-attributes", id, info.KeyID)+" --expires <date>)")
	}

	switch {
	case info.RecoveryLevel == "":
		return fail(RootCheckPurgeProtection, "the vault did not report the key's recovery level, so purge protection cannot be confirmed",
			purgeRemedy(id))
	case strings.Contains(info.RecoveryLevel, "Purgeable"):
		return fail(RootCheckPurgeProtection, fmt.Sprintf("the vault lacks purge protection (recovery level %s): anyone allowed to delete and purge the key would make every tenant's data unreadable for good", info.RecoveryLevel),
			purgeRemedy(id))
	}

	if reason, remedy := rootKeyType(id, info.KeyInfo); reason != "" {
		return fail(RootCheckKeyType, reason, remedy)
	}

	kind := kindOf(info.Type)
	want := []string{"wrapKey", "unwrapKey"}
	if kind == kindRSA && p.cfg.mode() == ModeEncrypt {
		want = []string{"encrypt", "decrypt"}
	}
	var missing []string
	for _, op := range want {
		found := false
		for _, have := range info.Ops {
			found = found || strings.EqualFold(have, op)
		}
		if !found {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		ops := append(append([]string{}, info.Ops...), missing...)
		return fail(RootCheckKeyOps, fmt.Sprintf("the key's permitted operations (%s) lack %s", strings.Join(info.Ops, ", "), strings.Join(missing, " and ")),
			"permit them: "+keyCommand("set-attributes", id, info.KeyID)+" --ops "+strings.Join(ops, " "))
	}

	share := make([]byte, 32)
	rand.Read(share)
	defer clear(share)
	w, err := p.Wrap(ctx, keyID, share)
	if err != nil {
		if kind == kindAES && kms.ReasonOf(err) == kms.ReasonBadRequest {
			return RootKeyInfo{}, &RootKeyError{KeyID: keyID, Check: RootCheckKeyType, Err: err,
				Reason: "the oct-HSM key is not a 256-bit AES key: the HSM refused A256KW with it",
				Remedy: "create a 256-bit key: " + keyCommand("create", id, "") + " --kty oct-HSM --size 256"}
		}
		return RootKeyInfo{}, p.rootCallError(keyID, id, "wrapping 32 random bytes", err)
	}
	got, err := p.Unwrap(ctx, w)
	if err != nil {
		return RootKeyInfo{}, p.rootCallError(keyID, id, "unwrapping what it just wrapped", err)
	}
	defer clear(got)
	if subtle.ConstantTimeCompare(got, share) != 1 {
		return fail(RootCheckRoundTrip, "the vault unwrapped other bytes than it wrapped",
			"check that nothing between byok and the vault alters requests (a proxy), then retry")
	}
	out.KeyID, out.Algorithm = w.KeyID, w.Algorithm
	if kind == kindAES && out.Size == 0 && w.Algorithm == AlgorithmA256KW {
		out.Size = 256
	}
	return out, nil
}

// rootKeyType returns why info's type does not fit a platform root key in
// id's kind of vault, and the fix; "" if it fits.
func rootKeyType(id KeyID, info kms.KeyInfo) (reason, remedy string) {
	switch {
	case id.ManagedHSM && info.Type == "oct-HSM":
		if info.Size != 0 && info.Size != 256 {
			return fmt.Sprintf("the oct-HSM key has %d bits; byok needs a 256-bit AES key (A256KW)", info.Size),
				"create a 256-bit key: " + keyCommand("create", id, "") + " --kty oct-HSM --size 256"
		}
		return "", ""
	case info.Type == "RSA-HSM" || (info.Type == "RSA" && !id.ManagedHSM):
		if info.Size < 2048 {
			return fmt.Sprintf("the %s key has %d bits; byok needs at least 2048", info.Type, info.Size),
				"create an RSA key of 3072 bits: " + keyCommand("create", id, "") + " --kty RSA-HSM --size 3072"
		}
		return "", ""
	}
	fits := "RSA (2048 bits or more) or RSA-HSM in a vault"
	create := keyCommand("create", id, "") + " --kty RSA-HSM --size 3072"
	if id.ManagedHSM {
		fits = "RSA-HSM or a 256-bit oct-HSM (AES) key in a Managed HSM"
		create = keyCommand("create", id, "") + " --kty oct-HSM --size 256"
	}
	why := fmt.Sprintf("the key is of type %s; the platform root key must be %s", info.Type, fits)
	switch {
	case strings.HasPrefix(info.Type, "EC"):
		why += ", since an EC key signs and cannot wrap"
	case info.Type == "oct-HSM":
		why += " (oct-HSM keys in a vault are a preview of Key Vault Premium)"
	}
	return why, "create such a key and point platform_key.azure.key_id at it: " + create
}

// keyCommand returns the start of an Azure CLI key command on id's key
// (its version, if versioned names one).
func keyCommand(verb string, id KeyID, versioned string) string {
	cmd := "az keyvault key " + verb
	if id.ManagedHSM {
		cmd += " --hsm-name " + id.Vault
	} else {
		cmd += " --vault-name " + id.Vault
	}
	cmd += " --name " + id.Name
	if v, err := ParseKeyID(versioned); err == nil && v.Version != "" && verb == "set-attributes" {
		cmd += " --version " + v.Version
	}
	return cmd
}

func purgeRemedy(id KeyID) string {
	if id.ManagedHSM {
		return "turn purge protection on (it cannot be turned off): az keyvault update-hsm --hsm-name " + id.Vault + " --enable-purge-protection true"
	}
	return "turn purge protection on (it cannot be turned off): az keyvault update --name " + id.Vault + " --enable-purge-protection true"
}

// oidRE finds the caller's object id in a vault's 403 message.
var oidRE = regexp.MustCompile(`oid=([0-9a-fA-F-]{36})`)

// callerOID returns the object id a vault's refusal names, or "".
func callerOID(err error) string {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.RawResponse == nil {
		return ""
	}
	body, perr := runtime.Payload(re.RawResponse)
	if perr != nil {
		return ""
	}
	if m := oidRE.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

// rootCallError turns a failed vault call of the check into a
// *RootKeyError naming the check and the fix.
func (p *Provider) rootCallError(keyID string, id KeyID, doing string, err error) *RootKeyError {
	e := &RootKeyError{KeyID: keyID, Err: err}
	host := "https://" + id.Host
	switch kms.ReasonOf(err) {
	case kms.ReasonUnauthenticated:
		e.Check = RootCheckAuthentication
		e.Reason = fmt.Sprintf("byok's identity (%s) could not sign in to the vault's directory", p.cfg.Credential.Kind())
		e.Remedy = "check platform_key.azure.credential: the tenant id, the client id and its secret, certificate or federated credential, or that the managed identity is assigned to this host"
		var reason, remedy string
		var ok bool
		switch c := p.cfg.Credential.(type) {
		case ManagedIdentity:
			reason, remedy, ok = explainManagedIdentity(c, err)
		case WorkloadIdentity:
			reason, remedy, ok = explainWorkloadIdentity(c, p.cfg.TenantID, err)
		}
		if ok {
			e.Reason, e.Remedy = reason, strings.ReplaceAll(remedy, "azure.managed_identity", "platform_key.azure.credential")
		}
	case kms.ReasonDenied:
		e.Check = RootCheckAccess
		oid := callerOID(err)
		if oid == "" {
			oid = "<object id of byok's identity>"
		}
		e.Reason = "the vault refused byok's identity while " + doing
		switch {
		case strings.Contains(err.Error(), "ForbiddenByFirewall"):
			e.Reason += ": its firewall does not let byok's address in"
			e.Remedy = "allow byok's outbound address on the vault's Networking blade, or reach it through a private endpoint"
		case id.ManagedHSM:
			e.Remedy = fmt.Sprintf("grant the role Managed HSM Crypto Service Encryption User on the key: az keyvault role assignment create --hsm-name %s --role \"Managed HSM Crypto Service Encryption User\" --assignee-object-id %s --scope /keys/%s",
				id.Vault, oid, id.Name)
		case strings.Contains(err.Error(), "AccessDenied"):
			e.Remedy = fmt.Sprintf("the vault uses access policies: az keyvault set-policy --name %s --object-id %s --key-permissions get wrapKey unwrapKey", id.Vault, oid)
		default:
			e.Remedy = fmt.Sprintf("grant the role Key Vault Crypto Service Encryption User on the vault: az role assignment create --role \"Key Vault Crypto Service Encryption User\" --assignee-object-id %s --assignee-principal-type ServicePrincipal --scope $(az keyvault show --name %s --query id -o tsv)",
				oid, id.Vault)
		}
	case kms.ReasonNotFound:
		e.Check = RootCheckKeyFound
		e.Reason = "the vault has no such key or version"
		e.Remedy = "check platform_key.azure.key_id against the Keys blade; create the key (" + keyCommand("create", id, "") + ") or recover a deleted one (" + keyCommand("recover", id, "") + ")"
	case kms.ReasonDisabled:
		e.Check = RootCheckEnabled
		e.Reason = "the key is disabled"
		e.Remedy = "enable it: " + keyCommand("set-attributes", id, keyID) + " --enabled true"
	case kms.ReasonExpired, kms.ReasonNotYetValid:
		e.Check = RootCheckValidity
		e.Reason = "the key version is outside its activation and expiry dates"
		e.Remedy = "create a new version (" + keyCommand("rotate", id, "") + ") or correct its dates (" + keyCommand("set-attributes", id, keyID) + " --not-before/--expires)"
	case kms.ReasonOpForbidden:
		e.Check = RootCheckKeyOps
		e.Reason = "the key's permitted operations exclude wrapKey or unwrapKey"
		e.Remedy = "permit them: " + keyCommand("set-attributes", id, keyID) + " --ops wrapKey unwrapKey"
	default:
		if kms.ClassOf(err) == kms.Transient {
			e.Check = RootCheckReach
			e.Reason = "the vault did not answer while " + doing
			e.Remedy = "check the network path to " + host + " (DNS, firewall, private endpoint, proxy) and the vault's health; the check is retried"
		} else {
			e.Check = RootCheckRoundTrip
			e.Reason = "the vault refused " + doing
			e.Remedy = "check that the key is an RSA or oct-HSM key that wraps (Keys blade > key > version)"
		}
	}
	return e
}
