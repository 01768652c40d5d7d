// Package gcpkms is the [kms.Provider] for customer keys in Google Cloud
// KMS, built on the official client (cloud.google.com/go/kms/apiv1) over
// gRPC, used unchanged.
//
// The customer's key is a symmetric crypto key (purpose ENCRYPT_DECRYPT,
// algorithm GOOGLE_SYMMETRIC_ENCRYPTION, SOFTWARE or HSM) named by its
// resource name: a crypto key, whose primary version Wrap follows, or a
// version, which pins it ([ParseKeyName]). byok calls it as the platform's
// service account ([Config.CredentialsJSON], or the Application Default
// Credentials), which the customer grants
// roles/cloudkms.cryptoKeyEncrypterDecrypter on the key (Wrap and Unwrap)
// and roles/cloudkms.viewer (Describe, Test configuration).
//
// Wrap is Encrypt on the exact version, Unwrap is Decrypt on the crypto
// key, Describe is GetCryptoKey or GetCryptoKeyVersion. Every Encrypt and
// Decrypt carries additional authenticated data binding the tenant, the
// exact version and the [kms.Binding] of the ctx ([AAD]); the binding is
// recorded in Wrapped.Algorithm so Unwrap rebuilds the same data. Wrap of a
// crypto key first learns its primary version with an Encrypt of one
// probe byte under AAD "byok-aad=probe" (Encrypt is all the
// encrypter/decrypter role allows; it answers the version used), then
// encrypts the share under that version: two Encrypt calls, so that the
// version is inside the authenticated data. Wrapped.KeyID is the version
// name EncryptResponse.Name gave.
//
// # Integrity
//
// Every request carries the CRC32C of its plaintext or ciphertext and of
// its AAD, and every answer is checked: Encrypt must report both verified
// and its ciphertext must match ciphertext_crc32c; Decrypt's plaintext must
// match plaintext_crc32c. A mismatch is [ReasonIntegrity] (transient).
//
// # Request ids
//
// Cloud KMS answers no request id over gRPC. Each call made under a ctx
// carrying [kms.OperationID] sends it as the x-goog-request-reason header
// ("byok-op/<id>"), a Google system parameter that Cloud Audit Logs record
// with the call (Data Access logs), so the customer can join their logs
// with byok's audit log. The client's user agent carries "byok".
//
// Errors are classified by [Classify]. [TestConfiguration] runs the
// customer-facing checks of a configuration.
package gcpkms

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	kmsapi "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/openbyok/byok/kms"
)

// HeaderOperationID is the gRPC header that carries [kms.OperationID].
const HeaderOperationID = "x-goog-request-reason"

// Provider wraps and unwraps under the customer's Cloud KMS keys with one
// service account. It is safe for concurrent use. Create it with [New];
// Close it when done.
type Provider struct {
	cfg    Config
	client *kmsapi.KeyManagementClient
}

var _ kms.Provider = (*Provider)(nil)

// New returns a Provider for cfg, which must pass [Config.Validate]. It
// builds the client (which connects on first use); with nil
// CredentialsJSON, finding no default credentials is an error.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, client: c}, nil
}

func newClient(ctx context.Context, cfg Config) (*kmsapi.KeyManagementClient, error) {
	opts := []option.ClientOption{option.WithUserAgent("byok"), option.WithEndpoint(cfg.endpoint())}
	if cfg.RootCAs != nil {
		opts = append(opts, option.WithGRPCDialOption(grpc.WithTransportCredentials(
			credentials.NewTLS(&tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}))))
	}
	if cfg.CredentialsJSON != nil {
		kf, err := parseKeyFile(cfg.CredentialsJSON)
		if err != nil {
			return nil, err
		}
		t := option.ServiceAccount
		if kf.Type != "service_account" {
			t = option.CredentialsType(kf.Type)
		}
		opts = append(opts, option.WithAuthCredentialsJSON(t, cfg.CredentialsJSON))
	}
	opts = append(opts, cfg.ClientOptions...)
	c, err := kmsapi.NewKeyManagementClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcpkms: building the Cloud KMS client (credentials: %s): %w", credentialsSource(cfg), err)
	}
	return c, nil
}

