// Package awsemu is a local AWS KMS and STS that the official AWS SDK for
// Go v2 (service/kms, service/sts, credentials/stscreds) uses unchanged.
//
// The KMS data plane is github.com/nsmithuk/local-kms, run in-process on a
// LevelDB in a temporary (or given) directory. awsemu puts in front of it
// what local-kms lacks: an HTTPS listener with its own CA that answers as
// kms.<region>.amazonaws.com and sts[.<region>].amazonaws.com; SigV4
// verification of every request against access keys mapped to IAM users
// (and temporary credentials issued by AssumeRole); the key policy's
// evaluation for the caller, with AccessDeniedException answered as AWS
// words it; STS AssumeRole with the role's trust policy (principal and
// sts:ExternalId) and GetCallerIdentity; on-demand rotation; faults, holds
// and a CloudTrail-like call log for tests.
//
//	emu, _ := awsemu.Start(awsemu.Options{})
//	defer emu.Close()
//	key, _ := emu.AddUser("arn:aws:iam::999988887777:user/byok", awsemu.AccessKey{})
//	k, _ := emu.CreateKey(awsemu.KeySpec{Account: "111122223333", Region: "eu-west-1", Policy: doc})
//	client := kms.New(kms.Options{Region: "eu-west-1", HTTPClient: emu.HTTPClient(),
//		Credentials: credentials.NewStaticCredentialsProvider(key.ID, key.Secret, "")})
//
// [Emulator.HTTPClient] dials every host to the emulator and trusts its CA,
// so endpoints stay the real ones; [Emulator.Endpoint] is the base URL to
// use instead with an endpoint override. docs/awsemu.md lists what is
// emulated and what is not.
package awsemu

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/openbyok/byok/internal/emuca"
	"github.com/sirupsen/logrus"
)

// Options configures [Start]. The zero value serves on a loopback port
// chosen by the system, with a temporary key store.
type Options struct {
	// Addr is the HTTPS listen address; empty means "127.0.0.1:0".
	Addr string
	// DataDir holds local-kms's key store (LevelDB); empty means a
	// temporary directory that Close removes. IAM users, roles and
	// sessions live in memory only.
	DataDir string
	// Now is the clock of signatures and sessions; nil means time.Now.
	// Key rotation and deletion dates use local-kms's own clock.
	Now func() time.Time
	// Regions are the regions whose endpoints the certificate names, in
	// addition to [DefaultRegions].
	Regions []string
	// Logger receives one line per request; nil discards them. Nothing
	// secret is logged.
	Logger *slog.Logger
	// Seed, when not nil, is applied before the emulator serves.
	Seed *Seed
}

// DefaultRegions are the commercial regions whose endpoints the
// emulator's certificate names.
var DefaultRegions = []string{
	"us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1",
	"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1",
	"eu-south-1", "eu-south-2", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
	"ap-southeast-3", "ap-southeast-4", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-east-1", "sa-east-1", "me-south-1", "me-central-1", "af-south-1", "il-central-1", "mx-central-1",
}

// Emulator is a running awsemu. Its methods are safe for concurrent use.
type Emulator struct {
	opts    Options
	now     func() time.Time
	log     *slog.Logger
	kmsLog  *logrus.Logger
	ca      *emuca.Authority
	db      *data.Database
	dataDir string
	tempDir bool

	// keyMu serialises changes of keys (control operations, rotation)
	// against the crypto operations, which hold it for reading.
	keyMu sync.RWMutex

	mu      sync.Mutex
	users   map[string]*identity   // by user ARN
	creds   map[string]*credential // by access key id
	roles   map[string]*role       // by role ARN
	faults  []*Fault
	latency time.Duration
	holds   map[string]chan struct{}
	calls   []Call
	counts  map[string]int
	waiting chan string

	ln        net.Listener
	srv       *http.Server
	client    *http.Client
	closeOnce sync.Once
	closeErr  error
}

// localKMSOnce sets local-kms's process-wide settings once. awsemu always
// hands local-kms full key ARNs, so its default account and region only
// appear in the messages of requests awsemu does not forward.
var localKMSOnce sync.Once

