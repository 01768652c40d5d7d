// Package azurekv is the [kms.Provider] for customer keys in Azure Key
// Vault and Managed HSM, built on the official Azure SDK for Go (azkeys,
// azidentity, azcore) used unchanged.
//
// A [Provider] signs in to the customer's Entra tenant with one of the
// credential modes ([PlatformApp], [ClientSecret], [ClientCertificate],
// [ManagedIdentity], [WorkloadIdentity]) and wraps byok's key shares with
// RSA-OAEP-256 (or RSA-OAEP), either through wrapKey/unwrapKey or, for
// roles that grant only those, encrypt/decrypt ([Mode]). Every wrapped
// value records the exact key version, and unwrap uses it.
//
// Every vault call carries x-ms-client-request-id = [kms.OperationID] of
// its ctx, waits for the vault's process-wide call budget (sized from Key
// Vault's documented limits), and is bounded by [Config.Timeout]; azcore
// retries 408, 429 and 5xx answers and connection failures, honouring
// Retry-After. Errors are classified by [Classify].
//
// [TestConfiguration] runs the customer-facing checks of a configuration
// and returns a [Report]; [GenerateCertificate], [CertificateSet],
// [AdminConsentURL] and [CreateServicePrincipalCommand]
// serve the console's setup steps. docs/azure-setup.md is the customer's
// guide.
package azurekv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/openbyok/byok/kms"
)

// Provider wraps and unwraps under keys in the customer's vaults with one
// credential. It is safe for concurrent use. Create it with [New].
type Provider struct {
	cfg  Config
	opts azcore.ClientOptions
	cred azcore.TokenCredential

	mu      sync.Mutex
	clients map[string]*azkeys.Client // by vault host
	costs   sync.Map                  // versionless key id → budget cost of one operation
	kinds   sync.Map                  // versionless key id → keyKind, from Describe
	owned   sync.Map                  // key id as described → struct{}: it carries the owner tag (PlatformApp only)
}

var _ kms.Provider = (*Provider)(nil)

// New returns a Provider for cfg, which must pass [Config.Validate]. It
// makes no network call.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, clients: map[string]*azkeys.Client{}}
	p.opts = cfg.clientOptions()
	cred, err := cfg.Credential.tokenCredential(cfg.TenantID, p.opts)
	if err != nil {
		return nil, fmt.Errorf("azurekv: creating the %s credential: %w", cfg.Credential.Kind(), err)
	}
	p.cred = cred
	return p, nil
}

// clientOptions are the azcore options of both the credential and the vault
// clients.
func (c Config) clientOptions() azcore.ClientOptions {
	o := azcore.ClientOptions{
		Transport: c.Transport,
		Retry: policy.RetryOptions{
			MaxRetries:    int32(c.MaxRetries),
			RetryDelay:    250 * time.Millisecond,
			MaxRetryDelay: 8 * time.Second,
		},
		Telemetry: policy.TelemetryOptions{ApplicationID: "byok"},
	}
	if c.MaxRetries == 0 {
		o.Retry.MaxRetries = DefaultMaxRetries
	}
	if id, err := ParseKeyID(c.KeyID); err == nil {
		switch id.Cloud {
		case CloudChina:
			o.Cloud = cloud.AzureChina
		case CloudGovernment:
			o.Cloud = cloud.AzureGovernment
		}
	}
	return o
}

// requestIDPolicy sets x-ms-client-request-id to the caller's operation id,
// so the customer can join byok's audit log with the vault's diagnostics.
type requestIDPolicy struct{}

func (requestIDPolicy) Do(req *policy.Request) (*http.Response, error) {
	if id := kms.OperationID(req.Raw().Context()); id != "" {
		req.Raw().Header.Set("x-ms-client-request-id", id)
	}
	return req.Next()
}

