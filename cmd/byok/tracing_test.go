package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// TestTracingFromEnv: tracing is off with no OTEL_* variable, on with
// OTEL_TRACES_EXPORTER=otlp (its spans reach the OTLP endpoint when it
// stops), and an exporter byok does not have is refused.
func TestTracingFromEnv(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, m := range []map[string]string{
		{},
		{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"},
	} {
		tp, stop, err := setupTracing(context.Background(), env(m), logger)
		if tp != nil || err != nil {
			t.Errorf("%v: tracer %v, error %v; want off", m, tp, err)
		}
		stop()
	}
	for _, m := range []map[string]string{
		{"OTEL_TRACES_EXPORTER": "zipkin"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
	} {
		if _, _, err := setupTracing(context.Background(), env(m), logger); err == nil {
			t.Errorf("%v accepted", m)
		}
	}

	var got atomic.Int32
	var service atomic.Bool
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			got.Add(1)
			service.Store(strings.Contains(string(b), "byok-test"))
		}
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_SERVICE_NAME", "byok-test")
	tp, stop, err := setupTracing(context.Background(), os.Getenv, logger)
	if err != nil || tp == nil {
		t.Fatalf("OTEL_TRACES_EXPORTER=otlp: tracer %v, error %v", tp, err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "a span")
	span.End()
	stop()
	if got.Load() == 0 || !service.Load() {
		t.Errorf("the collector got %d exports (service named: %v), want the span flushed at stop under OTEL_SERVICE_NAME", got.Load(), service.Load())
	}
}
