package gcpkms

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openbyok/byok/kms"
)

// Reasons only Cloud KMS has.
const (
	// ReasonDestroyed: the version is scheduled for destruction or
	// destroyed (FAILED_PRECONDITION, violation KEY_DESTROY_SCHEDULED,
	// KEY_DESTROYED…). A scheduled one can still be restored.
	ReasonDestroyed kms.Reason = "key-version-destroyed"
	// ReasonIntegrity: an answer's CRC32C did not match its data: it was
	// corrupted in transit; Google says to discard it and retry.
	ReasonIntegrity kms.Reason = "integrity-check-failed"
)

// errIntegrity marks an answer whose CRC32C did not verify.
var errIntegrity = errors.New("gcpkms: Cloud KMS's answer failed its CRC32C integrity check (corrupted in transit); retry")

// Classify maps an error met during op ("wrap", "unwrap", "describe", …)
// on keyID to a [*kms.Error], on gRPC status codes and the status's
// structured details only (never on message text):
//
//   - Authoritative: PERMISSION_DENIED (ReasonDenied: the IAM binding is
//     missing), UNAUTHENTICATED with Google's ErrorInfo
//     (ReasonUnauthenticated: the platform's key refused, its service
//     account disabled or deleted), NOT_FOUND
//     (ReasonNotFound), FAILED_PRECONDITION (a version not enabled:
//     [ReasonDestroyed] when its PreconditionFailure names a destroy
//     state, else ReasonDisabled);
//   - Invalid: a malformed name ([*NameError]), a binding or algorithm
//     no Provider writes, and INVALID_ARGUMENT: on unwrap ReasonUnwrapFailed
//     (another key, tenant, version or binding, or altered), else
//     ReasonBadRequest (a key whose purpose is not ENCRYPT_DECRYPT);
//     UNIMPLEMENTED, OUT_OF_RANGE: ReasonBadRequest;
//   - Transient: UNAUTHENTICATED without an ErrorInfo, which the client
//     answers itself when it cannot get a token (ReasonUnauthenticated);
//     RESOURCE_EXHAUSTED (ReasonThrottled), DEADLINE_EXCEEDED
//     and a ctx deadline (ReasonTimeout), CANCELED and a cancelled ctx
//     (ReasonCanceled), an answer failing its CRC32C ([ReasonIntegrity]),
//     UNAVAILABLE, INTERNAL, ABORTED, UNKNOWN and anything else
//     (ReasonUnavailable).
//
// Cloud KMS checks permission before existence: with the platform's
// roles granted on the key alone, a deleted or mistyped key answers
// PERMISSION_DENIED, not NOT_FOUND (both authoritative).
//
// The gRPC status stays reachable (status.FromError, errors.As). It
// returns nil for a nil err, and err itself if it already is a *kms.Error.
func Classify(op, keyID string, err error) *kms.Error {
	if err == nil {
		return nil
	}
	var ke *kms.Error
	if errors.As(err, &ke) {
		return ke
	}
	e := &kms.Error{Op: op, KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: err}
	var nameErr *NameError
	switch {
	case errors.As(err, &nameErr):
		e.Class, e.Reason = kms.Invalid, kms.ReasonBadRequest
	case errors.Is(err, errAlgorithm), errors.Is(err, errBinding):
		e.Class, e.Reason = kms.Invalid, kms.ReasonUnwrapFailed
	case errors.Is(err, errIntegrity):
		e.Reason = ReasonIntegrity
	case errors.Is(err, context.DeadlineExceeded):
		e.Reason = kms.ReasonTimeout
	case errors.Is(err, context.Canceled):
		e.Reason = kms.ReasonCanceled
	default:
		if s, ok := status.FromError(err); ok {
			e.Class, e.Reason = classifyStatus(op, s)
		}
	}
	return e
}

func classifyStatus(op string, s *status.Status) (kms.Class, kms.Reason) {
	switch s.Code() {
	case codes.PermissionDenied:
		return kms.Authoritative, kms.ReasonDenied
	case codes.Unauthenticated:
		// Google's front end always explains a refusal with an ErrorInfo;
		// without one, the client itself could not get a token (the
		// metadata server or STS unreachable), which is no revocation.
		if errorInfoOf(s) == nil {
			return kms.Transient, kms.ReasonUnauthenticated
		}
		return kms.Authoritative, kms.ReasonUnauthenticated
	case codes.NotFound:
		return kms.Authoritative, kms.ReasonNotFound
	case codes.FailedPrecondition:
		for _, d := range s.Details() {
			if pf, ok := d.(*errdetails.PreconditionFailure); ok {
				for _, v := range pf.GetViolations() {
					if strings.Contains(v.GetType(), "DESTROY") {
						return kms.Authoritative, ReasonDestroyed
					}
				}
			}
		}
		return kms.Authoritative, kms.ReasonDisabled
	case codes.InvalidArgument:
		if op == "unwrap" {
			return kms.Invalid, kms.ReasonUnwrapFailed
		}
		return kms.Invalid, kms.ReasonBadRequest
	case codes.Unimplemented, codes.OutOfRange:
		return kms.Invalid, kms.ReasonBadRequest
	case codes.ResourceExhausted:
		return kms.Transient, kms.ReasonThrottled
	case codes.DeadlineExceeded:
		return kms.Transient, kms.ReasonTimeout
	case codes.Canceled:
		return kms.Transient, kms.ReasonCanceled
	}
	return kms.Transient, kms.ReasonUnavailable
}

// errorInfoReason returns the google.rpc.ErrorInfo reason of err's status
// (e.g. "ACCOUNT_STATE_INVALID", "IAM_PERMISSION_DENIED"), or "".
func errorInfoReason(err error) string {
	s, ok := status.FromError(err)
	if !ok {
		return ""
	}
	return errorInfoOf(s).GetReason()
}

func errorInfoOf(s *status.Status) *errdetails.ErrorInfo {
	for _, d := range s.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	return nil
}
