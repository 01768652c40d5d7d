package gcpkmsemu

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Service is the service name in the ErrorInfo details of the answers.
const Service = "cloudkms.googleapis.com"

// Messages of Google's front end for calls it refuses before Cloud KMS
// sees them (real texts).
const (
	msgMissingCredential = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	msgInvalidCredential = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)

// withDetails returns st as an error carrying details.
func withDetails(st *status.Status, details ...protoadapt.MessageV1) error {
	if d, err := st.WithDetails(details...); err == nil {
		return d.Err()
	}
	return st.Err()
}

// errorInfo is a google.rpc.ErrorInfo of domain googleapis.com.
func errorInfo(reason string, metadata map[string]string) *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Reason: reason, Domain: "googleapis.com", Metadata: metadata}
}

func preconditionFailure(subject, typ string) *errdetails.PreconditionFailure {
	return &errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{Type: typ, Subject: subject}}}
}

// unauthenticated is Google's UNAUTHENTICATED answer: reason is an
// ErrorInfo reason (CREDENTIALS_MISSING, ACCESS_TOKEN_TYPE_UNSUPPORTED,
// ACCESS_TOKEN_EXPIRED, ACCOUNT_STATE_INVALID), method the gRPC method.
func unauthenticated(reason, method string, extra map[string]string) error {
	msg := msgInvalidCredential
	if reason == "CREDENTIALS_MISSING" {
		msg = msgMissingCredential
	}
	md := map[string]string{"service": Service, "method": method}
	for k, v := range extra {
		md[k] = v
	}
	return withDetails(status.New(codes.Unauthenticated, msg), errorInfo(reason, md))
}

// permissionDenied is Cloud KMS's answer when the caller lacks permission
// on resource (the name as the request gave it).
func permissionDenied(permission, resource string) error {
	st := status.Newf(codes.PermissionDenied, "Permission '%s' denied on resource '%s' (or it may not exist).", permission, resource)
	return withDetails(st, errorInfo("IAM_PERMISSION_DENIED", map[string]string{"permission": permission, "resource": resource}))
}

func invalidArgument(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