// client returns the azkeys client of id's vault.
func (p *Provider) client(id KeyID) (*azkeys.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[id.Host]; ok {
		return c, nil
	}
	o := p.opts
	o.PerCallPolicies = append([]policy.Policy{requestIDPolicy{}}, o.PerCallPolicies...)
	o.PerRetryPolicies = append(o.PerRetryPolicies[:len(o.PerRetryPolicies):len(o.PerRetryPolicies)], holdPolicy{host: id.Host})
	c, err := azkeys.NewClient(id.VaultURL(), p.cred, &azkeys.ClientOptions{ClientOptions: o})
	if err != nil {
		return nil, err
	}
	p.clients[id.Host] = c
	return c, nil
}

// call runs one vault operation with the provider's timeout, budget,
// logging and error classification.
func (p *Provider) call(ctx context.Context, op, keyID string, id KeyID, f func(context.Context, *azkeys.Client) error) error {
	if err := kms.CtxError(ctx, op, keyID); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.timeout())
	defer cancel()
	start := time.Now()
	err := p.do(ctx, id, f)
	log := p.cfg.logger().With("op", op, "key", keyID, "request_id", kms.OperationID(ctx), "duration", time.Since(start))
	if err == nil {
		log.DebugContext(ctx, "azurekv: vault call")
		return nil
	}
	ke := Classify(op, keyID, err)
	log.WarnContext(ctx, "azurekv: vault call failed", "class", ke.Class.String(), "reason", string(ke.Reason), "error", ke.Err.Error())
	return ke
}

func (p *Provider) do(ctx context.Context, id KeyID, f func(context.Context, *azkeys.Client) error) error {
	c, err := p.client(id)
	if err != nil {
		return err
	}
	if !id.ManagedHSM { // Managed HSM does not throttle crypto operations
		if err := budgetFor(id.Host).wait(ctx, p.cost(id)); err != nil {
			return err
		}
	}
	return f(ctx, c)
}

// cost returns the budget cost of one operation on id's key: that of an
// RSA-2048 software key until Describe has told its type and size.
func (p *Provider) cost(id KeyID) float64 {
	if c, ok := p.costs.Load(id.Versionless().String()); ok {
		return c.(float64)
	}
	return 1
}

// Wrap wraps plaintext (1 to [kms.MaxPlaintext] bytes) under keyID; a
// versionless keyID uses the key's current version. The result records the
// versioned id the vault used and the algorithm: the configured one with
// an RSA key; with an oct-HSM (AES) key, [AlgorithmA256KW] for a multiple
// of 8 bytes (at least 16), else [AlgorithmAESKeyWrapPad]. The key's type
// is learnt once per versionless key: from a Describe for a Managed HSM
// key, and only if the vault refuses the RSA algorithm for a vault key.
//
// With the [PlatformApp] credential, Wrap first makes sure (with one
// Describe per key id for the provider's life) that the key carries the
// tag [OwnerTagName]=[Config.OwnerTag]; a key without it fails with class
// [kms.Authoritative] and reason [kms.ReasonNotOwned], and nothing is
// wrapped.
func (p *Provider) Wrap(ctx context.Context, keyID string, plaintext []byte) (kms.Wrapped, error) {
	id, err := ParseKeyID(keyID)
	if err != nil {
		return kms.Wrapped{}, Classify("wrap", keyID, err)
	}
	if len(plaintext) == 0 || len(plaintext) > kms.MaxPlaintext {
		return kms.Wrapped{}, &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest,
			Err: fmt.Errorf("azurekv: the plaintext has %d bytes; Wrap takes 1 to %d", len(plaintext), kms.MaxPlaintext)}
	}
	if err := p.checkOwner(ctx, "wrap", keyID, id); err != nil {
		return kms.Wrapped{}, err
	}
	kind, known, err := p.kind(ctx, "wrap", keyID, id)
	if err != nil {
		return kms.Wrapped{}, err
	}
	alg, kid, result, err := p.wrap(ctx, keyID, id, kind, plaintext)
	if err != nil && !known && kms.ReasonOf(err) == kms.ReasonBadRequest {
		// The vault refused the RSA algorithm: learn the key's type once
		// (an oct-HSM key in a premium vault) and wrap accordingly.
		if p.learnKind(ctx, "wrap", keyID) == nil {
			if k, _, _ := p.kind(ctx, "wrap", keyID, id); k != kindRSA {
				alg, kid, result, err = p.wrap(ctx, keyID, id, k, plaintext)
			}
		}
	}
	if err != nil {
		return kms.Wrapped{}, err
	}
	used, err := versionedID(kid, id)
	if err != nil {
		return kms.Wrapped{}, &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: err}
	}
	return kms.Wrapped{KeyID: used.String(), Algorithm: alg, Ciphertext: result}, nil
}

