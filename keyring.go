package byok

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/openbyok/byok/internal/envelope"
	"github.com/openbyok/byok/kms"
)

// Limits on the arguments of every keyring call.
const (
	// MaxIDLen is the longest tenant or scope id, in bytes.
	MaxIDLen = envelope.MaxIDLen
	// MaxPlaintext is the largest payload Encrypt takes; larger payloads
	// go through EncryptStream.
	MaxPlaintext = 64 << 20
	// MaxAAD is the largest associated data any call takes.
	MaxAAD = 64 << 10
)

// Defaults of the Config fields left zero.
const (
	DefaultCheckInterval  = 60 * time.Second
	DefaultMaxStaleness   = time.Hour
	DefaultDEKMaxMessages = 1 << 28
	DefaultDEKMaxAge      = 24 * time.Hour
	DefaultCallTimeout    = 10 * time.Second
	// DefaultMaxTenantKeys, DefaultMaxDEKs and DefaultTenantKeyIdleTimeout
	// bound the caches; docs/operations.md ("Cache limits") gives the
	// memory one entry costs and how to size them.
	DefaultMaxTenantKeys        = 50_000
	DefaultMaxDEKs              = 100_000
	DefaultTenantKeyIdleTimeout = time.Hour
)

// CustomerKMS returns the provider that holds a tenant's customer-managed
// key. Implementations cache their providers: it is called on every load
// and check of a customer-managed tenant key.
type CustomerKMS func(ctx context.Context, tenant string) (kms.Provider, error)

// Config configures a [Keyring]. Store, PlatformKMS and PlatformKeyID are
// required; every other zero field takes its default.
type Config struct {
	Store Store
	// PlatformKMS holds the platform root key, named by PlatformKeyID
	// (versionless, so new shares go under its current version).
	PlatformKMS   kms.Provider
	PlatformKeyID string
	// CustomerKMS resolves tenants' own keys; nil means no tenant can have
	// a customer-managed key.
	CustomerKMS CustomerKMS

	// CheckInterval is how often a cached tenant key is re-validated by
	// an unwrap of its customer share.
	CheckInterval time.Duration
	// MaxStaleness is how long a tenant under the Grace policy is served
	// from cache while its provider fails transiently.
	MaxStaleness time.Duration
	// DEKMaxMessages and DEKMaxAge retire a process's active DEK for a
	// scope; a new one is made on the next Encrypt.
	DEKMaxMessages uint64
	DEKMaxAge      time.Duration
	// CallTimeout bounds each provider call the keyring makes.
	CallTimeout time.Duration

	// MaxTenantKeys and MaxDEKs bound the number of tenant keys and DEKs
	// cached in memory; the least recently used (approximately) are
	// evicted beyond them, and evicting a tenant key evicts its DEKs. An
	// evicted entry is simply not cached: its next use loads it again
	// and checks its tenant key with the providers. Zero means the
	// default; negative means no limit.
	MaxTenantKeys int
	MaxDEKs       int
	// TenantKeyIdleTimeout drops a tenant key (and its DEKs) that no data
	// call used for that long, and DEKs other than a scope's active one
	// unused for that long: the keyring no longer re-validates what is
	// not used. Check is not a use. Zero means the default; negative
	// means never.
	TenantKeyIdleTimeout time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnEvent, if set, is called (synchronously, keep it short) on every
	// revocation, restoration and change of availability of a tenant key.
	OnEvent func(Event)
	// Logger receives operational logs; nil discards them. No key
	// material is ever logged.
	Logger *slog.Logger
	// Trace, if set, traces the keyring's cold paths: a tenant key's
	// check ("keyring.derive": its record read and both shares
	// unwrapped) and a DEK's load ("keyring.load_dek": read from the
	// store and unwrapped). It starts a span named name as a child of
	// the span parent carries, returns ctx with that span in it, and a
	// function that ends the span with the path's error (nil: success).
	// The path's provider calls get the returned context, so their own
	// spans nest under it. ctx is parent, except for a check: a check
	// outlives the call that started it and runs on a context of its
	// own, which carries only the caller's operation id
	// ([kms.OperationID]). Nil means no tracing; the keyring itself
	// depends on no tracing library.
	Trace func(parent, ctx context.Context, name string) (context.Context, func(error))
}

// trace starts a span through Config.Trace, if set.
func (k *Keyring) trace(parent, ctx context.Context, name string) (context.Context, func(error)) {
	if k.cfg.Trace == nil {
		return ctx, func(error) {}
	}
	return k.cfg.Trace(parent, ctx, name)
}

