// Package kvemu is a local Azure Key Vault and Entra ID that the official
// Azure SDK for Go (azkeys, azidentity, azcore) uses unchanged.
//
// [Start] runs the emulator on loopback: an HTTPS listener that answers as
// every Key Vault host (*.vault.azure.net, *.managedhsm.azure.net,
// *.privatelink.vaultcore.azure.net, …) and as login.microsoftonline.com,
// with a certificate from a CA generated at start, and a plain-HTTP
// listener for the managed identity endpoints (IMDS and App Service).
// [Emulator.HTTPClient] returns a client that trusts the CA and dials every
// name to the emulator; pass it as ClientOptions.Transport of both the
// credential and the azkeys client, and key URLs stay real:
//
//	emu, _ := kvemu.Start(kvemu.Options{})
//	defer emu.Close()
//	opts := azcore.ClientOptions{Transport: emu.HTTPClient()}
//	cred, _ := azidentity.NewClientSecretCredential(tenant, clientID, secret,
//		&azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
//	keys, _ := azkeys.NewClient("https://contoso.vault.azure.net", cred,
//		&azkeys.ClientOptions{ClientOptions: opts})
//
// No SDK safety option needs to be switched off. Tenants, apps, identities,
// vaults, keys and role assignments are made through the control methods,
// the HTTP control API (https://localhost:PORT/control/…) or a YAML seed
// ([LoadSeed]). docs/kvemu.md lists what is emulated and what differs from
// Azure.
package kvemu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/openbyok/byok/internal/emuca"
	"github.com/openbyok/byok/kvemu/internal/entra"
	"github.com/openbyok/byok/kvemu/internal/vault"
)

// LoginHost is the Entra authority host the emulator answers as.
const LoginHost = "login.microsoftonline.com"

// Options configures [Start]. The zero value runs in memory on loopback
// ports chosen by the system.
type Options struct {
	// Addr is the HTTPS listen address; empty means "127.0.0.1:0".
	Addr string
	// ManagedIdentityAddr is the plain-HTTP listen address of the managed
	// identity endpoints (IMDS, App Service); empty means "127.0.0.1:0".
	ManagedIdentityAddr string
	// StateDir, when set, holds the CA and the state: loaded at start if
	// present, saved by [Emulator.Save] and [Emulator.Close].
	StateDir string
	// Now is the clock of tokens, secrets, certificates and keys; nil means
	// time.Now. Tests advance a fake clock to expire things.
	Now func() time.Time
	// TokenLifetime is the lifetime of issued access tokens; zero means one
	// hour.
	TokenLifetime time.Duration
	// Logger receives one line per request and lifecycle events; nil
	// discards them. Nothing secret is logged.
	Logger *slog.Logger
	// Seed, when not nil, is applied before the emulator serves and before
	// it writes ca.pem to StateDir, unless a saved state was restored (see
	// [Emulator.Restored]): a client that waits for the CA file or the
	// port meets the seeded emulator.
	Seed *Seed
}

// Emulator is a running kvemu. Its methods are safe for concurrent use.
type Emulator struct {
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	ca     *emuca.Authority
	entra  *entra.Service
	vaults *vault.Service

	tlsLn, miLn net.Listener
	srv, miSrv  *http.Server
	client      *http.Client
	control     http.Handler

	restored  bool // state was loaded from StateDir
	saveMu    sync.Mutex
	closeOnce sync.Once
	closeErr  error
}

