// Package lifecycle runs the lifecycle of tenants' customer-managed keys
// (DESIGN §4): the state machine draft → scheduled → active ↔ rotating,
// active → revoked → active, active → disabled, and its rules; Test
// configuration; the enforcement scheduler that activates BYOK on its
// date; rotation to a new key version or another key (at most 2 vault
// calls); re-key as a resumable job; the key-version inventory; the health
// monitor with its revocation timeline, audit events and signed webhooks;
// and Disable BYOK.
//
// A [Service] owns a [byok.Keyring] whose customer keys it resolves from
// the tenants' saved settings through a [Connector]. Everything with a
// clock takes Config.Now, and all background work happens in [Service.Tick],
// one deterministic pass that tests drive with a fake clock; [Service.Run]
// calls Tick on a ticker.
//
// See docs/lifecycle.md for the rules table and the design choices.
package lifecycle

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
)

// Service runs the lifecycle of tenants' customer keys. It is safe for
// concurrent use; create it with [New].
type Service struct {
	cfg          Config
	kr           *byok.Keyring
	platformOnly map[string]bool

	mu        sync.Mutex
	providers map[string]kms.Provider // by settingsKey
	pending   []byok.Event            // keyring events not yet recorded
	lastKind  map[string]HealthEventKind

	rekeys platformRekeys // this replica's platform re-key runs

	mon monitorState // the health monitor's schedule (monitor.go)
}

// Defaults of the Config fields left zero.
const (
	DefaultBatchSize   = 1000
	DefaultMaxAttempts = 10
	DefaultReplicaID   = "replica-1"
)

// New returns a service and the keyring it runs. It makes no remote call.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.PlatformKMS == nil || cfg.PlatformKeyID == "" || len(cfg.Connectors) == 0 {
		return nil, errors.New("lifecycle: Config needs Store, PlatformKMS, PlatformKeyID and a Connector")
	}
	names := map[string]bool{}
	for _, c := range cfg.Connectors {
		if names[c.Name()] {
			return nil, fmt.Errorf("lifecycle: two connectors for provider %q", c.Name())
		}
		names[c.Name()] = true
	}
	if cfg.Keyring.CustomerKMS != nil || cfg.Keyring.Store != nil || cfg.Keyring.PlatformKMS != nil {
		return nil, errors.New("lifecycle: leave Config.Keyring's Store, PlatformKMS and CustomerKMS unset; the service sets them")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = DefaultReplicaID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	for i, w := range cfg.Webhooks {
		if len(w.Secret) < 16 {
			return nil, fmt.Errorf("lifecycle: webhook %d (%s) has a %d-byte secret; use at least 16 random bytes", i, w.URL, len(w.Secret))
		}
	}
	s := &Service{
		cfg:          cfg,
		platformOnly: make(map[string]bool),
		providers:    make(map[string]kms.Provider),
		lastKind:     make(map[string]HealthEventKind),
	}
	for _, sc := range cfg.PlatformOnlyScopes {
		s.platformOnly[sc] = true
	}
	kc := cfg.Keyring
	kc.Store = cfg.Store
	kc.PlatformKMS = cfg.PlatformKMS
	kc.PlatformKeyID = cfg.PlatformKeyID
	kc.CustomerKMS = s.customerKMS
	kc.Now = cfg.Now
	if kc.Logger == nil {
		kc.Logger = cfg.Logger
	}
	userEvent := kc.OnEvent
	kc.OnEvent = func(e byok.Event) {
		s.mu.Lock()
		s.pending = append(s.pending, e)
		s.mu.Unlock()
		if userEvent != nil {
			userEvent(e)
		}
	}
	if s.cfg.TickInterval <= 0 {
		s.cfg.TickInterval = kc.CheckInterval
		if s.cfg.TickInterval <= 0 {
			s.cfg.TickInterval = byok.DefaultCheckInterval
		}
	}
	kr, err := byok.New(kc)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	s.kr = kr
	return s, nil
}

// forget drops what this process caches of a tenant whose keys or scopes
// changed, and tells the other replicas to (Config.Changed).
func (s *Service) forget(tenant string) {
	s.kr.Forget(tenant)
	if s.cfg.Changed != nil {
		s.cfg.Changed(tenant)
	}
}

// Keyring returns the keyring of the service, for data calls.
func (s *Service) Keyring() *byok.Keyring { return s.kr }

// Context values that say why vault calls are made, for their audit
// events.
type purposeKey struct{}
type actorKey struct{}

// bound returns ctx carrying the binding of the customer share of the
// tenant's customer-managed key of epoch (kms.Binding), as the keyring's
// own calls do.
func bound(ctx context.Context, epoch uint32) context.Context {
	return kms.WithBinding(ctx, kms.Binding{Kind: byok.CustomerManaged.String(), Epoch: epoch})
}

func withPurpose(ctx context.Context, p audit.Purpose, a audit.Actor) context.Context {
	return context.WithValue(context.WithValue(ctx, purposeKey{}, p), actorKey{}, a)
}

// settingsKey identifies saved settings without revealing or unsealing
// their secret: the cache key of their provider.
func settingsKey(r Record) string {
	h := sha256.New()
	for _, f := range []string{r.Settings.Provider, r.Settings.KeyID, string(r.Settings.Options), r.SealedSecret.KeyID} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	h.Write(r.SealedSecret.Ciphertext)
	return hex.EncodeToString(h.Sum(nil))
}

