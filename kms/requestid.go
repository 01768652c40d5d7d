package kms

import "context"

type requestIDKey struct{}

// WithRequestIDs returns ctx under which a provider reports to f the
// request id its service gave each call made under ctx (AWS's
// x-amzn-RequestId), so that the audit log can name it. Providers whose
// service gives none, or that send byok's own ([WithOperationID]: Azure's
// x-ms-client-request-id), report nothing.
func WithRequestIDs(ctx context.Context, f func(id string)) context.Context {
	return context.WithValue(ctx, requestIDKey{}, f)
}

// ReportRequestID reports id to the function of [WithRequestIDs] that ctx
// carries, if any; providers call it after each call to their service.
func ReportRequestID(ctx context.Context, id string) {
	if f, ok := ctx.Value(requestIDKey{}).(func(string)); ok && id != "" {
		f(id)
	}
}
