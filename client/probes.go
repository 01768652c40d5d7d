package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The probes and metrics take no token.

// Healthz reports whether the server process serves HTTP: nil on 200.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: p("healthz")}, nil)
}

// Readiness is the answer of /readyz: each dependency ("store",
// "platform_key") and "ok" or why it is not ready.
type Readiness struct {
	Ready  bool
	Checks map[string]string
}

// Readyz reports whether the server can serve: its store answers and its
// platform root key is usable. A server that is up but not ready is not an
// error: Ready is false and Checks say why.
func (c *Client) Readyz(ctx context.Context) (Readiness, error) {
	res, err := c.roundTrip(ctx, request{method: http.MethodGet, path: p("readyz")})
	if err != nil {
		return Readiness{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusServiceUnavailable {
		return Readiness{}, decodeError(res)
	}
	var v struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxErrorBody)).Decode(&v); err != nil {
		return Readiness{}, fmt.Errorf("client: GET /readyz: the answer (%d) is not the JSON expected: %w", res.StatusCode, err)
	}
	return Readiness{Ready: res.StatusCode == http.StatusOK, Checks: v.Checks}, nil
}

// Metrics returns the server's Prometheus metrics in the text format.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	res, err := c.send(ctx, request{method: http.MethodGet, path: p("metrics")})
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, res.Body); err != nil {
		return "", fmt.Errorf("client: GET /metrics: %w", err)
	}
	return b.String(), nil
}