// Start creates the emulator, loads its state from opts.StateDir if any,
// and starts serving. Call [Emulator.Close] to stop it.
func Start(opts Options) (*Emulator, error) {
	e := &Emulator{opts: opts, now: opts.Now, log: opts.Logger}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.StateDir != "" {
		if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("kvemu: state directory: %w", err)
		}
	}
	var err error
	var newCA bool
	if e.ca, newCA, err = emuca.LoadOrCreate("kvemu", opts.StateDir, e.now()); err != nil {
		return nil, err
	}
	if e.entra, err = entra.New(entra.Options{Now: e.now, TokenLifetime: opts.TokenLifetime}); err != nil {
		return nil, err
	}
	e.vaults = vault.New(vault.Options{Verifier: verifier{e.entra}, Now: e.now, LoginURL: "https://" + LoginHost})
	if err := e.load(); err != nil {
		return nil, err
	}
	if opts.Seed != nil && !e.restored {
		if err := e.ApplySeed(*opts.Seed); err != nil {
			return nil, fmt.Errorf("kvemu: the seed was not applied, nothing started: %w", err)
		}
	}
	leaf, err := e.ca.Leaf(CertificateNames, e.now())
	if err != nil {
		return nil, err
	}
	if e.tlsLn, err = net.Listen("tcp", orDefault(opts.Addr, "127.0.0.1:0")); err != nil {
		return nil, fmt.Errorf("kvemu: listen: %w", err)
	}
	if e.miLn, err = net.Listen("tcp", orDefault(opts.ManagedIdentityAddr, "127.0.0.1:0")); err != nil {
		e.tlsLn.Close()
		return nil, fmt.Errorf("kvemu: listen for managed identity: %w", err)
	}
	e.control = e.controlHandler()
	e.srv = &http.Server{
		Handler:           e.logRequests(http.HandlerFunc(e.route)),
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only: injected connection resets hijack the connection.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	e.miSrv = &http.Server{
		Handler:           e.logRequests(http.HandlerFunc(e.entra.ServeManagedIdentity)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	tlsLn := tls.NewListener(e.tlsLn, &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12})
	go e.srv.Serve(tlsLn)
	go e.miSrv.Serve(e.miLn)
	e.client = e.newHTTPClient()
	if newCA && opts.StateDir != "" {
		if err := e.ca.Store(opts.StateDir); err != nil {
			e.Close()
			return nil, err
		}
	}
	e.log.Info("kvemu started", "https", e.Addr(), "managed_identity", e.ManagedIdentityAddr())
	return e, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// verifier adapts entra's token verification to the vault's contract.
type verifier struct{ s *entra.Service }

func (v verifier) VerifyAccessToken(raw string) (vault.Claims, error) {
	c, err := v.s.VerifyAccessToken(raw)
	return vault.Claims(c), err
}

// Addr returns the HTTPS address (host:port) the emulator listens on.
func (e *Emulator) Addr() string { return e.tlsLn.Addr().String() }

// ManagedIdentityAddr returns the plain-HTTP address of the managed
// identity endpoints.
func (e *Emulator) ManagedIdentityAddr() string { return e.miLn.Addr().String() }

// CACertPEM returns the emulator's CA certificate in PEM, for clients that
// do not use [Emulator.HTTPClient] (SSL_CERT_FILE).
func (e *Emulator) CACertPEM() []byte { return append([]byte(nil), e.ca.PEM...) }

// CAPool returns a pool holding the emulator's CA.
func (e *Emulator) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(e.ca.Cert)
	return p
}

// HTTPClient returns a client that trusts the emulator's CA and dials
// every HTTPS name (port 443) to the emulator's HTTPS listener and every
// plain-HTTP name (port 80, e.g. IMDS at 169.254.169.254) to its managed
// identity listener; other addresses are dialled as given. Pass it as
// ClientOptions.Transport of credentials and clients. Its transport is
// shared and safe for concurrent use.
func (e *Emulator) HTTPClient() *http.Client { return e.client }

func (e *Emulator) newHTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tlsAddr, miAddr := e.Addr(), e.ManagedIdentityAddr()
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			switch _, port, _ := net.SplitHostPort(addr); port {
			case "443":
				addr = tlsAddr
			case "80":
				addr = miAddr
			}
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: e.CAPool(), MinVersion: tls.VersionTLS12},
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

// ManagedIdentityEnv returns the App Service managed identity settings:
// the value for IDENTITY_ENDPOINT and for IDENTITY_HEADER.
func (e *Emulator) ManagedIdentityEnv() (endpoint, header string) {
	return "http://" + e.ManagedIdentityAddr() + entra.AppServicePath, e.entra.ManagedIdentityHeader()
}