// wrap makes the vault call of Wrap for a key of kind k.
func (p *Provider) wrap(ctx context.Context, keyID string, id KeyID, k keyKind, plaintext []byte) (alg string, kid *azkeys.ID, result []byte, err error) {
	switch {
	case k == kindRSA:
		alg = p.cfg.algorithm()
	case k == kindAES && p.cfg.mode() != ModeEncrypt:
		alg = aesWrapAlgorithm(len(plaintext))
	default:
		return "", nil, nil, unsupportedKind(keyID, k, p.cfg.mode())
	}
	params := azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithm(alg)), Value: bytes.Clone(plaintext)}
	defer clear(params.Value)
	err = p.call(ctx, "wrap", keyID, id, func(ctx context.Context, c *azkeys.Client) error {
		if k == kindRSA && p.cfg.mode() == ModeEncrypt {
			r, err := c.Encrypt(ctx, id.Name, id.Version, params, nil)
			kid, result = r.KID, r.Result
			return err
		}
		r, err := c.WrapKey(ctx, id.Name, id.Version, params, nil)
		kid, result = r.KID, r.Result
		return err
	})
	return alg, kid, result, err
}

// versionedID returns the versioned id a vault answered, checking that it
// names the key that was asked for.
func versionedID(kid *azkeys.ID, asked KeyID) (KeyID, error) {
	if kid == nil {
		return KeyID{}, errors.New("azurekv: the vault's answer has no kid")
	}
	got, err := ParseKeyID(string(*kid))
	if err != nil || got.Version == "" || !equalFold(got.Name, asked.Name) ||
		(asked.Version != "" && got.Version != asked.Version) {
		return KeyID{}, fmt.Errorf("azurekv: the vault answered kid %q for key %s", *kid, asked)
	}
	// Keep the host byok was configured with (a private-link name stays).
	got.Host, got.Vault, got.PrivateLink = asked.Host, asked.Vault, asked.PrivateLink
	return got, nil
}

func equalFold(a, b string) bool { return len(a) == len(b) && bytes.EqualFold([]byte(a), []byte(b)) }

