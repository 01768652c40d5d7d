package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel/trace"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/console"
	"github.com/openbyok/byok/store/postgres"
	"github.com/openbyok/byok/store/sqlite"
)

// metadataStore is everything byok serve keeps in its database; the SQLite
// and the PostgreSQL stores both implement it.
type metadataStore interface {
	lifecycle.Store
	server.Store
	audit.Store
}

// app is a running byok service: the store, the platform key, the audit
// log, the lifecycle (with its keyring) and the HTTP handler over them.
type app struct {
	db      metadataStore
	pg      *postgres.DB // the same store when it is PostgreSQL: replicas
	prk     platformKey
	audit   *audit.Log
	usage   *audit.Counter
	lc      *lifecycle.Service
	handler http.Handler
	logger  *slog.Logger
}

// appOptions are what serve and demo choose differently.
type appOptions struct {
	// azureTransport, if set, carries every call to Azure (the demo
	// passes the emulator's client).
	azureTransport policy.Transporter
	// awsHTTPClient, if set, carries every call to AWS (the demo and
	// tests pass awsemu's client).
	awsHTTPClient *http.Client
	// getenv reads the environment (platform key variable, Azure secret).
	getenv func(string) string
	// replicaID names this process in health events ("" means
	// "replica-1").
	replicaID string
	// tracer, if set, traces requests, vault calls and the keyring's
	// cold paths (see setupTracing).
	tracer trace.TracerProvider
}

// replicaHooks returns, when replicas share a PostgreSQL store, the hooks
// that tell the others to drop what they cache of a tenant: on every
// revocation or restoration this replica sees, and on every change of a
// tenant's keys or scopes. With SQLite (one replica) both are nil.
func (a *app) replicaHooks(replica string) (func(byok.Event), func(string)) {
	if a.pg == nil {
		return nil, nil
	}
	notify := func(tenant string) {
		// Off the caller's path: the keyring reports events under a lock.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.pg.Notify(ctx, tenant); err != nil {
				a.logger.Warn("telling the other replicas failed; they will see the change at their next check", "tenant", tenant, "error", err)
			}
		}()
	}
	event := func(e byok.Event) {
		if e.Type == byok.EventRevoked || e.Type == byok.EventRestored {
			notify(e.Tenant)
		}
	}
	return event, notify
}