func credentialsSource(cfg Config) string {
	if cfg.CredentialsJSON != nil {
		return "the key file of " + cfg.serviceAccount()
	}
	return "Application Default Credentials"
}

// Close closes the client's connections.
func (p *Provider) Close() error { return p.client.Close() }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) *wrapperspb.Int64Value {
	return wrapperspb.Int64(int64(crc32.Checksum(b, castagnoli)))
}

func crcOK(sum *wrapperspb.Int64Value, b []byte) bool {
	return sum != nil && sum.GetValue() == int64(crc32.Checksum(b, castagnoli))
}

// call runs f with the provider's timeout, retry policy and operation id
// header, and classifies its error.
func (p *Provider) call(ctx context.Context, op, keyID, method string, f func(ctx context.Context, o ...gax.CallOption) error) error {
	if err := kms.CtxError(ctx, op, keyID); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.timeout())
	defer cancel()
	if id := kms.OperationID(ctx); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, HeaderOperationID, "byok-op/"+id)
	}
	start := time.Now()
	err := f(ctx, gax.WithRetry(p.retryer))
	log := p.cfg.logger()
	if err != nil {
		ke := Classify(op, keyID, err)
		if ke.Class == kms.Transient && ctx.Err() != nil {
			// The provider's own timeout or the caller's ctx ended the call.
			ke.Err = errors.Join(ke.Err, ctx.Err())
		}
		log.Warn("gcpkms call failed", "method", method, "key", keyID, "class", ke.Class.String(), "reason", string(ke.Reason),
			"operation", kms.OperationID(ctx), "elapsed", time.Since(start))
		return ke
	}
	log.Debug("gcpkms call", "method", method, "key", keyID, "operation", kms.OperationID(ctx), "elapsed", time.Since(start))
	return nil
}

// retryer retries UNAVAILABLE, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED
// up to Config.MaxRetries times.
func (p *Provider) retryer() gax.Retryer {
	return &countRetryer{left: p.cfg.retries(), r: gax.OnCodes([]codes.Code{codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded},
		gax.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2})}
}

type countRetryer struct {
	left int
	r    gax.Retryer
}

func (c *countRetryer) Retry(err error) (time.Duration, bool) {
	if c.left <= 0 {
		return 0, false
	}
	c.left--
	return c.r.Retry(err)
}

// probe is what Wrap encrypts to learn a crypto key's primary version.
var probe, probeAAD = []byte{0}, []byte("byok-aad=probe\n")

// Wrap encrypts plaintext (1 to [kms.MaxPlaintext] bytes) under keyID: a
// version name pins that version; a crypto key name uses its primary
// version (learnt by a probe Encrypt, see the package doc). The result's
// KeyID is the exact version, its Algorithm records the ctx's binding.
func (p *Provider) Wrap(ctx context.Context, keyID string, plaintext []byte) (kms.Wrapped, error) {
	n, err := ParseKeyName(keyID)
	if err != nil {
		return kms.Wrapped{}, Classify("wrap", keyID, err)
	}
	if err := kms.CtxError(ctx, "wrap", keyID); err != nil {
		return kms.Wrapped{}, err
	}
	if len(plaintext) == 0 || len(plaintext) > kms.MaxPlaintext {
		return kms.Wrapped{}, &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest,
			Err: fmt.Errorf("gcpkms: the plaintext has %d bytes; Wrap takes 1 to %d", len(plaintext), kms.MaxPlaintext)}
	}
	b, has := kms.BindingOf(ctx)
	alg, err := algorithm(b, has)
	if err != nil {
		return kms.Wrapped{}, &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest, Err: err}
	}
	version := keyID
	if n.Version == 0 {
		resp, err := p.encrypt(ctx, keyID, keyID, probe, probeAAD)
		if err != nil {
			return kms.Wrapped{}, err
		}
		version = resp.GetName()
	}
	aad, _ := AAD(p.cfg.Tenant, version, alg)
	resp, err := p.encrypt(ctx, keyID, version, plaintext, aad)
	if err != nil {
		return kms.Wrapped{}, err
	}
	if resp.GetName() != version {
		return kms.Wrapped{}, &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable,
			Err: fmt.Errorf("gcpkms: Cloud KMS encrypted under %q, not the version asked, %s", resp.GetName(), version)}
	}
	return kms.Wrapped{KeyID: version, Algorithm: alg, Ciphertext: resp.GetCiphertext()}, nil
}

