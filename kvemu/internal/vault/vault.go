// Package vault is the Azure Key Vault data plane of kvemu: vaults, keys and
// their cryptography, authorisation (RBAC and access policies), soft delete,
// rotation, throttling, injected faults and call counters, served by an
// [http.Handler] that the official azkeys client talks to unchanged.
package vault

import (
	"net/http"
	"sync"
	"time"
)

// Claims are the verified claims of an access token presented to a vault.
type Claims struct {
	Audience, Issuer, TenantID, ObjectID, AppID string
	NotBefore, ExpiresAt                        time.Time
}

// TokenVerifier checks an access token's signature and lifetime (NOT audience
// or tenant: the vault checks those itself, answering AKV10022 / AKV10032).
type TokenVerifier interface {
	VerifyAccessToken(raw string) (Claims, error)
}

// Options configure a [Service].
type Options struct {
	Verifier TokenVerifier
	Now      func() time.Time // nil: time.Now
	LoginURL string           // "https://login.microsoftonline.com", used in the challenge header
}

// Service holds every emulated vault and serves their data plane.
type Service struct {
	mu   sync.Mutex
	opts Options
}

// New returns an empty Service.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LoginURL == "" {
		opts.LoginURL = "https://login.microsoftonline.com"
	}
	return &Service{opts: opts}
}

// ServeHTTP serves the Key Vault data plane; r.Host (without port) selects the vault.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented yet", http.StatusNotImplemented)
}

// Snapshot returns the Service's state as JSON, for persistence.
func (s *Service) Snapshot() ([]byte, error) { return []byte("{}"), nil }

// Restore replaces the Service's state with a [Service.Snapshot].
func (s *Service) Restore([]byte) error { return nil }
