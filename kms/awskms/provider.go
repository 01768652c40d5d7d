// Package awskms is the [kms.Provider] for customer keys in AWS KMS, built
// on the official AWS SDK for Go v2 (service/kms, service/sts,
// credentials/stscreds) used unchanged.
//
// The customer's key is a symmetric KMS key (SYMMETRIC_DEFAULT,
// ENCRYPT_DECRYPT) named by its key or alias ARN, in any region;
// multi-region keys (mrk-…) are accepted. byok reaches it either as the
// platform's own IAM principal, which the key policy names, or by
// assuming a role in the customer's account with the external id byok
// generated for the tenant ([Config.RoleARN], [Config.ExternalID]); the
// SDK's stscreds provider caches the session and refreshes it.
//
// Wrap is KMS Encrypt, Unwrap is Decrypt (always with KeyId, so KMS
// refuses a ciphertext of another key), Describe is DescribeKey. Every call
// carries the encryption context {byok:tenant: Config.Tenant} (plus
// byok:kind and byok:epoch under [kms.WithBinding]), which the customer sees
// in CloudTrail and can require in the key policy.
//
// # Encryption context
//
// Encrypt and Decrypt carry the encryption context
//
//	{"byok:tenant": "<Config.Tenant>"}
//	{"byok:tenant": "<Config.Tenant>", "byok:kind": "<kind>", "byok:epoch": "<epoch>"}   (with kms.WithBinding)
//
// KMS authenticates it with the ciphertext (a value decrypts only with the
// same context), writes it into the customer's CloudTrail events of every
// call, and lets the key policy require it: the statement Test
// configuration prints grants kms:Encrypt and kms:Decrypt only when
// kms:EncryptionContext:byok:tenant is the tenant, so the key serves that
// byok tenant only. Unwrap rebuilds the context from Config.Tenant and the
// wrapped value alone: the tenant comes from the configuration (never from
// the stored value, so a share of another tenant fails), kind and epoch
// from the Algorithm Wrap recorded ("SYMMETRIC_DEFAULT;kind=…;epoch=…",
// see [EncryptionContext]); under kms.WithBinding, Unwrap also refuses a
// value that records another kind or epoch. Wrapped.Ciphertext is KMS's
// ciphertext blob unchanged, so the customer can check a share with
// `aws kms decrypt --ciphertext-blob fileb://share --encryption-context
// byok:tenant=<tenant>,…` in their own account.
//
// # Versions
//
// A KMS key is versionless: KMS rotates its backing key material itself
// (yearly, or on demand), the ciphertext names the backing key, and the
// key's ARN never changes. So a wrapped value records the key ARN
// (Wrapped.KeyID), never an alias: an alias is what "versionless" means
// here, and the key ARN behind it is the "version". When the customer
// points the alias at another key, new shares go to the new key, old ones
// still unwrap under the old key, and the old key is safe to retire (to
// schedule for deletion) once no share records its ARN. KMS's own
// rotation never makes a key unsafe to retire or needs a re-wrap.
//
// Every call is bounded by [Config.Timeout]; the SDK retries throttling,
// 5xx and connection errors. Errors are classified by [Classify] and carry
// the AWS request id ([RequestIDOf]); [WithRequestLog] collects the
// request ids of successful calls too, and every call's id is reported to
// [kms.WithRequestIDs] (the lifecycle puts it in the audit log). [kms.OperationID] of the ctx is
// appended to the User-Agent (byok-op/<id>), which CloudTrail records.
//
// [TestConfiguration] runs the customer-facing checks of a configuration
// and returns a [Report] whose remedies include the key policy statement
// or trust policy to paste ([KeyPolicyStatement], [TrustPolicy]).
package awskms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/openbyok/byok/kms"
)

// Provider wraps and unwraps under the customer's KMS keys with one set of
// credentials. It is safe for concurrent use. Create it with [New].
type Provider struct {
	cfg   Config
	base  aws.CredentialsProvider // the platform's own
	creds aws.CredentialsProvider // base, or the role's session (cached)

	mu      sync.Mutex
	clients map[string]*awskms.Client // by region
}

var _ kms.Provider = (*Provider)(nil)

