// Package vault is the Azure Key Vault data plane of kvemu: vaults, keys and
// their cryptography, authorisation (Azure RBAC and legacy access policies),
// soft delete, rotation, throttling, injected faults and call counters,
// served by an [http.Handler] that the official azkeys client talks to
// unchanged.
//
// A [Service] holds every vault. Its HTTP side ([Service.ServeHTTP]) selects
// the vault by the request's Host ({name}.vault.azure.net and the other Key
// Vault names), answers the challenge naming the vault's tenant, checks the
// bearer token's audience and tenant, the firewall, injected faults, the
// throttle and the caller's rights, then runs the operation, with Key
// Vault's status codes and error envelopes. Its Go side (CreateVault,
// CreateKey, AssignRole, InjectFault, Calls, …) is the control API that
// tests and demos use. Every method is safe for concurrent use.
//
// Time comes from [Options.Now], so nbf/exp checks, soft-delete purge dates,
// rotation policies and token buckets are testable with a fake clock.
package vault

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
// Its errors must not contain the token.
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
	opts Options
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration)

	mu     sync.Mutex
	vaults map[string]*vaultState // by lower-case name
	calls  map[callKey]int64
	nextID int
}

// New returns a Service without vaults. A nil Verifier rejects every token.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LoginURL == "" {
		opts.LoginURL = "https://login.microsoftonline.com"
	}
	opts.LoginURL = strings.TrimSuffix(opts.LoginURL, "/")
	return &Service{
		opts:   opts,
		sleep:  sleepCtx,
		vaults: map[string]*vaultState{},
		calls:  map[callKey]int64{},
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// vault returns the vault named name; the caller holds s.mu.
func (s *Service) vault(name string) (*vaultState, error) {
	v := s.vaults[strings.ToLower(name)]
	if v == nil {
		return nil, fmt.Errorf("%w: no vault named %q; create it first with CreateVault", ErrNotFound, name)
	}
	return v, nil
}

// CreateVault adds a vault. The name must be new.
func (s *Service) CreateVault(cfg VaultConfig) error {
	cfg, err := cfg.validate()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vaults[strings.ToLower(cfg.Name)] != nil {
		return fmt.Errorf("%w: a vault named %q already exists", ErrConflict, cfg.Name)
	}
	s.vaults[strings.ToLower(cfg.Name)] = newVaultState(cfg)
	return nil
}

func newVaultState(cfg VaultConfig) *vaultState {
	return &vaultState{cfg: cfg, keys: map[string]*keyState{}, deleted: map[string]*keyState{}, policies: map[string][]string{}}
}

// DeleteVault removes a vault and everything in it at once (no soft delete
// of vaults is emulated).
func (s *Service) DeleteVault(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.vault(name); err != nil {
		return err
	}
	delete(s.vaults, strings.ToLower(name))
	return nil
}

// Vault returns a vault's configuration.
func (s *Service) Vault(name string) (VaultConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(name)
	if err != nil {
		return VaultConfig{}, err
	}
	return v.cfg, nil
}

// Vaults returns the configuration of every vault, sorted by name.
func (s *Service) Vaults() []VaultConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]VaultConfig, 0, len(s.vaults))
	for _, v := range s.vaults {
		out = append(out, v.cfg)
	}
	slices.SortFunc(out, func(a, b VaultConfig) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out
}

// SetNetwork replaces a vault's firewall rules.
func (s *Service) SetNetwork(vault string, rules NetworkRules) error {
	rules, err := rules.validate()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	v.cfg.Network = rules
	return nil
}
