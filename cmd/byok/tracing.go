package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// setupTracing returns the OpenTelemetry tracer provider the standard
// OTEL_* variables ask for, and a function that flushes the spans not yet
// exported and stops it. Tracing is off (nil provider) unless
// OTEL_TRACES_EXPORTER is "otlp", or is unset while an OTLP endpoint is
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
// OTEL_SDK_DISABLED=true turns it off. The exporter is OTLP over HTTP
// and reads its own OTEL_EXPORTER_OTLP_* settings (endpoint, headers,
// TLS, timeout); the SDK reads OTEL_TRACES_SAMPLER* and OTEL_BSP_*.
// The service is named by OTEL_SERVICE_NAME (default "byok"), with
// OTEL_RESOURCE_ATTRIBUTES.
func setupTracing(ctx context.Context, getenv func(string) string, logger *slog.Logger) (trace.TracerProvider, func(), error) {
	off := func() {}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, off, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "otlp":
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return nil, off, nil
		}
	case "none":
		return nil, off, nil
	default:
		return nil, off, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: byok exports traces with otlp only; set otlp, or none (the default) for no tracing", exp)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return nil, off, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: byok exports OTLP over http/protobuf only; point it at the collector's HTTP port (4318)", proto)
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, off, fmt.Errorf("tracing: the OTLP exporter: %w", err)
	}
	fromEnv, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, off, fmt.Errorf("tracing: OTEL_RESOURCE_ATTRIBUTES or OTEL_SERVICE_NAME: %w", err)
	}
	res, err := resource.Merge(resource.NewSchemaless(
		attribute.String("service.name", "byok"), attribute.String("service.version", buildVersion())), fromEnv)
	if err != nil {
		return nil, off, fmt.Errorf("tracing: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			logger.Warn("tracing: flushing the last spans failed", "error", err)
		}
	}
	return tp, stop, nil
}

// buildVersion is the module version byok was built at, or "(devel)".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