// Unwrap unwraps w with exactly the version w.KeyID names, with w's
// algorithm: an RSA algorithm in the configured mode, an AES key-wrap
// algorithm with unwrapKey.
func (p *Provider) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	id, err := ParseKeyID(w.KeyID)
	if err != nil {
		return nil, Classify("unwrap", w.KeyID, err)
	}
	invalid := func(format string, args ...any) error {
		return &kms.Error{Op: "unwrap", KeyID: w.KeyID, Class: kms.Invalid, Reason: kms.ReasonUnwrapFailed, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case id.Version == "":
		return nil, invalid("azurekv: the wrapped value's key id has no version; Wrap always records one, so it was altered")
	case w.Algorithm != AlgorithmRSAOAEP256 && w.Algorithm != AlgorithmRSAOAEP && !aesAlgorithms[w.Algorithm]:
		return nil, invalid("azurekv: the wrapped value's algorithm %q is not %s, %s or an AES key-wrap algorithm (%s, %s)", w.Algorithm, AlgorithmRSAOAEP256, AlgorithmRSAOAEP, AlgorithmA256KW, AlgorithmAESKeyWrapPad)
	case len(w.Ciphertext) == 0:
		return nil, invalid("azurekv: the wrapped value's ciphertext is empty")
	}
	params := azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithm(w.Algorithm)), Value: bytes.Clone(w.Ciphertext)}
	var result []byte
	err = p.call(ctx, "unwrap", w.KeyID, id, func(ctx context.Context, c *azkeys.Client) error {
		if p.cfg.mode() == ModeEncrypt && !aesAlgorithms[w.Algorithm] {
			r, err := c.Decrypt(ctx, id.Name, id.Version, params, nil)
			result = r.Result
			return err
		}
		r, err := c.UnwrapKey(ctx, id.Name, id.Version, params, nil)
		result = r.Result
		return err
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// Describe returns the properties of keyID's version, or of the current
// version for a versionless id (so a new version shows at once).
func (p *Provider) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	d, err := p.describe(ctx, keyID)
	return d.KeyInfo, err
}

// RecoveryLevel returns the recovery level Key Vault reports for the key
// keyID names, the vault's soft-delete setting: e.g. "Recoverable" with
// purge protection, "Recoverable+Purgeable" without. It makes the one vault
// call of Describe and fails as Describe does.
func (p *Provider) RecoveryLevel(ctx context.Context, keyID string) (string, error) {
	d, err := p.describe(ctx, keyID)
	return d.RecoveryLevel, err
}

// keyDetails is what Key Vault reports of a key version: the
// provider-neutral [kms.KeyInfo] that Describe returns, and the facts only
// Key Vault has, which this package's own checks read (the owner tag,
// Test configuration's recovery check, the root-key checks).
type keyDetails struct {
	kms.KeyInfo
	RecoveryLevel   string // e.g. "Recoverable" (soft delete + purge protection)
	RecoverableDays int    // soft-delete retention in days
	// Tags are the version's tags; nil when it has none. The customer's
	// tag [OwnerTagName]=<tenant id> proves that it owns the key.
	Tags map[string]string
}

// describe gets keyID's version (the current one for a versionless id),
// tags included, and remembers its type and cost, and, with a shared
// identity, that it carries the owner tag.
func (p *Provider) describe(ctx context.Context, keyID string) (keyDetails, error) {
	id, err := ParseKeyID(keyID)
	if err != nil {
		return keyDetails{}, Classify("describe", keyID, err)
	}
	var b azkeys.KeyBundle
	err = p.call(ctx, "describe", keyID, id, func(ctx context.Context, c *azkeys.Client) error {
		r, err := c.GetKey(ctx, id.Name, id.Version, nil)
		b = r.KeyBundle
		return err
	})
	if err != nil {
		return keyDetails{}, err
	}
	var kid *azkeys.ID
	if b.Key != nil {
		kid = b.Key.KID
	}
	used, err := versionedID(kid, id)
	if err != nil {
		return keyDetails{}, &kms.Error{Op: "describe", KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: err}
	}
	d := details(used, b)
	p.costs.Store(id.Versionless().String(), opCost(d.Type, d.Size))
	p.recordKind(id, d.Type)
	if p.cfg.sharedIdentity() && p.cfg.owns(d.Tags) {
		p.owned.Store(keyID, struct{}{})
	}
	return d, nil
}

// details maps a KeyBundle to keyDetails.
func details(id KeyID, b azkeys.KeyBundle) keyDetails {
	d := keyDetails{KeyInfo: kms.KeyInfo{KeyID: id.String()}}
	if k := b.Key; k != nil {
		if k.Kty != nil {
			d.Type = string(*k.Kty)
		}
		if len(k.N) > 0 {
			d.Size = new(big.Int).SetBytes(k.N).BitLen()
		}
		for _, op := range k.KeyOps {
			if op != nil {
				d.Ops = append(d.Ops, string(*op))
			}
		}
	}
	d.Tags = tags(b.Tags)
	if a := b.Attributes; a != nil {
		d.Enabled = a.Enabled != nil && *a.Enabled
		if a.NotBefore != nil {
			d.NotBefore = a.NotBefore.UTC()
		}
		if a.Expires != nil {
			d.Expires = a.Expires.UTC()
		}
		if a.RecoveryLevel != nil {
			d.RecoveryLevel = *a.RecoveryLevel
		}
		if a.RecoverableDays != nil {
			d.RecoverableDays = int(*a.RecoverableDays)
		}
	}
	return d
}
