package awskms

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/kms"
)

// TestErrorClasses provokes every error class through the SDK against
// awsemu and checks the class, the reason, and that the AWS request id and
// code are in the error whenever AWS answered.
func TestErrorClasses(t *testing.T) {
	share := []byte("0123456789abcdef0123456789abcdef")
	for _, tt := range []struct {
		name     string
		setup    func(t *testing.T, e *env, cfg *Config) // may change the key, the emulator or cfg
		op       string                                  // "wrap", "unwrap" or "describe"
		class    kms.Class
		reason   kms.Reason
		code     string // the AWS error code in the message; "" if AWS did not answer
		keyARN   string // the ARN to use; "" for the customer's key
		noAnswer bool
	}{
		{name: "key policy without the platform", op: "unwrap", class: kms.Authoritative, reason: kms.ReasonDenied, code: "AccessDeniedException",
			setup: func(t *testing.T, e *env, cfg *Config) {
				e.emu.PutKeyPolicy(e.cmk.ARN, keyPolicy("arn:aws:iam::"+platformID+":user/someone-else"))
			}},
		{name: "disabled key", op: "unwrap", class: kms.Authoritative, reason: kms.ReasonDisabled, code: "DisabledException",
			setup: func(t *testing.T, e *env, cfg *Config) { e.emu.DisableKey(e.cmk.ARN) }},
		{name: "key pending deletion", op: "wrap", class: kms.Authoritative, reason: ReasonPendingDeletion, code: "KMSInvalidStateException",
			setup: func(t *testing.T, e *env, cfg *Config) { e.emu.ScheduleKeyDeletion(e.cmk.ARN, 7) }},
		{name: "key not found", op: "describe", class: kms.Authoritative, reason: kms.ReasonNotFound, code: "NotFoundException",
			keyARN: "arn:aws:kms:" + region + ":" + customer + ":key/00000000-0000-4000-8000-000000000000"},
		{name: "alias not found", op: "wrap", class: kms.Authoritative, reason: kms.ReasonNotFound, code: "NotFoundException",
			keyARN: "arn:aws:kms:" + region + ":" + customer + ":alias/gone"},
		{name: "signing key", op: "wrap", class: kms.Authoritative, reason: kms.ReasonOpForbidden, code: "InvalidKeyUsageException",
			setup: func(t *testing.T, e *env, cfg *Config) {
				k, err := e.emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY", Policy: openPolicy(platform)})
				if err != nil {
					t.Fatal(err)
				}
				cfg.KeyARN = k.ARN
			}},
		{name: "asymmetric key", op: "wrap", class: kms.Authoritative, reason: kms.ReasonOpForbidden, code: "InvalidKeyUsageException",
			setup: func(t *testing.T, e *env, cfg *Config) {
				k, err := e.emu.CreateKey(awsemu.KeySpec{Account: customer, Region: region, KeySpec: "RSA_2048", Policy: openPolicy(platform)})
				if err != nil {
					t.Fatal(err)
				}
				cfg.KeyARN = k.ARN
			}},
		{name: "wrong platform secret", op: "describe", class: kms.Authoritative, reason: kms.ReasonUnauthenticated, code: "InvalidSignatureException",
			setup: func(t *testing.T, e *env, cfg *Config) {
				cfg.Credentials = credentials.NewStaticCredentialsProvider(e.key.ID, "wrong-secret", "")
			}},
		{name: "external id mismatch", op: "wrap", class: kms.Authoritative, reason: kms.ReasonUnauthenticated, code: "AccessDenied",
			setup: func(t *testing.T, e *env, cfg *Config) {
				*cfg = e.roleConfig(t)
				cfg.ExternalID = "byok-ext-other"
			}},
		{name: "throttled", op: "wrap", class: kms.Transient, reason: kms.ReasonThrottled, code: "ThrottlingException",
			setup: func(t *testing.T, e *env, cfg *Config) {
				e.emu.InjectFault(awsemu.Fault{Ops: []string{"Encrypt"}, Throttle: true})
			}},
		{name: "internal error", op: "unwrap", class: kms.Transient, reason: kms.ReasonUnavailable, code: "KMSInternalException",
			setup: func(t *testing.T, e *env, cfg *Config) {
				e.emu.InjectFault(awsemu.Fault{Ops: []string{"Decrypt"}, Status: 500})
			}},
		{name: "service unavailable", op: "describe", class: kms.Transient, reason: kms.ReasonUnavailable, code: "ServiceUnavailableException",
			setup: func(t *testing.T, e *env, cfg *Config) { e.emu.InjectFault(awsemu.Fault{Status: 503}) }},
		{name: "connection reset", op: "unwrap", class: kms.Transient, reason: kms.ReasonUnavailable, noAnswer: true,
			setup: func(t *testing.T, e *env, cfg *Config) {
				e.emu.InjectFault(awsemu.Fault{Ops: []string{"Decrypt"}, Reset: true})
			}},
		{name: "malformed ARN", op: "wrap", class: kms.Invalid, reason: kms.ReasonBadRequest, noAnswer: true,
			keyARN: "arn:aws:kms:" + region + ":" + customer + ":key/not-a-key-id"},
		{name: "tampered ciphertext", op: "unwrap", class: kms.Invalid, reason: kms.ReasonUnwrapFailed, code: "InvalidCiphertextException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := e.config()
			var w kms.Wrapped
			if tt.op == "unwrap" {
				var err error
				if w, err = e.provider(t, cfg).Wrap(context.Background(), e.cmk.ARN, share); err != nil {
					t.Fatal(err)
				}
				if tt.name == "tampered ciphertext" {
					w.Ciphertext[len(w.Ciphertext)-1] ^= 1
				}
			}
			if tt.setup != nil {
				tt.setup(t, e, &cfg)
			}
			target := cfg.KeyARN
			if tt.keyARN != "" {
				target = tt.keyARN
			}
			e.emu.ResetCalls()
			p := e.provider(t, cfg)
			var err error
			switch tt.op {
			case "wrap":
				_, err = p.Wrap(context.Background(), target, share)
			case "unwrap":
				_, err = p.Unwrap(context.Background(), w)
			case "describe":
				_, err = p.Describe(context.Background(), target)
			}
			checkClass(t, err, tt.class, tt.reason)
			switch rid := RequestIDOf(err); {
			case tt.noAnswer && rid != "":
				t.Errorf("request id %q for a call AWS did not answer", rid)
			case !tt.noAnswer && (rid == "" || !strings.Contains(err.Error(), rid) || !strings.Contains(err.Error(), tt.code)):
				t.Errorf("error %v lacks the AWS code %s or the request id %q", err, tt.code, rid)
			}
			if strings.Contains(err.Error(), string(share)) {
				t.Error("the error shows the plaintext")
			}
			if tt.name == "malformed ARN" && len(e.emu.Calls()) != 0 {
				t.Errorf("a malformed ARN reached AWS: %+v", e.emu.Calls())
			}
		})
	}
}