// New returns a Provider for cfg, which must pass [Config.Validate]. It
// makes no network call; with nil Credentials it loads the SDK's default
// credential chain (which reads the environment and shared files, not the
// network, until first used).
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, base: cfg.Credentials, clients: map[string]*awskms.Client{}}
	if p.base == nil {
		ac, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("awskms: loading the platform's default AWS credentials: %w", err)
		}
		p.base = ac.Credentials
	}
	p.creds = p.base
	if cfg.RoleARN != "" {
		ar := stscreds.NewAssumeRoleProvider(p.stsClient(p.stsRegion()), cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.ExternalID = aws.String(cfg.ExternalID)
			o.RoleSessionName = cfg.sessionName()
			o.Duration = cfg.sessionDuration()
		})
		p.creds = aws.NewCredentialsCache(ar)
	}
	return p, nil
}

// stsRegion is the region of the STS endpoint: the key's, else us-east-1.
func (p *Provider) stsRegion() string {
	if a, err := ParseKeyARN(p.cfg.KeyARN); err == nil {
		return a.Region
	}
	return "us-east-1"
}

// stsClient returns an STS client with the platform's own credentials.
func (p *Provider) stsClient(region string) *sts.Client {
	return sts.New(sts.Options{
		Region: region, Credentials: p.base, HTTPClient: p.cfg.HTTPClient,
		RetryMaxAttempts: p.cfg.maxAttempts(), BaseEndpoint: optional(p.cfg.STSEndpoint),
		AppID: "byok",
	})
}

// client returns the KMS client of region.
func (p *Provider) client(region string) *awskms.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[region]; ok {
		return c
	}
	c := awskms.New(awskms.Options{
		Region: region, Credentials: p.creds, HTTPClient: p.cfg.HTTPClient,
		RetryMaxAttempts: p.cfg.maxAttempts(), BaseEndpoint: optional(p.cfg.Endpoint),
		AppID: "byok",
	})
	p.clients[region] = c
	return c
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// call runs one KMS operation with the provider's timeout, the operation
// id in the User-Agent, logging, the request log and classification.
func (p *Provider) call(ctx context.Context, op, keyID string, a KeyARN, f func(context.Context, *awskms.Client, func(*awskms.Options)) (middleware.Metadata, error)) error {
	if err := kms.CtxError(ctx, op, keyID); err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, p.cfg.timeout())
	defer cancel()
	opID := kms.OperationID(ctx)
	optFn := func(o *awskms.Options) {
		if opID != "" {
			o.APIOptions = append(o.APIOptions, awsmiddleware.AddUserAgentKeyValue("byok-op", opID))
		}
	}
	start := time.Now()
	md, err := f(tctx, p.client(a.Region), optFn)
	log := p.cfg.logger().With("op", op, "key", keyID, "operation_id", opID, "duration", time.Since(start))
	if err == nil {
		rid, _ := awsmiddleware.GetRequestIDMetadata(md)
		logRequest(ctx, op, keyID, rid, nil)
		log.DebugContext(ctx, "awskms: KMS call", "aws_request_id", rid)
		return nil
	}
	if cerr := kms.CtxError(ctx, op, keyID); cerr != nil { // the caller's ctx, not the timeout
		err = errors.Join(cerr, err)
	}
	ke := Classify(op, keyID, err)
	if code := codeOf(err); code == "ExpiredTokenException" || code == "ExpiredToken" {
		// KMS ended the role's session before the SDK expected: take a new
		// one at the next call.
		if c, ok := p.creds.(*aws.CredentialsCache); ok {
			c.Invalidate()
		}
	}
	logRequest(ctx, op, keyID, RequestIDOf(ke), ke)
	log.WarnContext(ctx, "awskms: KMS call failed", "class", ke.Class.String(), "reason", string(ke.Reason),
		"aws_request_id", RequestIDOf(ke), "error", ke.Err.Error())
	return ke
}

