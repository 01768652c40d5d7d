package awskms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/openbyok/byok/kms"
)

// ReasonPendingDeletion is the reason of a key scheduled for deletion:
// KMS answers KMSInvalidStateException (which it also answers for an
// imported key without key material, or a custom key store's key that is
// unavailable; Test configuration's DescribeKey tells which).
const ReasonPendingDeletion kms.Reason = "key-pending-deletion"

// CallError is the concise form of an AWS SDK error: which service
// answered what, and the AWS request id, which the customer finds in
// CloudTrail. The SDK's error stays reachable through Unwrap
// (errors.As to smithy.APIError, *awshttp.ResponseError).
type CallError struct {
	Service   string // "KMS" or "STS"
	Operation string // e.g. "Decrypt", "AssumeRole"
	Status    int    // HTTP status; 0 if no answer
	Code      string // AWS error code, e.g. "AccessDeniedException"; "" if no answer
	Message   string // AWS's message; never holds secrets
	RequestID string // AWS request id ("" if no answer)
	Err       error
}

func (e *CallError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s %s: %s", e.Service, e.Operation, firstLine(e.Err.Error()))
	}
	msg := fmt.Sprintf("%s %s answered %d %s", e.Service, e.Operation, e.Status, e.Code)
	if e.Message != "" {
		msg += ": " + firstLine(e.Message)
	}
	if e.RequestID != "" {
		msg += " (request id " + e.RequestID + ")"
	}
	return msg
}

func (e *CallError) Unwrap() error { return e.Err }

// RequestIDOf returns the AWS request id of the call that failed with err,
// or "" if AWS did not answer.
func RequestIDOf(err error) string {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.RequestID
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}

// Classify maps an error met during op ("wrap", "unwrap", "describe", …)
// on keyID to a [*kms.Error], on the SDK's error codes only (never on
// message text):
//
//   - Authoritative: AccessDeniedException (the key policy does not
//     allow the call), STS AccessDenied (the role's trust policy refuses
//     the platform or the external id), the platform's credentials
//     refused (UnrecognizedClientException, InvalidSignatureException,
//     InvalidClientTokenId, SignatureDoesNotMatch): ReasonDenied or
//     ReasonUnauthenticated; DisabledException: ReasonDisabled;
//     KMSInvalidStateException: [ReasonPendingDeletion];
//     NotFoundException: ReasonNotFound; InvalidKeyUsageException:
//     ReasonOpForbidden;
//   - Invalid: InvalidCiphertextException and IncorrectKeyException
//     (altered value, another key, another encryption context):
//     ReasonUnwrapFailed; malformed ARNs and ValidationException,
//     InvalidArnException, UnsupportedOperationException: ReasonBadRequest;
//   - Transient: ThrottlingException and LimitExceededException
//     (ReasonThrottled), 5xx, KMSInternalException,
//     DependencyTimeoutException, KeyUnavailableException,
//     ExpiredToken(Exception) (a session the SDK refreshes), timeouts,
//     cancellation, connection and DNS failures, and anything
//     unrecognised.
//
// The *kms.Error's Err is a [*CallError] carrying the AWS request id. It
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
	var (
		arnErr *ARNError
		api    smithy.APIError
		netErr net.Error
		send   *smithyhttp.RequestSendError
	)
	ce := callError(err)
	if ce != nil {
		e.Err = ce
	}
	switch {
	case errors.As(err, &arnErr):
		e.Class, e.Reason = kms.Invalid, kms.ReasonBadRequest
	case errors.Is(err, errAlgorithm), errors.Is(err, errBinding):
		e.Class, e.Reason = kms.Invalid, kms.ReasonUnwrapFailed
	case errors.Is(err, context.DeadlineExceeded):
		e.Reason = kms.ReasonTimeout
	case errors.Is(err, context.Canceled):
		e.Reason = kms.ReasonCanceled
	case errors.As(err, &api):
		e.Class, e.Reason = classifyCode(api.ErrorCode(), ce)
	case errors.As(err, &netErr) && netErr.Timeout():
		e.Reason = kms.ReasonTimeout
	case errors.As(err, &send):
	}
	return e
}

// classifyCode maps an AWS error code (and the answer's status) to a
// class and reason.
func classifyCode(code string, ce *CallError) (kms.Class, kms.Reason) {
	switch code {
	case "AccessDeniedException":
		return kms.Authoritative, kms.ReasonDenied
	case "AccessDenied": // STS: the trust policy refuses the platform or the external id
		return kms.Authoritative, kms.ReasonUnauthenticated
	case "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException",
		"MissingAuthenticationTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"MissingAuthenticationToken", "IncompleteSignature", "RegionDisabledException":
		return kms.Authoritative, kms.ReasonUnauthenticated
	case "DisabledException":
		return kms.Authoritative, kms.ReasonDisabled
	case "KMSInvalidStateException":
		return kms.Authoritative, ReasonPendingDeletion
	case "NotFoundException":
		return kms.Authoritative, kms.ReasonNotFound
	case "InvalidKeyUsageException":
		return kms.Authoritative, kms.ReasonOpForbidden
	case "InvalidCiphertextException", "IncorrectKeyException":
		return kms.Invalid, kms.ReasonUnwrapFailed
	case "ValidationException", "ValidationError", "InvalidArnException", "UnsupportedOperationException",
		"SerializationException", "InvalidAliasNameException", "MalformedPolicyDocument":
		return kms.Invalid, kms.ReasonBadRequest
	case "ThrottlingException", "Throttling", "LimitExceededException", "RequestLimitExceeded", "TooManyRequestsException":
		return kms.Transient, kms.ReasonThrottled
	case "DependencyTimeoutException", "RequestTimeout", "RequestTimeoutException":
		return kms.Transient, kms.ReasonTimeout
	case "ExpiredTokenException", "ExpiredToken", "KMSInternalException", "KeyUnavailableException",
		"InternalFailure", "ServiceUnavailable", "ServiceUnavailableException":
		return kms.Transient, kms.ReasonUnavailable
	}
	if ce != nil {
		switch s := ce.Status; {
		case s == http.StatusTooManyRequests:
			return kms.Transient, kms.ReasonThrottled
		case s == http.StatusForbidden:
			return kms.Authoritative, kms.ReasonDenied
		}
	}
	return kms.Transient, kms.ReasonUnavailable
}

// callError builds the CallError of an SDK error: that of STS when the
// credentials could not be had (AssumeRole refused), else that of the
// outermost operation.
func callError(err error) *CallError {
	var ops []*smithy.OperationError
	for e := err; e != nil; {
		var oe *smithy.OperationError
		if !errors.As(e, &oe) {
			break
		}
		ops = append(ops, oe)
		e = oe.Err
	}
	if len(ops) == 0 {
		return nil
	}
	oe := ops[0]
	for _, o := range ops {
		if o.ServiceID == "STS" {
			oe = o
		}
	}
	ce := &CallError{Service: oe.ServiceID, Operation: oe.OperationName, Err: err}
	var api smithy.APIError
	if errors.As(oe.Err, &api) {
		ce.Code, ce.Message = api.ErrorCode(), api.ErrorMessage()
	}
	var re *awshttp.ResponseError
	if errors.As(oe.Err, &re) {
		ce.Status, ce.RequestID = re.HTTPStatusCode(), re.ServiceRequestID()
	}
	return ce
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