// encrypt calls Encrypt on name with CRC32C both ways, and checks that the
// answer names a version of the key asked.
func (p *Provider) encrypt(ctx context.Context, keyID, name string, pt, aad []byte) (*kmspb.EncryptResponse, error) {
	req := &kmspb.EncryptRequest{Name: name, Plaintext: bytes.Clone(pt), PlaintextCrc32C: crc(pt),
		AdditionalAuthenticatedData: aad, AdditionalAuthenticatedDataCrc32C: crc(aad)}
	defer clear(req.Plaintext)
	var resp *kmspb.EncryptResponse
	err := p.call(ctx, "wrap", keyID, "Encrypt", func(ctx context.Context, o ...gax.CallOption) error {
		var err error
		resp, err = p.client.Encrypt(ctx, req, o...)
		if err == nil && (!resp.GetVerifiedPlaintextCrc32C() || !resp.GetVerifiedAdditionalAuthenticatedDataCrc32C() ||
			!crcOK(resp.GetCiphertextCrc32C(), resp.GetCiphertext())) {
			err = errIntegrity
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	got, perr := ParseKeyName(resp.GetName())
	asked, _ := ParseKeyName(name)
	if perr != nil || got.Version == 0 || got.Key() != asked.Key() {
		return nil, &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable,
			Err: fmt.Errorf("gcpkms: Cloud KMS answered version %q for %s", resp.GetName(), name)}
	}
	return resp, nil
}

// Unwrap decrypts w with Decrypt on the crypto key of w.KeyID (a version
// name), with the AAD rebuilt from Config.Tenant, w.KeyID and
// w.Algorithm. A value of another key, tenant, version, kind or epoch, or
// altered, fails with class [kms.Invalid]; when Decrypt refuses it, a
// GetCryptoKeyVersion tells a version that does not exist
// ([kms.ReasonNotFound], authoritative) from a value that does not open.
func (p *Provider) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	n, err := ParseKeyName(w.KeyID)
	if err != nil {
		return nil, Classify("unwrap", w.KeyID, err)
	}
	invalid := func(err error) error {
		return &kms.Error{Op: "unwrap", KeyID: w.KeyID, Class: kms.Invalid, Reason: kms.ReasonUnwrapFailed, Err: err}
	}
	if n.Version == 0 {
		return nil, invalid(errors.New("gcpkms: the wrapped value names a crypto key, not a version; Wrap always records the version, so it was altered"))
	}
	if len(w.Ciphertext) == 0 {
		return nil, invalid(errors.New("gcpkms: the wrapped value's ciphertext is empty"))
	}
	got, has, err := parseAlgorithm(w.Algorithm)
	if err != nil {
		return nil, invalid(err)
	}
	if b, ok := kms.BindingOf(ctx); ok && (!has || b != got) {
		return nil, invalid(fmt.Errorf("%w: the caller expects kind %q epoch %d", errBinding, b.Kind, b.Epoch))
	}
	aad, _ := AAD(p.cfg.Tenant, w.KeyID, w.Algorithm)
	req := &kmspb.DecryptRequest{Name: n.Key(), Ciphertext: w.Ciphertext, CiphertextCrc32C: crc(w.Ciphertext),
		AdditionalAuthenticatedData: aad, AdditionalAuthenticatedDataCrc32C: crc(aad)}
	var resp *kmspb.DecryptResponse
	err = p.call(ctx, "unwrap", w.KeyID, "Decrypt", func(ctx context.Context, o ...gax.CallOption) error {
		var err error
		resp, err = p.client.Decrypt(ctx, req, o...)
		if err == nil && !crcOK(resp.GetPlaintextCrc32C(), resp.GetPlaintext()) {
			clear(resp.Plaintext)
			err = errIntegrity
		}
		return err
	})
	if kms.ReasonOf(err) == kms.ReasonUnwrapFailed {
		if _, derr := p.getVersion(ctx, "unwrap", w.KeyID); kms.ReasonOf(derr) == kms.ReasonNotFound {
			return nil, derr
		}
	}
	if err != nil {
		return nil, err
	}
	return resp.GetPlaintext(), nil
}

// Describe reports the version keyID names, or a crypto key's primary
// version: KeyID the version name, Type its algorithm
// (GOOGLE_SYMMETRIC_ENCRYPTION, with "-HSM" for protection level HSM),
// Size 256, Ops encrypt, decrypt, wrapKey and unwrapKey for purpose
// ENCRYPT_DECRYPT, Enabled its state ENABLED. A crypto key without a
// primary version is reported not enabled with KeyID the key's name.
func (p *Provider) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	n, err := ParseKeyName(keyID)
	if err != nil {
		return kms.KeyInfo{}, Classify("describe", keyID, err)
	}
	purpose := kmspb.CryptoKey_ENCRYPT_DECRYPT
	var v *kmspb.CryptoKeyVersion
	if n.Version == 0 {
		k, err := p.getKey(ctx, "describe", keyID)
		if err != nil {
			return kms.KeyInfo{}, err
		}
		purpose, v = k.GetPurpose(), k.GetPrimary()
		if v == nil {
			return kms.KeyInfo{KeyID: keyID, Type: k.GetVersionTemplate().GetAlgorithm().String()}, nil
		}
	} else if v, err = p.getVersion(ctx, "describe", keyID); err != nil {
		return kms.KeyInfo{}, err
	}
	return keyInfo(purpose, v), nil
}

