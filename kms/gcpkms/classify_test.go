package gcpkms

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openbyok/byok/kms"
)

func withViolation(c codes.Code, typ string) error {
	s, _ := status.New(c, "any text").WithDetails(&errdetails.PreconditionFailure{
		Violations: []*errdetails.PreconditionFailure_Violation{{Type: typ, Subject: keyA + "/cryptoKeyVersions/1"}}})
	return s.Err()
}

func withInfo(c codes.Code, reason string) error {
	s, _ := status.New(c, "any text").WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "googleapis.com"})
	return s.Err()
}

var classifyTests = []struct {
	op     string
	err    error
	class  kms.Class
	reason kms.Reason
}{
	{"wrap", status.Error(codes.PermissionDenied, "x"), kms.Authoritative, kms.ReasonDenied},
	{"wrap", withInfo(codes.Unauthenticated, "ACCOUNT_STATE_INVALID"), kms.Authoritative, kms.ReasonUnauthenticated},
	{"wrap", withInfo(codes.Unauthenticated, "ACCESS_TOKEN_TYPE_UNSUPPORTED"), kms.Authoritative, kms.ReasonUnauthenticated},
	{"wrap", status.Error(codes.Unauthenticated, "transport: per-RPC creds failed"), kms.Transient, kms.ReasonUnauthenticated},
	{"describe", status.Error(codes.NotFound, "x"), kms.Authoritative, kms.ReasonNotFound},
	{"unwrap", withViolation(codes.FailedPrecondition, "KEY_DISABLED"), kms.Authoritative, kms.ReasonDisabled},
	{"unwrap", withViolation(codes.FailedPrecondition, "KEY_DESTROY_SCHEDULED"), kms.Authoritative, ReasonDestroyed},
	{"unwrap", withViolation(codes.FailedPrecondition, "KEY_DESTROYED"), kms.Authoritative, ReasonDestroyed},
	{"unwrap", status.Error(codes.FailedPrecondition, "is destroyed"), kms.Authoritative, kms.ReasonDisabled}, // text is never read
	{"unwrap", status.Error(codes.InvalidArgument, "x"), kms.Invalid, kms.ReasonUnwrapFailed},
	{"wrap", status.Error(codes.InvalidArgument, "x"), kms.Invalid, kms.ReasonBadRequest},
	{"wrap", status.Error(codes.Unimplemented, "x"), kms.Invalid, kms.ReasonBadRequest},
	{"wrap", status.Error(codes.Unavailable, "x"), kms.Transient, kms.ReasonUnavailable},
	{"wrap", status.Error(codes.ResourceExhausted, "x"), kms.Transient, kms.ReasonThrottled},
	{"wrap", status.Error(codes.DeadlineExceeded, "x"), kms.Transient, kms.ReasonTimeout},
	{"wrap", status.Error(codes.Internal, "x"), kms.Transient, kms.ReasonUnavailable},
	{"wrap", status.Error(codes.Canceled, "x"), kms.Transient, kms.ReasonCanceled},
	{"wrap", fmt.Errorf("dial: %w", context.DeadlineExceeded), kms.Transient, kms.ReasonTimeout},
	{"wrap", context.Canceled, kms.Transient, kms.ReasonCanceled},
	{"wrap", errors.New("connection refused"), kms.Transient, kms.ReasonUnavailable},
	{"wrap", errIntegrity, kms.Transient, ReasonIntegrity},
	{"wrap", &NameError{Name: "x", Reason: "y"}, kms.Invalid, kms.ReasonBadRequest},
	{"unwrap", fmt.Errorf("%w: x", errAlgorithm), kms.Invalid, kms.ReasonUnwrapFailed},
}

func TestClassify(t *testing.T) {
	for _, tt := range classifyTests {
		e := Classify(tt.op, keyA, tt.err)
		if e.Class != tt.class || e.Reason != tt.reason || e.Op != tt.op || e.KeyID != keyA || !errors.Is(e, tt.err) {
			t.Errorf("Classify(%s, %v) = %v %s, want %v %s", tt.op, tt.err, e.Class, e.Reason, tt.class, tt.reason)
		}
	}
	if Classify("wrap", keyA, nil) != nil {
		t.Error("Classify(nil) is not nil")
	}
	ke := &kms.Error{Class: kms.Invalid}
	if Classify("wrap", keyA, fmt.Errorf("x: %w", ke)) != ke {
		t.Error("Classify does not return a *kms.Error it finds")
	}
}