// Wrap encrypts plaintext (1 to [kms.MaxPlaintext] bytes) under keyID, a
// key or alias ARN, with the encryption context of [EncryptionContext].
// The result records the key ARN KMS used (never an alias) and, in its
// Algorithm, the ctx's [Binding] if any.
func (p *Provider) Wrap(ctx context.Context, keyID string, plaintext []byte) (kms.Wrapped, error) {
	a, err := ParseKeyARN(keyID)
	if err != nil {
		return kms.Wrapped{}, Classify("wrap", keyID, err)
	}
	if len(plaintext) == 0 || len(plaintext) > kms.MaxPlaintext {
		return kms.Wrapped{}, &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest,
			Err: fmt.Errorf("awskms: the plaintext has %d bytes; Wrap takes 1 to %d", len(plaintext), kms.MaxPlaintext)}
	}
	b, has := kms.BindingOf(ctx)
	alg, err := algorithm(b, has)
	if err != nil {
		return kms.Wrapped{}, &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest, Err: err}
	}
	ec, _ := EncryptionContext(p.cfg.Tenant, alg)
	in := &awskms.EncryptInput{KeyId: aws.String(keyID), Plaintext: bytes.Clone(plaintext), EncryptionContext: ec,
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault}
	defer clear(in.Plaintext)
	var out *awskms.EncryptOutput
	err = p.call(ctx, "wrap", keyID, a, func(ctx context.Context, c *awskms.Client, o func(*awskms.Options)) (middleware.Metadata, error) {
		var err error
		out, err = c.Encrypt(ctx, in, o)
		if err != nil {
			return middleware.Metadata{}, err
		}
		return out.ResultMetadata, nil
	})
	if err != nil {
		return kms.Wrapped{}, err
	}
	used, err := keyARNOf(out.KeyId, a)
	if err != nil {
		return kms.Wrapped{}, &kms.Error{Op: "wrap", KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: err}
	}
	return kms.Wrapped{KeyID: used, Algorithm: alg, Ciphertext: out.CiphertextBlob}, nil
}

// keyARNOf checks that KMS answered a key ARN in the account and region
// that were asked, and of the key asked for if it was a key ARN.
func keyARNOf(got *string, asked KeyARN) (string, error) {
	if got == nil {
		return "", errors.New("awskms: KMS's answer has no KeyId")
	}
	a, err := ParseKeyARN(*got)
	if err != nil || a.IsAlias() || a.Region != asked.Region || a.Account != asked.Account ||
		(!asked.IsAlias() && a.KeyID != asked.KeyID) {
		return "", fmt.Errorf("awskms: KMS answered KeyId %q for %s", *got, asked)
	}
	return a.String(), nil
}

var errBinding = errors.New("awskms: the wrapped value's binding differs from the caller's")

// Unwrap decrypts w under exactly the key w.KeyID names (a key ARN), with
// the encryption context rebuilt from Config.Tenant and w.Algorithm. A
// value of another key, tenant, kind or epoch, or altered, fails with class
// [kms.Invalid].
func (p *Provider) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	a, err := ParseKeyARN(w.KeyID)
	if err != nil {
		return nil, Classify("unwrap", w.KeyID, err)
	}
	invalid := func(err error) error {
		return &kms.Error{Op: "unwrap", KeyID: w.KeyID, Class: kms.Invalid, Reason: kms.ReasonUnwrapFailed, Err: err}
	}
	if a.IsAlias() {
		return nil, invalid(errors.New("awskms: the wrapped value names an alias; Wrap always records the key ARN, so it was altered"))
	}
	if len(w.Ciphertext) == 0 {
		return nil, invalid(errors.New("awskms: the wrapped value's ciphertext is empty"))
	}
	if w.Algorithm == "" {
		return nil, invalid(fmt.Errorf("%w: it is empty", errAlgorithm))
	}
	got, has, err := parseAlgorithm(w.Algorithm)
	if err != nil {
		return nil, invalid(err)
	}
	if b, ok := kms.BindingOf(ctx); ok && (!has || b != got) {
		return nil, invalid(fmt.Errorf("%w: the caller expects kind %q epoch %d", errBinding, b.Kind, b.Epoch))
	}
	ec, _ := EncryptionContext(p.cfg.Tenant, w.Algorithm)
	in := &awskms.DecryptInput{KeyId: aws.String(w.KeyID), CiphertextBlob: bytes.Clone(w.Ciphertext), EncryptionContext: ec,
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault}
	var out *awskms.DecryptOutput
	err = p.call(ctx, "unwrap", w.KeyID, a, func(ctx context.Context, c *awskms.Client, o func(*awskms.Options)) (middleware.Metadata, error) {
		var err error
		out, err = c.Decrypt(ctx, in, o)
		if err != nil {
			return middleware.Metadata{}, err
		}
		return out.ResultMetadata, nil
	})
	if err != nil {
		return nil, err
	}
	if out.KeyId == nil || *out.KeyId != w.KeyID {
		clear(out.Plaintext)
		return nil, invalid(fmt.Errorf("awskms: KMS decrypted under %v, not %s", aws.ToString(out.KeyId), w.KeyID))
	}
	return out.Plaintext, nil
}