// Start creates the emulator and starts serving. Call [Emulator.Close] to
// stop it.
func Start(opts Options) (*Emulator, error) {
	localKMSOnce.Do(func() {
		config.AWSAccountId = "000000000000"
		config.AWSRegion = "us-east-1"
	})
	e := &Emulator{opts: opts, now: opts.Now, log: opts.Logger,
		users: map[string]*identity{}, creds: map[string]*credential{}, roles: map[string]*role{},
		holds: map[string]chan struct{}{}, counts: map[string]int{}, waiting: make(chan string, 64)}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.kmsLog = logrus.New()
	e.kmsLog.SetOutput(io.Discard)
	e.dataDir = opts.DataDir
	if e.dataDir == "" {
		dir, err := os.MkdirTemp("", "awsemu-")
		if err != nil {
			return nil, fmt.Errorf("awsemu: key store directory: %w", err)
		}
		e.dataDir, e.tempDir = dir, true
	}
	var err error
	if e.db, err = openDB(e.dataDir); err != nil {
		e.removeTemp()
		return nil, err
	}
	if e.ca, err = emuca.New("awsemu", e.now()); err != nil {
		e.closeStore()
		return nil, err
	}
	if opts.Seed != nil {
		if err := e.ApplySeed(*opts.Seed); err != nil {
			e.closeStore()
			return nil, fmt.Errorf("awsemu: the seed was not applied, nothing started: %w", err)
		}
	}
	leaf, err := e.ca.Leaf(certificateNames(append(DefaultRegions, opts.Regions...)), e.now())
	if err != nil {
		e.closeStore()
		return nil, err
	}
	if e.ln, err = net.Listen("tcp", orDefault(opts.Addr, "127.0.0.1:0")); err != nil {
		e.closeStore()
		return nil, fmt.Errorf("awsemu: listen: %w", err)
	}
	e.srv = &http.Server{
		Handler:           http.HandlerFunc(e.route),
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only: injected connection resets hijack the connection.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	go e.srv.Serve(tls.NewListener(e.ln, &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}))
	e.client = e.newHTTPClient()
	e.log.Info("awsemu started", "https", e.Addr())
	return e, nil
}

// openDB opens local-kms's store, which panics on failure.
func openDB(dir string) (db *data.Database, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("awsemu: opening the key store in %s: %v", dir, r)
		}
	}()
	return data.NewDatabase(dir), nil
}

func certificateNames(regions []string) []string {
	names := []string{"sts.amazonaws.com", "kms.amazonaws.com", "localhost", "127.0.0.1", "::1"}
	for _, r := range regions {
		names = append(names, "kms."+r+".amazonaws.com", "kms-fips."+r+".amazonaws.com", "sts."+r+".amazonaws.com")
	}
	return names
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Addr returns the HTTPS address (host:port) the emulator listens on.
func (e *Emulator) Addr() string { return e.ln.Addr().String() }

// Endpoint returns the emulator's base URL, https://localhost:PORT, for
// clients configured with an endpoint override (BaseEndpoint) and a
// transport that trusts [Emulator.CAPool].
func (e *Emulator) Endpoint() string {
	_, port, _ := net.SplitHostPort(e.Addr())
	return "https://localhost:" + port
}

// CACertPEM returns the emulator's CA certificate in PEM.
func (e *Emulator) CACertPEM() []byte { return bytes.Clone(e.ca.PEM) }

// CAPool returns a pool holding the emulator's CA.
func (e *Emulator) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(e.ca.Cert)
	return p
}

// HTTPClient returns a client that trusts the emulator's CA and dials
// every host name to the emulator, so the SDK's real endpoints
// (https://kms.eu-west-1.amazonaws.com, https://sts.amazonaws.com) reach
// it. Pass it as the HTTPClient of the kms and sts clients.
func (e *Emulator) HTTPClient() *http.Client { return e.client }

func (e *Emulator) newHTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	addr := e.Addr()
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: e.CAPool(), MinVersion: tls.VersionTLS12},
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

// Close stops serving (requests in flight fail), closes the key store and removes it if it was
// temporary.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() {
		// Close, not Shutdown: Shutdown waits up to 5 s for connections
		// that have not sent a request yet, and a test emulator has
		// nothing to drain.
		err := e.srv.Close()
		e.client.CloseIdleConnections()
		e.closeStore()
		e.closeErr = err
	})
	return e.closeErr
}

func (e *Emulator) closeStore() {
	e.keyMu.Lock()
	e.db.Close()
	e.keyMu.Unlock()
	e.removeTemp()
}

func (e *Emulator) removeTemp() {
	if e.tempDir {
		os.RemoveAll(e.dataDir)
	}
}

// maxBody bounds a request body.
const maxBody = 1 << 20

// route dispatches a request: KMS (JSON protocol, X-Amz-Target
// TrentService.*) or STS (Query protocol).
func (e *Emulator) route(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	start := time.Now()
	if t := r.Header.Get("X-Amz-Target"); strings.HasPrefix(t, "TrentService.") {
		e.serveKMS(w, r, strings.TrimPrefix(t, "TrentService."), body)
	} else {
		e.serveSTS(w, r, body)
	}
	e.log.Debug("awsemu request", "host", r.Host, "target", r.Header.Get("X-Amz-Target"), "duration", time.Since(start))
}
