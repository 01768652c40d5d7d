package server

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/openbyok/byok/kms"
)

const tracerName = "github.com/openbyok/byok/server"

// TraceWith makes m trace with tp (OpenTelemetry): the API's requests (of
// a server made with m afterwards) and the calls of providers instrumented
// afterwards. Call it before [New] and before instrumenting providers; nil
// tp, the default, means no tracing. There is then a span
//
//   - per API request, named by its route pattern ("POST
//     /v1/tenants/{tenant}/encrypt"), child of the caller's W3C
//     traceparent if it sends one, with the HTTP attributes of otelhttp
//     and byok.request_id (the X-Request-Id answered), byok.error_code
//     and byok.tenant. /healthz, /readyz and /metrics are not traced;
//   - per cold keyring path ("keyring.derive", "keyring.load_dek"), through
//     [Metrics.KeyringTrace] set as byok.Config.Trace;
//   - per call of an instrumented key provider ("kms.wrap", "kms.unwrap",
//     "kms.describe") with byok.kms.role (platform or customer),
//     byok.kms.op, byok.kms.key_id, byok.kms.outcome and
//     byok.kms.request_id, the request id sent to the vault
//     ([kms.OperationID]: the audit event id of a customer vault call, the
//     id of the API request that made it otherwise, if any).
//
// No attribute holds a token, a secret, key material or a payload, nor an
// error's text (only its class or code).
func (m *Metrics) TraceWith(tp trace.TracerProvider) {
	m.tp = tp
	m.tracer = nil
	if tp != nil {
		m.tracer = tp.Tracer(tracerName)
	}
}

// KeyringTrace returns the hook to set as byok.Config.Trace so that the
// keyring's cold paths are spans of m's tracer, or nil when m does not
// trace.
func (m *Metrics) KeyringTrace() func(parent, ctx context.Context, name string) (context.Context, func(error)) {
	tr := m.tracer
	if tr == nil {
		return nil
	}
	return func(parent, ctx context.Context, name string) (context.Context, func(error)) {
		_, span := tr.Start(parent, name)
		return trace.ContextWithSpan(ctx, span), func(err error) { endSpan(span, err) }
	}
}

// endSpan ends span with err's class as its outcome: never err's text,
// which may quote a vault's answer.
func endSpan(span trace.Span, err error) {
	if err != nil {
		class := kms.ClassOf(err).String()
		span.SetAttributes(attribute.String("byok.outcome", class))
		span.SetStatus(codes.Error, class)
	} else {
		span.SetAttributes(attribute.String("byok.outcome", "success"))
	}
	span.End()
}

// traced returns h in a span per request when m traces, else h itself.
func (m *Metrics) traced(rt route, h http.Handler) http.Handler {
	if m.tp == nil || rt.auth == authNone {
		return h
	}
	name := rt.method + " " + rt.pattern
	return otelhttp.NewHandler(h, name,
		otelhttp.WithTracerProvider(m.tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return name }))
}

// startKMS starts the span of a provider call, or returns a nil span when
// m does not trace.
func (i *instrumented) startKMS(ctx context.Context, op, keyID string) (context.Context, trace.Span) {
	tr := i.m.tracer
	if tr == nil {
		return ctx, nil
	}
	return tr.Start(ctx, "kms."+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("byok.kms.role", i.name),
		attribute.String("byok.kms.op", op),
		attribute.String("byok.kms.key_id", keyID),
		attribute.String("byok.kms.request_id", kms.OperationID(ctx)),
	))
}

// endKMS ends a provider call's span (if any) with its outcome class.
func endKMS(span trace.Span, err error) {
	if span == nil {
		return
	}
	outcome := "success"
	if err != nil {
		outcome = kms.ClassOf(err).String()
		span.SetStatus(codes.Error, outcome)
	}
	span.SetAttributes(attribute.String("byok.kms.outcome", outcome))
	span.End()
}

// annotate adds the request's id to its span, if it is traced.
func annotate(r *http.Request, reqID string) trace.Span {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return nil
	}
	span.SetAttributes(attribute.String("byok.request_id", reqID))
	if t := r.PathValue("tenant"); t != "" {
		span.SetAttributes(attribute.String("byok.tenant", t))
	}
	return span
}