// Describe reports the key keyID names (an alias: the key it points to):
// KeyID its key ARN, Type its key spec (SYMMETRIC_DEFAULT), Size 256 for a
// symmetric key, Ops from its key usage (ENCRYPT_DECRYPT: encrypt, decrypt,
// wrapKey, unwrapKey), Enabled its state Enabled, Expires the expiry of
// imported key material. (KMS always waits 7 to 30 days before deleting
// a key; Test configuration reports a key pending deletion.)
func (p *Provider) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	md, err := p.describe(ctx, "describe", keyID)
	if err != nil {
		return kms.KeyInfo{}, err
	}
	return keyInfo(md), nil
}

// describe calls DescribeKey and checks the answer names the key asked.
func (p *Provider) describe(ctx context.Context, op, keyID string) (*types.KeyMetadata, error) {
	a, err := ParseKeyARN(keyID)
	if err != nil {
		return nil, Classify(op, keyID, err)
	}
	var out *awskms.DescribeKeyOutput
	err = p.call(ctx, op, keyID, a, func(ctx context.Context, c *awskms.Client, o func(*awskms.Options)) (middleware.Metadata, error) {
		var err error
		out, err = c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(keyID)}, o)
		if err != nil {
			return middleware.Metadata{}, err
		}
		return out.ResultMetadata, nil
	})
	if err != nil {
		return nil, err
	}
	if out.KeyMetadata == nil {
		return nil, &kms.Error{Op: op, KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: errors.New("awskms: DescribeKey answered no KeyMetadata")}
	}
	arn, err := keyARNOf(out.KeyMetadata.Arn, a)
	if err != nil {
		return nil, &kms.Error{Op: op, KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: err}
	}
	out.KeyMetadata.Arn = aws.String(arn)
	return out.KeyMetadata, nil
}

func keyInfo(m *types.KeyMetadata) kms.KeyInfo {
	info := kms.KeyInfo{KeyID: aws.ToString(m.Arn), Type: string(m.KeySpec),
		Enabled: m.Enabled && m.KeyState == types.KeyStateEnabled}
	if m.KeySpec == types.KeySpecSymmetricDefault {
		info.Size = 256
	}
	if m.KeyUsage == types.KeyUsageTypeEncryptDecrypt {
		info.Ops = []string{"encrypt", "decrypt", "wrapKey", "unwrapKey"}
	} else if m.KeyUsage != "" {
		info.Ops = []string{string(m.KeyUsage)}
	}
	if m.ValidTo != nil {
		info.Expires = m.ValidTo.UTC()
	}
	return info
}

// RequestLog collects the AWS request id of every KMS call made under a
// ctx from [WithRequestLog], successful or not, so the audit log can name
// them. It is safe for concurrent use.
type RequestLog struct {
	mu      sync.Mutex
	entries []Request
}

// Request is one KMS call in a [RequestLog].
type Request struct {
	Op        string // "wrap", "unwrap", "describe", …
	KeyID     string
	RequestID string // "" if AWS did not answer
	Err       error  // nil on success; a *kms.Error otherwise
}

type requestLogKey struct{}

// WithRequestLog returns a ctx whose provider calls are recorded in the
// returned log.
func WithRequestLog(ctx context.Context) (context.Context, *RequestLog) {
	l := &RequestLog{}
	return context.WithValue(ctx, requestLogKey{}, l), l
}

// Requests returns the calls recorded so far, oldest first.
func (l *RequestLog) Requests() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

func logRequest(ctx context.Context, op, keyID, rid string, err error) {
	kms.ReportRequestID(ctx, rid)
	if l, ok := ctx.Value(requestLogKey{}).(*RequestLog); ok {
		l.mu.Lock()
		l.entries = append(l.entries, Request{Op: op, KeyID: keyID, RequestID: rid, Err: err})
		l.mu.Unlock()
	}
}
