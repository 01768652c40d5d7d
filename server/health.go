package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/openbyok/byok/kms"
)

// readyTTL is how long /readyz reuses a result, so that probes every
// second do not become a call to the platform key provider every second.
const readyTTL = 5 * time.Second

// readiness checks that the store answers and the platform root key is
// usable, and remembers the answer for readyTTL.
type readiness struct {
	store Store
	kms   kms.Provider
	keyID string
	now   func() time.Time

	mu     sync.Mutex
	at     time.Time
	checks map[string]string
	ok     bool
}

// check returns, for each dependency, "ok" or why it is not ready, and
// whether all are ok.
func (r *readiness) check(ctx context.Context) (map[string]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.checks != nil && now.Sub(r.at) < readyTTL && now.Sub(r.at) >= 0 {
		return r.checks, r.ok
	}
	checks := map[string]string{"store": "ok", "platform_key": "ok"}
	ok := true
	if _, err := r.store.ListTokens(ctx, "", 1); err != nil {
		checks["store"], ok = "the metadata store does not answer", false
	}
	info, err := r.kms.Describe(ctx, r.keyID)
	switch {
	case err != nil:
		checks["platform_key"], ok = "the platform root key cannot be described ("+string(kms.ReasonOf(err))+")", false
	case !info.Enabled:
		checks["platform_key"], ok = "the platform root key is disabled", false
	case !info.Expires.IsZero() && !now.Before(info.Expires):
		checks["platform_key"], ok = "the platform root key's current version expired at "+info.Expires.UTC().Format(time.RFC3339)+"; give it a new version or a later expiry", false
	case !info.NotBefore.IsZero() && now.Before(info.NotBefore):
		checks["platform_key"], ok = "the platform root key's current version is not valid before "+info.NotBefore.UTC().Format(time.RFC3339), false
	}
	r.at, r.checks, r.ok = now, checks, ok
	return checks, ok
}

type probeView struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// healthz answers 200 while the process serves HTTP.
func (s *server) healthz(c *call) (any, error) {
	return probeView{Status: "ok"}, nil
}

// readyz answers 200 when the store answers and the platform key is
// usable, 503 otherwise, with each check's outcome.
func (s *server) readyz(c *call) (any, error) {
	checks, ok := s.ready.check(c.ctx)
	if !ok {
		c.status = http.StatusServiceUnavailable
		return probeView{Status: "not ready", Checks: checks}, nil
	}
	return probeView{Status: "ready", Checks: checks}, nil
}

// metrics serves the Prometheus metrics.
func (s *server) metrics(c *call) (any, error) {
	s.m.Handler().ServeHTTP(c.w, c.r)
	c.wrote = true
	return nil, nil
}
