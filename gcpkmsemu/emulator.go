// Package gcpkmsemu is a local Google Cloud KMS that the official Go client
// (cloud.google.com/go/kms/apiv1) uses unchanged over gRPC.
//
// [Start] serves the generated KeyManagementService and IAMPolicy gRPC
// servers over TLS with a CA made at start, and an HTTPS OAuth token
// endpoint (the token_uri of the key files it writes). Callers authenticate
// as Google service accounts: the client signs a JWT with the key file's
// private key, and the emulator verifies it against the account's public
// key (see docs/gcpkmsemu.md, "Authentication"). A client needs only
// documented options:
//
//	emu, _ := gcpkmsemu.Start(gcpkmsemu.Options{})
//	defer emu.Close()
//	email, _ := emu.CreateServiceAccount("platform", "byok")
//	keyFile, _ := emu.CreateServiceAccountKey(email)
//	client, _ := kms.NewKeyManagementClient(ctx,
//		option.WithEndpoint(emu.Addr()),
//		option.WithGRPCDialOption(grpc.WithTransportCredentials(emu.TransportCredentials())),
//		option.WithAuthCredentialsJSON(option.ServiceAccount, keyFile))
//
// ([Emulator.ClientOptions] returns those three.) Projects, key rings,
// keys, service accounts and IAM bindings are made through the Go control
// methods, the API itself, a YAML seed ([ParseSeed]) or the HTTPS control
// API (controlhttp.go). Faults and call counters are in control.go;
// workload identity federation (STS, generateAccessToken) in wif.go. Key
// lifecycle (rotation, scheduled destruction) runs on the emulator's
// clock, which tests move with [Emulator.Advance].
package gcpkmsemu

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
	"sync"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/openbyok/byok/internal/emuca"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Options configures [Start]. The zero value serves on loopback ports
// chosen by the system, with the wall clock.
type Options struct {
	// Addr is the gRPC (TLS) listen address; empty means "127.0.0.1:0".
	Addr string
	// TokenAddr is the listen address of the HTTPS OAuth token endpoint;
	// empty means "127.0.0.1:0".
	TokenAddr string
	// Now is the wall clock: token validation uses it, and the key clock
	// is Now plus what [Emulator.Advance] added. Nil means time.Now.
	Now func() time.Time
	// TokenLifetime is the lifetime of access tokens the token endpoint
	// issues; zero means one hour.
	TokenLifetime time.Duration
	// Logger receives one line per call; nil discards them. Nothing secret
	// is logged.
	Logger *slog.Logger
	// Seed, when not nil, is applied before the emulator serves; a seed
	// that fails stops the start.
	Seed *Seed
}

// Emulator is a running Cloud KMS emulator. Its methods are safe for
// concurrent use.
type Emulator struct {
	opts Options
	now  func() time.Time
	log  *slog.Logger
	ca   *emuca.Authority

	mu       sync.Mutex // guards everything below
	offset   time.Duration
	projects map[string]*project
	rings    map[string]*keyRing
	keys     map[string]*cryptoKey
	accounts map[string]*serviceAccount
	tokens   map[string]issuedToken
	jwtCache map[string]verifiedJWT
	wif      map[string]*wifProvider // by audience
	faults   []*faultEntry
	calls    map[Call]int
	conns    map[string]net.Conn

	grpcLn, tokenLn net.Listener
	grpcSrv         *grpc.Server
	httpSrv         *http.Server
	client          *http.Client
	closeOnce       sync.Once
}