// vaultSuffixes are the DNS suffixes routed to the Key Vault data plane.
var vaultSuffixes = []string{
	".vault.azure.net", ".managedhsm.azure.net", ".privatelink.vaultcore.azure.net",
	".privatelink.managedhsm.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net",
}

// route dispatches a request on the HTTPS listener by its Host header.
func (e *Emulator) route(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for _, s := range vaultSuffixes {
		if strings.HasSuffix(host, s) {
			e.vaults.ServeHTTP(w, r)
			return
		}
	}
	switch host {
	case LoginHost, "login.windows.net", "login.microsoft.com":
		e.entra.ServeHTTP(w, r)
	case "localhost", "127.0.0.1", "::1", "[::1]":
		// Loopback names serve the control API and, for clients that set
		// their authority host to https://localhost:PORT, Entra.
		if strings.HasPrefix(r.URL.Path, controlPrefix) {
			e.control.ServeHTTP(w, r)
			return
		}
		e.entra.ServeHTTP(w, r)
	default:
		writeJSON(w, http.StatusMisdirectedRequest, errorBody("UnknownHost",
			fmt.Sprintf("kvemu does not serve host %q; it serves *.vault.azure.net and the other Key Vault suffixes, %s, and the control API on localhost", truncate(host), LoginHost)))
	}
}

// logRequests logs method, host, path and status of every request.
func (e *Emulator) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		h.ServeHTTP(sw, r)
		e.log.Debug("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (hijacking for
// injected connection resets, flushing).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Close stops the listeners and, with a state directory, saves the state.
// Calling it again returns the first result.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() {
		// Idle client connections first, so the servers see them go.
		e.client.CloseIdleConnections()
		var err error
		for _, srv := range []*http.Server{e.srv, e.miSrv} {
			err = errors.Join(err, shutdown(srv))
		}
		if e.opts.StateDir != "" {
			err = errors.Join(err, e.Save())
		}
		e.closeErr = err
	})
	return e.closeErr
}

// shutdown stops srv, waiting a moment for requests in flight, then closes
// what is left (connections other clients keep open without a request).
func shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return srv.Close()
}

// State file names inside Options.StateDir.
const (
	entraStateFile = "entra.json"
	vaultStateFile = "vaults.json"
)

// Save writes the state (directory, vaults and keys) to the state
// directory. It is an error without one.
func (e *Emulator) Save() error {
	if e.opts.StateDir == "" {
		return errors.New("kvemu: Save needs Options.StateDir (byok kv-emulator --state DIR)")
	}
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	es, err := e.entra.Snapshot()
	if err != nil {
		return err
	}
	vs, err := e.vaults.Snapshot()
	if err != nil {
		return fmt.Errorf("kvemu: snapshot vaults: %w", err)
	}
	if err := errors.Join(
		emuca.WriteFileAtomic(filepath.Join(e.opts.StateDir, entraStateFile), es),
		emuca.WriteFileAtomic(filepath.Join(e.opts.StateDir, vaultStateFile), vs)); err != nil {
		return fmt.Errorf("kvemu: %w", err)
	}
	return nil
}

// load restores the state from the state directory, if there is any.
func (e *Emulator) load() error {
	if e.opts.StateDir == "" {
		return nil
	}
	for _, f := range []struct {
		name    string
		restore func([]byte) error
	}{{entraStateFile, e.entra.Restore}, {vaultStateFile, e.vaults.Restore}} {
		p := filepath.Join(e.opts.StateDir, f.name)
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("kvemu: read state: %w", err)
		}
		if err := f.restore(data); err != nil {
			return fmt.Errorf("kvemu: state file %s is unusable: %w; remove it to start empty", p, err)
		}
		e.restored = true
	}
	return nil
}

// Restored reports whether Start loaded a saved state from the state
// directory (so a seed need not be applied again).
func (e *Emulator) Restored() bool { return e.restored }