func keyInfo(purpose kmspb.CryptoKey_CryptoKeyPurpose, v *kmspb.CryptoKeyVersion) kms.KeyInfo {
	info := kms.KeyInfo{KeyID: v.GetName(), Type: v.GetAlgorithm().String(), Enabled: v.GetState() == kmspb.CryptoKeyVersion_ENABLED}
	if v.GetProtectionLevel() == kmspb.ProtectionLevel_HSM {
		info.Type += "-HSM"
	}
	if v.GetAlgorithm() == kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION {
		info.Size = 256
	}
	if purpose == kmspb.CryptoKey_ENCRYPT_DECRYPT {
		info.Ops = []string{"encrypt", "decrypt", "wrapKey", "unwrapKey"}
	} else {
		info.Ops = []string{purpose.String()}
	}
	return info
}

func (p *Provider) getKey(ctx context.Context, op, name string) (*kmspb.CryptoKey, error) {
	var k *kmspb.CryptoKey
	err := p.call(ctx, op, name, "GetCryptoKey", func(ctx context.Context, o ...gax.CallOption) error {
		var err error
		k, err = p.client.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: name}, o...)
		return err
	})
	return k, err
}

func (p *Provider) getVersion(ctx context.Context, op, name string) (*kmspb.CryptoKeyVersion, error) {
	var v *kmspb.CryptoKeyVersion
	err := p.call(ctx, op, name, "GetCryptoKeyVersion", func(ctx context.Context, o ...gax.CallOption) error {
		var err error
		v, err = p.client.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: name}, o...)
		return err
	})
	return v, err
}
