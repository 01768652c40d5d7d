package azurekv

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Mode selects the Key Vault operations that wrap and unwrap.
type Mode string

const (
	// ModeWrap uses wrapKey and unwrapKey (data actions keys/wrap/action
	// and keys/unwrap/action, as in Key Vault Crypto Service Encryption
	// User).
	ModeWrap Mode = "wrap"
	// ModeEncrypt uses encrypt and decrypt (keys/encrypt/action and
	// keys/decrypt/action), for custom roles that grant only those. With
	// RSA keys both modes compute the same RSA-OAEP, so values wrapped in
	// one mode unwrap in the other.
	ModeEncrypt Mode = "encrypt"
)

// Algorithms Wrap may use.
const (
	AlgorithmRSAOAEP256 = "RSA-OAEP-256"
	AlgorithmRSAOAEP    = "RSA-OAEP"
)

// Defaults of [Config].
const (
	DefaultTimeout    = 30 * time.Second
	DefaultMaxRetries = 3
)

// Config configures a [Provider] and [TestConfiguration]. It is plain data:
// the library reads no environment variable or file of its own (azidentity
// reads the managed identity endpoint's variables, as on any Azure host).
type Config struct {
	// KeyID is the customer's key identifier; required by
	// TestConfiguration. A Provider wraps with whatever key id it is given.
	KeyID string
	// TenantID is the customer's directory (tenant) id.
	TenantID string
	// Credential is how byok signs in; see [Credential].
	Credential Credential
	// OwnerTag is the byok tenant id that a key must carry as the value of
	// its [OwnerTagName] tag for byok to wrap under it when the credential
	// is shared by several byok tenants: [PlatformApp], or any credential
	// with SharedIdentity. The platform's own identities can reach every
	// vault that let them in, so the tag, which only the key's owner can
	// set, is what ties the key to one byok tenant. Required then; ignored
	// with the customer's own credentials, which prove control of the
	// directory themselves.
	OwnerTag string
	// SharedIdentity says that Credential is an identity of the platform
	// that serves several byok tenants: its managed identity, or its
	// workload identity trusted by the customers' apps (the tenant
	// credential modes managed-identity and workload-identity). Like
	// [PlatformApp], whose credential is always shared, such an identity
	// proves nothing about who owns the key, so OwnerTag is required and
	// the key must carry it. Leave it false for the platform's own keys.
	SharedIdentity bool
	// IdentityTenant is the directory the [ManagedIdentity] credential
	// lives in (the platform's own). A managed identity reaches only
	// vaults of its own directory, so when it is set and differs from
	// TenantID, Test configuration says so before any network call
	// (check identity-directory). Empty: not compared.
	IdentityTenant string
	// Algorithm is the wrapping algorithm: [AlgorithmRSAOAEP256] (default)
	// or [AlgorithmRSAOAEP].
	Algorithm string
	// Mode is [ModeWrap] (default) or [ModeEncrypt].
	Mode Mode
	// Transport sends the HTTP requests of both the credential and the
	// vault client; nil uses azcore's default. Tests pass kvemu's
	// HTTPClient.
	Transport policy.Transporter
	// Timeout bounds each provider call, including waiting for the vault's
	// call budget, token acquisition and retries. Zero means
	// [DefaultTimeout].
	Timeout time.Duration
	// MaxRetries is the number of retries of a failed vault call (429,
	// 5xx, connection errors), which honour Retry-After. Zero means
	// [DefaultMaxRetries]; negative disables retries.
	MaxRetries int
	// Logger receives one debug line per vault call and a warning per
	// failed one, never with secrets. Nil discards them.
	Logger *slog.Logger
}

// Validate checks c without any network call.
func (c Config) Validate() error {
	var errs []error
	if c.KeyID != "" {
		if _, err := ParseKeyID(c.KeyID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkTenant(c.TenantID); err != nil {
		errs = append(errs, err)
	}
	if c.Credential == nil {
		errs = append(errs, errors.New("azurekv: Config.Credential is nil; choose PlatformApp, ClientSecret, ClientCertificate, ManagedIdentity or WorkloadIdentity"))
	} else if err := c.Credential.validate(); err != nil {
		errs = append(errs, fmt.Errorf("azurekv: %s: %w", c.Credential.Kind(), err))
	}
	if c.sharedIdentity() && c.OwnerTag == "" {
		errs = append(errs, fmt.Errorf("azurekv: Config.OwnerTag is empty; with the platform's shared %s credential set it to the byok tenant id, which the key must carry in its %s tag", c.Credential.Kind(), OwnerTagName))
	}
	switch c.Algorithm {
	case "", AlgorithmRSAOAEP256, AlgorithmRSAOAEP:
	default:
		errs = append(errs, fmt.Errorf("azurekv: Config.Algorithm %q is not supported; use %s (default) or %s", c.Algorithm, AlgorithmRSAOAEP256, AlgorithmRSAOAEP))
	}
	switch c.Mode {
	case "", ModeWrap, ModeEncrypt:
	default:
		errs = append(errs, fmt.Errorf("azurekv: Config.Mode %q is not supported; use %q (default) or %q", c.Mode, ModeWrap, ModeEncrypt))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("azurekv: Config.Timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

func checkTenant(t string) error {
	if isGUID(t) {
		return nil
	}
	if t != "" && strings.Contains(t, ".") && !strings.ContainsAny(t, "/:?# ") {
		return nil // a verified domain, e.g. contoso.onmicrosoft.com
	}
	return fmt.Errorf("azurekv: the tenant id %q is not a GUID such as 11111111-2222-3333-4444-555555555555 (Directory (tenant) ID on the Microsoft Entra ID Overview blade) or a domain such as contoso.onmicrosoft.com", t)
}

func (c Config) algorithm() string {
	if c.Algorithm == "" {
		return AlgorithmRSAOAEP256
	}
	return c.Algorithm
}

func (c Config) mode() Mode {
	if c.Mode == "" {
		return ModeWrap
	}
	return c.Mode
}

func (c Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
