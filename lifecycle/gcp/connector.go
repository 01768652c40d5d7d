package gcp

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/api/option"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/gcpkms"
	"github.com/openbyok/byok/lifecycle"
)

// Config is the platform's side of Google Cloud access, from byok's
// configuration (the gcp: block): the same for every tenant.
type Config struct {
	// CredentialsJSON is the platform's service account key file (or a
	// workload identity federation file); nil means Google's Application
	// Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, the
	// metadata server).
	CredentialsJSON []byte
	// ServiceAccount is the platform's service account email, which
	// customers grant on their keys; empty means the client_email of
	// CredentialsJSON.
	ServiceAccount string
	// Endpoint overrides the Cloud KMS gRPC endpoint ("host:port": a
	// regional or Private Service Connect endpoint, an emulator); empty:
	// gcpkms.DefaultEndpoint.
	Endpoint string
	// RootCAs are the CAs the endpoint's certificate must chain to; nil
	// means the system's.
	RootCAs *x509.CertPool
	// ClientOptions are added last to every client's options (tests: the
	// emulator's dial options).
	ClientOptions []option.ClientOption
	// Timeout bounds each call (gcpkms.Config.Timeout); zero: its default.
	Timeout time.Duration
	// Logger receives gcpkms's call logs; nil discards them.
	Logger *slog.Logger
}

// Connector is the [lifecycle.Connector] of Google Cloud KMS over
// kms/gcpkms. It is safe for concurrent use; create it with [New].
type Connector struct {
	cfg Config
}

var _ lifecycle.Connector = (*Connector)(nil)

// New returns the connector of cfg. It fails if cfg.CredentialsJSON is not
// a service account key file or an external_account file, if
// cfg.ServiceAccount is not an email, or if cfg.Endpoint is not host:port.
// It makes no network call.
func New(cfg Config) (*Connector, error) {
	probe := gcpkms.Config{Tenant: "probe", CredentialsJSON: cfg.CredentialsJSON, Endpoint: cfg.Endpoint, Timeout: cfg.Timeout}
	if err := probe.Validate(); err != nil {
		return nil, fmt.Errorf("gcp: the platform's Cloud KMS access: %w", err)
	}
	if cfg.ServiceAccount == "" && cfg.CredentialsJSON != nil {
		var kf struct {
			ClientEmail string `json:"client_email"`
		}
		if json.Unmarshal(cfg.CredentialsJSON, &kf) == nil {
			cfg.ServiceAccount = kf.ClientEmail
		}
	}
	return &Connector{cfg: cfg}, nil
}

// config turns settings into a gcpkms.Config, or an error wrapping
// byok.ErrInvalidInput (a *lifecycle.FieldError for a bad option) that
// says what is wrong.
func (c *Connector) config(s lifecycle.KeySettings) (gcpkms.Config, error) {
	if _, err := OptionsOf(s); err != nil {
		return gcpkms.Config{}, err
	}
	if _, err := gcpkms.ParseKeyName(s.KeyID); err != nil {
		return gcpkms.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	cfg := gcpkms.Config{KeyName: s.KeyID, Tenant: s.Tenant, CredentialsJSON: c.cfg.CredentialsJSON,
		ServiceAccount: c.cfg.ServiceAccount, Endpoint: c.cfg.Endpoint, RootCAs: c.cfg.RootCAs,
		ClientOptions: c.cfg.ClientOptions, Timeout: c.cfg.Timeout, Logger: c.cfg.Logger}
	if err := cfg.Validate(); err != nil {
		return gcpkms.Config{}, fmt.Errorf("%w: %v", byok.ErrInvalidInput, err)
	}
	return cfg, nil
}

// Provider implements [lifecycle.Connector] over gcpkms.New. It makes no
// network call and builds no client: the client (and, without a key file,
// the search for Google's default credentials) is made on first use, so
// settings that are only checked hold no connection. A client that cannot
// be built fails that call with a transient *kms.Error (the platform's
// credentials are at fault, not the customer's key), and the next call
// tries again.
func (c *Connector) Provider(ctx context.Context, s lifecycle.KeySettings) (kms.Provider, error) {
	cfg, err := c.config(s)
	if err != nil {
		return nil, err
	}
	return &lazyProvider{cfg: cfg}, nil
}

// lazyProvider is a gcpkms.Provider built on first use.
type lazyProvider struct {
	cfg gcpkms.Config
	mu  sync.Mutex
	p   *gcpkms.Provider
}

func (l *lazyProvider) get(ctx context.Context, op, keyID string) (*gcpkms.Provider, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p != nil {
		return l.p, nil
	}
	p, err := gcpkms.New(context.WithoutCancel(ctx), l.cfg)
	if err != nil {
		return nil, &kms.Error{Op: op, KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnauthenticated, Err: err}
	}
	l.p = p
	return p, nil
}

func (l *lazyProvider) Wrap(ctx context.Context, keyID string, plaintext []byte) (kms.Wrapped, error) {
	p, err := l.get(ctx, "wrap", keyID)
	if err != nil {
		return kms.Wrapped{}, err
	}
	return p.Wrap(ctx, keyID, plaintext)
}

func (l *lazyProvider) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	p, err := l.get(ctx, "unwrap", w.KeyID)
	if err != nil {
		return nil, err
	}
	return p.Unwrap(ctx, w)
}

func (l *lazyProvider) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	p, err := l.get(ctx, "describe", keyID)
	if err != nil {
		return kms.KeyInfo{}, err
	}
	return p.Describe(ctx, keyID)
}

// Test implements [lifecycle.Connector] with gcpkms.TestConfiguration.
// Settings that cannot even be turned into a configuration give a report
// with one failing line, not an error. The report's KeyID is the version
// the test reached (the primary one of a crypto key), else s.KeyID. Remedies carry the gcloud lines to
// paste, naming the platform's service account.
func (c *Connector) Test(ctx context.Context, s lifecycle.KeySettings) (lifecycle.Report, error) {
	if err := ctx.Err(); err != nil {
		return lifecycle.Report{}, err
	}
	cfg, err := c.config(s)
	if err != nil {
		return lifecycle.UnusableSettings(s, err, gcpkms.CheckKeyName, gcpkms.CheckSettings, nil), nil
	}
	gr := gcpkms.TestConfiguration(ctx, cfg)
	r := lifecycle.Report{KeyID: s.KeyID}
	for _, ch := range gr.Checks {
		r.Checks = append(r.Checks, check(ch))
	}
	if ch, ok := gr.Check(gcpkms.CheckVersion); ok && ch.Status == gcpkms.Pass {
		if v, _, _ := strings.Cut(ch.Value, " "); v != "" {
			if n, err := gcpkms.ParseKeyName(v); err == nil && n.Version != 0 {
				r.KeyID = v // the exact version tested, which the audit event names
			}
		}
	}
	return r, nil
}

// check turns a line of gcpkms's report into one of the lifecycle's.
func check(ch gcpkms.Check) lifecycle.Check {
	detail := ch.Reason
	if ch.Value != "" {
		detail = ch.Value + ": " + ch.Reason
	}
	return lifecycle.Check{Name: ch.Name, Outcome: lifecycle.Outcome(ch.Status), Detail: detail, Remedy: ch.Remedy}
}