func (c *Config) setDefaults() error {
	if c.Store == nil || c.PlatformKMS == nil || c.PlatformKeyID == "" {
		return errors.New("byok: Config needs Store, PlatformKMS and PlatformKeyID")
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.MaxStaleness <= 0 {
		c.MaxStaleness = DefaultMaxStaleness
	}
	if c.DEKMaxMessages == 0 {
		c.DEKMaxMessages = DefaultDEKMaxMessages
	}
	if c.DEKMaxAge <= 0 {
		c.DEKMaxAge = DefaultDEKMaxAge
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	switch {
	case c.MaxTenantKeys == 0:
		c.MaxTenantKeys = DefaultMaxTenantKeys
	case c.MaxTenantKeys < 0:
		c.MaxTenantKeys = math.MaxInt
	}
	switch {
	case c.MaxDEKs == 0:
		c.MaxDEKs = DefaultMaxDEKs
	case c.MaxDEKs < 0:
		c.MaxDEKs = math.MaxInt
	}
	switch {
	case c.TenantKeyIdleTimeout == 0:
		c.TenantKeyIdleTimeout = DefaultTenantKeyIdleTimeout
	case c.TenantKeyIdleTimeout < 0:
		c.TenantKeyIdleTimeout = math.MaxInt64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// EventType names what happened to a tenant key.
type EventType string

const (
	EventRevoked     EventType = "revoked"     // an authoritative failure: fails closed
	EventRestored    EventType = "restored"    // a check succeeded after a revocation or outage
	EventUnavailable EventType = "unavailable" // transient failures beyond the tenant's policy: fails closed
	EventDegraded    EventType = "degraded"    // a transient failure; still served from cache
)

// Event reports a change in a tenant key's health as this process saw it.
type Event struct {
	Type   EventType
	Tenant string
	Kind   KeyKind
	Epoch  uint32
	Reason kms.Reason // for Revoked, Unavailable, Degraded
	At     time.Time
}

// Keyring encrypts and decrypts tenants' data. It is safe for concurrent
// use; create one per process with [New].
type Keyring struct {
	cfg Config
	sf  singleflight.Group
	// refreshes counts the background checks startRefresh runs.
	refreshes sync.WaitGroup

	// realClock is set when Config.Now was nil: the warm path then reads
	// only the monotonic clock (see nanos).
	realClock  bool
	start      time.Time
	startNanos int64

	mu     sync.RWMutex
	tks    map[tkID]*tenantKey
	deks   map[DEKID]*dek
	active map[scopeID]*activeDEK
	// policies are the policies SetPolicy gave in this process, until the
	// tenant is forgotten: they win over a policy a concurrent load read
	// from the store before SetPolicy wrote it.
	policies map[string]Policy
	// The caches' bounds (cache.go).
	tkClock        clock[*tenantKey]
	dekClock       clock[*dek]
	retiredDEKHits uint64
	retiredUsed    uint64 // messages sealed by DEKs no longer active
	encryptMisses  atomic.Uint64

	tkStats, dekStats cacheCounters
	nextSweep         atomic.Int64 // Unix nanoseconds
	// forgets counts Forget calls. A load that finds its tenant key gone
	// from the cache starts over if a Forget ran since it began (what it
	// read may be stale); otherwise the key was only evicted.
	forgets atomic.Uint64
}

// tkID names one tenant key.
type tkID struct {
	tenant string
	kind   KeyKind
	epoch  uint32
}

// scopeID names one scope of one tenant.
type scopeID struct {
	tenant, scope string
}

// New returns a keyring. It makes no remote call.
func New(cfg Config) (*Keyring, error) {
	realClock := cfg.Now == nil
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	start := cfg.Now()
	return &Keyring{
		cfg:        cfg,
		realClock:  realClock,
		start:      start,
		startNanos: start.UnixNano(),
		tks:        make(map[tkID]*tenantKey),
		deks:       make(map[DEKID]*dek),
		active:     make(map[scopeID]*activeDEK),
		policies:   make(map[string]Policy),
	}, nil
}

// Encrypt seals plaintext for a tenant's scope, binding aad (which may be
// nil). Decrypt needs the same tenant, scope and aad.
func (k *Keyring) Encrypt(ctx context.Context, tenant, scope string, plaintext, aad []byte) ([]byte, error) {
	if err := validate(ctx, tenant, scope, len(plaintext), aad); err != nil {
		return nil, err
	}
	a, err := k.activeDEK(ctx, tenant, scope)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, envelope.Overhead+len(plaintext))
	return envelope.Seal(out, a.dek.aead, envelope.KeyID(a.dek.id), tenant, scope, plaintext, aad), nil
}

// Decrypt opens a ciphertext made by Encrypt for the same tenant, scope and
// aad. Any authentication failure returns an error wrapping [ErrDecrypt].
func (k *Keyring) Decrypt(ctx context.Context, tenant, scope string, ciphertext, aad []byte) ([]byte, error) {
	if err := validate(ctx, tenant, scope, len(ciphertext)-envelope.Overhead, aad); err != nil {
		return nil, err
	}
	id, err := envelope.ParseID(ciphertext)
	if err != nil {
		return nil, formatError(err)
	}
	d, err := k.dekByID(ctx, tenant, scope, DEKID(id))
	if err != nil {
		return nil, err
	}
	pt, err := envelope.Open(make([]byte, 0, len(ciphertext)-envelope.Overhead), d.aead, tenant, scope, ciphertext, aad)
	if err != nil {
		return nil, openError(err)
	}
	return pt, nil
}

// Reencrypt re-seals a ciphertext under the scope's current DEK without
// returning the plaintext: after a re-key, it moves data onto the new
// tenant key. aad must be the one the ciphertext was made with.
func (k *Keyring) Reencrypt(ctx context.Context, tenant, scope string, ciphertext, aad []byte) ([]byte, error) {
	if err := validate(ctx, tenant, scope, len(ciphertext)-envelope.Overhead, aad); err != nil {
		return nil, err
	}
	id, err := envelope.ParseID(ciphertext)
	if err != nil {
		return nil, formatError(err)
	}
	old, err := k.dekByID(ctx, tenant, scope, DEKID(id))
	if err != nil {
		return nil, err
	}
	a, err := k.activeDEK(ctx, tenant, scope)
	if err != nil {
		return nil, err
	}
	pt, err := envelope.Open(make([]byte, 0, len(ciphertext)-envelope.Overhead), old.aead, tenant, scope, ciphertext, aad)
	if err != nil {
		return nil, openError(err)
	}
	defer clear(pt)
	out := make([]byte, 0, len(ciphertext))
	return envelope.Seal(out, a.dek.aead, envelope.KeyID(a.dek.id), tenant, scope, pt, aad), nil
}

// nanos returns the current time in Unix nanoseconds for the warm path's
// comparisons. With the real clock it reads only the monotonic clock,
// which costs half of time.Now on machines without a fast wall clock.
func (k *Keyring) nanos() int64 {
	if k.realClock {
		return k.startNanos + int64(time.Since(k.start))
	}
	return k.cfg.Now().UnixNano()
}

// formatError turns an envelope format error into a [*FormatError].
func formatError(err error) error {
	var fe *envelope.FormatError
	if errors.As(err, &fe) {
		return &FormatError{Reason: fe.Reason}
	}
	return &FormatError{Reason: err.Error()}
}

// openError maps an envelope open failure to the keyring's errors; an I/O
// error of a stream passes through.
func openError(err error) error {
	var fe *envelope.FormatError
	switch {
	case errors.Is(err, envelope.ErrAuth):
		return ErrDecrypt
	case errors.As(err, &fe):
		return &FormatError{Reason: fe.Reason}
	}
	return err
}

// validate checks the arguments common to every data call. n is the
// payload length (negative for a ciphertext shorter than the overhead,
// which the format parser reports).
func validate(ctx context.Context, tenant, scope string, n int, aad []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("byok: %w", err)
	}
	if err := checkID("tenant", tenant); err != nil {
		return err
	}
	if err := checkID("scope", scope); err != nil {
		return err
	}
	return checkSizes(n, aad)
}

// validateData is validate without the ids, which a [ScopeHandle] checked
// once.
func validateData(ctx context.Context, n int, aad []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("byok: %w", err)
	}
	return checkSizes(n, aad)
}

func checkSizes(n int, aad []byte) error {
	if n > MaxPlaintext {
		return &InputError{Arg: "plaintext", Reason: fmt.Sprintf("is %d bytes, the limit is %d; use EncryptStream for large payloads", n, MaxPlaintext)}
	}
	if len(aad) > MaxAAD {
		return &InputError{Arg: "aad", Reason: fmt.Sprintf("is %d bytes, the limit is %d", len(aad), MaxAAD)}
	}
	return nil
}