// openApp builds the service that cfg describes. The platform root key
// and the platform's Azure identities are checked before the store is
// opened: a configuration that cannot serve writes nothing.
func openApp(ctx context.Context, cfg config.Config, opts appOptions, logger *slog.Logger) (*app, error) {
	a := &app{logger: logger}
	var err error
	if a.prk, err = openPlatformKey(ctx, cfg.PlatformKey, opts, logger); err != nil {
		return nil, err
	}
	connector, err := azureConnector(ctx, cfg.Azure, opts, logger)
	if err != nil {
		return nil, err
	}
	connectors := []lifecycle.Connector{connector}
	if cfg.AWS != nil {
		ac, err := awsConnector(ctx, *cfg.AWS, opts, logger)
		if err != nil {
			return nil, err
		}
		connectors = append(connectors, ac)
	}
	if cfg.GCP != nil {
		gc, err := gcpConnector(*cfg.GCP, logger)
		if err != nil {
			return nil, err
		}
		connectors = append(connectors, gc)
	}
	if cfg.Store.Postgres != "" {
		if a.pg, err = postgres.Open(ctx, cfg.Store.Postgres); err != nil {
			return nil, err
		}
		a.db = a.pg
	} else if a.db, err = sqlite.Open(ctx, cfg.Store.SQLite); err != nil {
		return nil, err
	}

	a.audit = audit.New(a.db, nil)
	a.usage = audit.NewCounter(a.audit)
	metrics := server.NewMetrics(nil)
	metrics.TraceWith(opts.tracer)
	keyringEvent, changed := a.replicaHooks(opts.replicaID)
	a.lc, err = lifecycle.New(lifecycle.Config{
		ReplicaID:     opts.replicaID,
		JobLease:      cfg.Jobs.Lease,
		BatchSize:     cfg.Jobs.BatchSize,
		Changed:       changed,
		Store:         a.db,
		PlatformKMS:   metrics.InstrumentProvider("platform", a.prk.kms),
		PlatformKeyID: a.prk.id,
		Connectors:    connectors,
		Instrument:    metrics.InstrumentProvider,
		Audit:         a.audit,
		Logger:        logger,
		Keyring: byok.Config{
			CheckInterval:        cfg.Keyring.CheckInterval,
			MaxStaleness:         cfg.Keyring.MaxStaleness,
			DEKMaxMessages:       cfg.Keyring.DEKMaxMessages,
			DEKMaxAge:            cfg.Keyring.DEKMaxAge,
			MaxTenantKeys:        cfg.Keyring.MaxTenantKeys,
			MaxDEKs:              cfg.Keyring.MaxDEKs,
			TenantKeyIdleTimeout: cfg.Keyring.TenantKeyIdleTimeout,
			Logger:               logger,
			OnEvent:              keyringEvent,
			Trace:                metrics.KeyringTrace(),
		},
	})
	if err != nil {
		a.db.Close()
		return nil, err
	}
	api, err := server.New(server.Config{
		Lifecycle: a.lc, Store: a.db, Audit: a.audit,
		PlatformKMS: a.prk.kms, PlatformKeyID: a.prk.id,
		Metrics: metrics, Logger: logger, Usage: a.usage,
	})
	if err != nil {
		a.db.Close()
		return nil, err
	}
	sessions, oidc, err := consoleSignIn(cfg.Console, a.db, opts.getenv, opts.azureTransport)
	if err != nil {
		a.db.Close()
		return nil, err
	}
	ui, err := console.New(console.Config{
		Lifecycle: a.lc, Tokens: a.db, Audit: a.audit, PlatformAppID: cfg.Azure.ClientID, Logger: logger,
		SecureCookies: cfg.Console.SecureCookies,
		SessionTTL:    cfg.Console.SessionLifetime, SessionIdleTimeout: cfg.Console.SessionIdleTimeout,
		Sessions: sessions, OIDC: oidc,
	})
	if err != nil {
		a.db.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", ui)
	mux.Handle("/{$}", http.RedirectHandler("/console/", http.StatusSeeOther))
	mux.Handle("/", api)
	a.handler = mux
	return a, nil
}

// run serves on ln and runs the lifecycle's scheduler, monitor and jobs
// until ctx is done, then shuts down gracefully.
func (a *app) run(ctx context.Context, ln net.Listener, tlsCert, tlsKey string) error {
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 3)
	go func() {
		var err error
		if tlsCert != "" {
			err = srv.ServeTLS(ln, tlsCert, tlsKey)
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	background, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go func() { errc <- a.lc.Run(background) }()
	if a.pg != nil {
		// Another replica changed a tenant or saw its key revoked: drop
		// what this one caches, so the next call checks the key again.
		go func() {
			err := a.pg.Listen(background, a.lc.Keyring().Forget)
			if err != nil && background.Err() == nil {
				errc <- fmt.Errorf("listening for other replicas: %w", err)
			}
		}()
	}
	// The usage counter stops only after the server has shut down, so the
	// counts of requests that finish during the shutdown are flushed too.
	usageCtx, stopUsage := context.WithCancel(context.WithoutCancel(ctx))
	usageDone := make(chan struct{})
	go func() { a.usage.Run(usageCtx); close(usageDone) }()
	defer func() { stopUsage(); <-usageDone }()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
			runErr = err
		}
	}
	stopBackground()
	shutdown, cancelShutdown := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelShutdown()
	if err := srv.Shutdown(shutdown); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func (a *app) close() error { return a.db.Close() }

// newLogger returns the logger the configuration asks for, on w.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(strings.ToLower(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