// customerKMS is the keyring's byok.CustomerKMS: the provider of a
// tenant's saved settings, cached per settings.
func (s *Service) customerKMS(ctx context.Context, tenant string) (kms.Provider, error) {
	rec, err := s.cfg.Store.KeyRecord(ctx, tenant)
	if err != nil {
		if errors.Is(err, byok.ErrNotFound) {
			return nil, &kms.Error{Op: "resolve", KeyID: tenant, Class: kms.Authoritative, Reason: kms.ReasonNotFound,
				Err: fmt.Errorf("tenant %q has no customer key settings", tenant)}
		}
		return nil, &kms.Error{Op: "resolve", KeyID: tenant, Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: err}
	}
	return s.provider(ctx, rec)
}

// provider returns the (audited) provider of a record's settings.
func (s *Service) provider(ctx context.Context, rec Record) (kms.Provider, error) {
	key := settingsKey(rec)
	s.mu.Lock()
	p := s.providers[key]
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	settings, err := s.unseal(ctx, rec)
	if err != nil {
		return nil, err
	}
	conn, err := s.Connector(rec.Settings.Provider)
	if err != nil {
		return nil, &kms.Error{Op: "resolve", KeyID: rec.Settings.KeyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest, Err: err}
	}
	inner, err := conn.Provider(ctx, settings)
	if err != nil {
		return nil, &kms.Error{Op: "resolve", KeyID: rec.Settings.KeyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest, Err: err}
	}
	if s.cfg.Instrument != nil {
		inner = s.cfg.Instrument("customer", inner)
	}
	p = &auditedProvider{inner: inner, tenant: rec.Tenant, s: s}
	s.mu.Lock()
	if cur := s.providers[key]; cur != nil {
		p = cur
	} else {
		s.providers[key] = p
	}
	s.mu.Unlock()
	return p, nil
}

// unseal returns the record's settings with their secret.
func (s *Service) unseal(ctx context.Context, rec Record) (KeySettings, error) {
	settings := settingsOf(rec.Tenant, rec.Settings)
	if rec.SealedSecret.KeyID == "" {
		return settings, nil
	}
	b, err := s.openSealed(ctx, rec.Tenant, rec.SealedSecret)
	if err != nil {
		return settings, fmt.Errorf("lifecycle: unsealing the credential of tenant %q under the platform key: %w", rec.Tenant, err)
	}
	settings.Secret = NewSecret(string(b))
	clear(b)
	return settings, nil
}

// auditedProvider records every call to a customer's vault in the audit
// log, with the purpose and actor the context carries and the event id as
// the request id sent to the vault.
type auditedProvider struct {
	inner  kms.Provider
	tenant string
	s      *Service
}

func (p *auditedProvider) Wrap(ctx context.Context, keyID string, plaintext []byte) (kms.Wrapped, error) {
	ctx, c := p.begin(ctx)
	w, err := p.inner.Wrap(ctx, keyID, plaintext)
	used := keyID
	if err == nil {
		used = w.KeyID
	}
	p.end(ctx, c, "wrapKey", used, err)
	return w, err
}

func (p *auditedProvider) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	ctx, c := p.begin(ctx)
	b, err := p.inner.Unwrap(ctx, w)
	p.end(ctx, c, "unwrapKey", w.KeyID, err)
	return b, err
}

func (p *auditedProvider) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	ctx, c := p.begin(ctx)
	info, err := p.inner.Describe(ctx, keyID)
	used := keyID
	if err == nil {
		used = info.KeyID
	}
	p.end(ctx, c, "get", used, err)
	return info, err
}

// call is one provider call as the audit log records it: the event id,
// sent as the request id, and the request id the provider's service gave.
type call struct {
	id       string
	mu       sync.Mutex
	provider string
}

// begin starts a call: its ctx carries the operation id and collects the
// provider's request id.
func (p *auditedProvider) begin(ctx context.Context) (context.Context, *call) {
	c := &call{id: audit.NewID()}
	ctx = kms.WithRequestIDs(kms.WithOperationID(ctx, c.id), func(id string) {
		c.mu.Lock()
		c.provider = id
		c.mu.Unlock()
	})
	return ctx, c
}

func (p *auditedProvider) end(ctx context.Context, c *call, op, keyID string, err error) {
	c.mu.Lock()
	providerID := c.provider
	c.mu.Unlock()
	id := c.id
	purpose, ok := ctx.Value(purposeKey{}).(audit.Purpose)
	if !ok {
		// The keyring's own checks run on a context of their own.
		purpose = audit.PurposeBackgroundCheck
	}
	actor, ok := ctx.Value(actorKey{}).(audit.Actor)
	if !ok {
		actor = audit.Actor{Kind: audit.System, ID: "keyring"}
	}
	e := audit.Event{Tenant: p.tenant, ID: id, Actor: actor, Action: "vault." + strings.ToLower(op), Target: keyID, Outcome: audit.Success,
		Vault: &audit.VaultCall{Operation: op, KeyID: keyID, Purpose: purpose, RequestID: id}}
	if providerID != "" {
		e.Details = map[string]string{"provider_request_id": providerID}
	}
	if err != nil {
		e.Outcome, e.Reason = audit.Failure, string(kms.ReasonOf(err))+": "+err.Error()
	}
	p.s.record(context.WithoutCancel(ctx), e)
}

// record appends an audit event, logging (never failing on) an audit
// error: the operation it describes has happened.
func (s *Service) record(ctx context.Context, e audit.Event) {
	if s.cfg.Audit == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	if _, err := s.cfg.Audit.Record(ctx, e); err != nil {
		s.cfg.Logger.Error("audit event not recorded", "action", e.Action, "tenant", e.Tenant, "error", err)
	}
}

// newJobID returns a random job id.
func newJobID() string {
	var b [12]byte
	rand.Read(b[:])
	return "job_" + hex.EncodeToString(b[:])
}