func checkClass(t *testing.T, err error, class kms.Class, reason kms.Reason) {
	t.Helper()
	var ke *kms.Error
	if !errors.As(err, &ke) {
		t.Fatalf("error %v (%T) is not a *kms.Error", err, err)
	}
	if ke.Class != class || ke.Reason != reason {
		t.Errorf("error %v: class %v reason %q, want %v %q", err, ke.Class, ke.Reason, class, reason)
	}
}

// TestTimeout holds Decrypt in the emulator past the provider's timeout:
// the call fails as transient/timeout, and the held request is released.
func TestTimeout(t *testing.T) {
	e := newEnv(t)
	w, err := e.provider(t, e.config()).Wrap(context.Background(), e.cmk.ARN, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Timeout = 200 * time.Millisecond
	p := e.provider(t, cfg)
	release := e.emu.Hold("Decrypt")
	defer release()
	_, err = p.Unwrap(context.Background(), w)
	checkClass(t, err, kms.Transient, kms.ReasonTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the timeout error %v does not wrap context.DeadlineExceeded", err)
	}
}

// TestCallerCancel cancels the caller's ctx while KMS holds the call.
func TestCallerCancel(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config())
	release := e.emu.Hold("DescribeKey")
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-e.emu.Waiting()
		cancel()
	}()
	_, err := p.Describe(ctx, e.cmk.ARN)
	checkClass(t, err, kms.Transient, kms.ReasonCanceled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}