// Start creates the emulator, applies opts.Seed and starts serving. Call
// [Emulator.Close] to stop it.
func Start(opts Options) (*Emulator, error) {
	e := &Emulator{
		opts: opts, now: opts.Now, log: opts.Logger,
		projects: map[string]*project{}, rings: map[string]*keyRing{}, keys: map[string]*cryptoKey{},
		accounts: map[string]*serviceAccount{}, tokens: map[string]issuedToken{}, jwtCache: map[string]verifiedJWT{},
		calls: map[Call]int{}, conns: map[string]net.Conn{},
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if e.opts.TokenLifetime <= 0 {
		e.opts.TokenLifetime = time.Hour
	}
	var err error
	if e.ca, err = emuca.New("gcpkmsemu", e.now()); err != nil {
		return nil, err
	}
	leaf, err := e.ca.Leaf(CertificateNames, e.now())
	if err != nil {
		return nil, err
	}
	if e.grpcLn, err = net.Listen("tcp", orDefault(opts.Addr, "127.0.0.1:0")); err != nil {
		return nil, fmt.Errorf("gcpkmsemu: listen: %w", err)
	}
	if e.tokenLn, err = net.Listen("tcp", orDefault(opts.TokenAddr, "127.0.0.1:0")); err != nil {
		e.grpcLn.Close()
		return nil, fmt.Errorf("gcpkmsemu: listen for the token endpoint: %w", err)
	}
	if opts.Seed != nil {
		if err := e.ApplySeed(*opts.Seed); err != nil {
			e.grpcLn.Close()
			e.tokenLn.Close()
			return nil, fmt.Errorf("gcpkmsemu: the seed was not applied, nothing started: %w", err)
		}
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}
	e.grpcSrv = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConf)),
		grpc.ChainUnaryInterceptor(e.observe, e.authenticate),
	)
	kmspb.RegisterKeyManagementServiceServer(e.grpcSrv, &kmsServer{e: e})
	iampb.RegisterIAMPolicyServer(e.grpcSrv, &iamServer{e: e})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", e.serveToken)
	mux.HandleFunc("POST /v1/token", e.serveSTS)
	mux.HandleFunc("POST /v1/projects/{project}/serviceAccounts/{account}", e.serveGenerateAccessToken)
	e.controlRoutes(mux)
	e.httpSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	go e.grpcSrv.Serve(trackingListener{Listener: e.grpcLn, e: e})
	go e.httpSrv.Serve(tls.NewListener(e.tokenLn, tlsConf.Clone()))
	e.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: e.CAPool(), MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}}
	e.log.Info("gcpkmsemu started", "grpc", e.Addr(), "token_uri", e.TokenURI())
	return e, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Close stops serving and closes every connection. It is safe to call
// more than once.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() {
		e.grpcSrv.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.httpSrv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.httpSrv.Close()
		}
		e.client.CloseIdleConnections()
	})
	return nil
}

// Addr returns the gRPC address (host:port), the value for
// option.WithEndpoint.
func (e *Emulator) Addr() string { return e.grpcLn.Addr().String() }

// TokenURI returns the OAuth token endpoint, the token_uri of the key
// files the emulator writes.
func (e *Emulator) TokenURI() string { return "https://" + e.tokenLn.Addr().String() + "/token" }

// CACertPEM returns the emulator's CA certificate in PEM.
func (e *Emulator) CACertPEM() []byte { return append([]byte(nil), e.ca.PEM...) }

// CAPool returns a pool holding the emulator's CA.
func (e *Emulator) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(e.ca.Cert)
	return p
}

// TransportCredentials returns gRPC TLS credentials that trust the
// emulator's CA, for option.WithGRPCDialOption(grpc.WithTransportCredentials(…)).
func (e *Emulator) TransportCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{RootCAs: e.CAPool(), MinVersion: tls.VersionTLS12})
}

// HTTPClient returns an HTTP client that trusts the emulator's CA, for
// the auth library's token exchange at the key file's token_uri
// (credentials.DetectOptions.Client).
func (e *Emulator) HTTPClient() *http.Client { return e.client }

// ClientOptions returns the documented client options that point the
// official client at the emulator and sign in with the service account key
// file keyFile (JSON): option.WithEndpoint, option.WithGRPCDialOption with
// TLS trusting the emulator's CA, and option.WithAuthCredentialsJSON.
func (e *Emulator) ClientOptions(keyFile []byte) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(e.Addr()),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(e.TransportCredentials())),
		option.WithAuthCredentialsJSON(option.ServiceAccount, keyFile),
	}
}

// Now returns the emulator's key clock: Options.Now plus what Advance and
// SetTime added.
func (e *Emulator) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.keyNow()
}

// keyNow is the key clock; e.mu is held.
func (e *Emulator) keyNow() time.Time { return e.now().Add(e.offset) }

// Advance moves the key clock forward by d: due rotations and scheduled
// destructions happen at the next call that reads the key. Token
// validation stays on Options.Now, so clients' tokens stay valid.
func (e *Emulator) Advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offset += d
}

// SetTime sets the key clock to t (see [Emulator.Advance]).
func (e *Emulator) SetTime(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offset = t.Sub(e.now())
}

// trackingListener records the emulator's connections by remote address,
// so a fault can reset the connection a call came on.
type trackingListener struct {
	net.Listener
	e *Emulator
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, e: l.e}
	l.e.mu.Lock()
	l.e.conns[c.RemoteAddr().String()] = c
	l.e.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	e *Emulator
}

func (c *trackedConn) Close() error {
	c.e.mu.Lock()
	delete(c.e.conns, c.RemoteAddr().String())
	c.e.mu.Unlock()
	return c.Conn.Close()
}
