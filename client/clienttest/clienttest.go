// Package clienttest runs a real byok API server for the tests of API
// clients (package client, the byok CLI): server.New over the real
// lifecycle, audit log and SQLite store, with kmstest.Fake key providers
// in place of the vaults and a fake clock that the test moves.
//
// Customer key ids are those of kmstest.Fake, "fake:NAME[/vN]". The fake
// connector's Test configuration checks the id's form and does a real
// wrap/unwrap round trip on the fake, so a failure injected with
// Customer.FailKey (a role removed) fails the report.
//
// Background work (activation, jobs, health checks) runs only in
// [Server.Tick], and in one Tick before each job poll
// (GET /v1/tenants/{tenant}/key/jobs/{job}), so that a client waiting for
// a job sees it progress without any timer.
//
// [NewWithAWS] offers AWS KMS as well, with the real AWS connector
// (lifecycle/aws over kms/awskms and the AWS SDK) reaching awsemu: the
// platform signs in as the emulator's user [AWSPlatform], and customer
// keys live in account [AWSAccount], region [AWSRegion]. Its Test
// configuration calls the emulator, so a key policy or role trust policy
// put with the emulator's control methods passes or fails it as in AWS.
package clienttest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/internal/fakeclock"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/lifecycle"
	lifecycleaws "github.com/openbyok/byok/lifecycle/aws"
	"github.com/openbyok/byok/lifecycle/lifecycletest"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store/sqlite"
)

// Epoch is the fake clock's start.
var Epoch = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// CheckInterval is the keyring's check interval: move the clock past it
// and Tick to have the health monitor check every active key.
const CheckInterval = 10 * time.Second

// Server is a running API server and the handles a test needs on it.
type Server struct {
	// URL is the server's base URL.
	URL string
	// Operator is an operator token that never expires.
	Operator string
	// Customer holds the customer keys; CMK is the versionless id of one,
	// "fake:cmk".
	Customer *kmstest.Fake
	CMK      string
	// Platform holds the platform root key.
	Platform  *kmstest.Fake
	Lifecycle *lifecycle.Service
	DB        *sqlite.DB
	// AWS is the emulated AWS of a server started with [NewWithAWS]; nil
	// otherwise.
	AWS *AWS

	clock *fakeclock.Clock
}

// The AWS side of [NewWithAWS]: the platform's principal and the
// customer's account and region.
const (
	AWSPlatform = "arn:aws:iam::999988887777:user/byok-platform"
	AWSAccount  = "111122223333"
	AWSRegion   = "eu-west-1"
)

// AWS is the emulated AWS of a server that offers AWS KMS.
type AWS struct {
	// Emulator serves KMS and STS; its control methods (CreateKey,
	// PutKeyPolicy, PutRole ...) change what the customer's account
	// allows.
	Emulator *awsemu.Emulator
	// KeyARN is a customer key in [AWSAccount] and [AWSRegion] with AWS's
	// default key policy: the platform is not in it yet.
	KeyARN string
}

// New starts a server with an empty SQLite database in t.TempDir and
// closes it when t ends. BatchSize is the DEKs a job re-wraps per batch
// (0: lifecycle's default). It offers only the fake vault, as
// "azure-key-vault".
func New(t testing.TB, batchSize int) *Server {
	t.Helper()
	return start(t, batchSize, false)
}

// NewWithAWS is [New] with AWS KMS offered too, over an awsemu emulator
// that it closes when t ends. Settings must then name their provider.
func NewWithAWS(t testing.TB, batchSize int) *Server {
	t.Helper()
	return start(t, batchSize, true)
}

// startAWS starts the emulator with the platform's user and a customer
// key, and returns the AWS connector that reaches it.
func startAWS(t testing.TB) (*AWS, lifecycle.Connector) {
	t.Helper()
	emu, err := awsemu.Start(awsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	ak, err := emu.AddUser(AWSPlatform, awsemu.AccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := emu.CreateKey(awsemu.KeySpec{Account: AWSAccount, Region: AWSRegion})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := lifecycleaws.New(lifecycleaws.Config{Credentials: awscreds.NewStaticCredentialsProvider(ak.ID, ak.Secret, ""),
		PlatformPrincipal: AWSPlatform, Region: AWSRegion, HTTPClient: emu.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	return &AWS{Emulator: emu, KeyARN: key.ARN}, conn
}

func start(t testing.TB, batchSize int, withAWS bool) *Server {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "byok.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &Server{DB: db, Customer: kmstest.NewFake(), Platform: kmstest.NewFake(), clock: fakeclock.New(Epoch)}
	prk := s.Platform.AddKey("prk")
	s.CMK = s.Customer.AddKey("cmk")
	connectors := []lifecycle.Connector{lifecycletest.Connector{KMS: s.Customer}}
	if withAWS {
		var conn lifecycle.Connector
		s.AWS, conn = startAWS(t)
		connectors = append(connectors, conn)
	}
	log := audit.New(db, nil)
	s.Lifecycle, err = lifecycle.New(lifecycle.Config{
		Store: db, PlatformKMS: s.Platform, PlatformKeyID: prk, Connectors: connectors,
		Audit: log, Now: s.Now, PlatformOnlyScopes: []string{"cache"}, BatchSize: batchSize,
		Keyring: byok.Config{CheckInterval: CheckInterval, MaxStaleness: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Config{Lifecycle: s.Lifecycle, Store: db, Audit: log,
		PlatformKMS: s.Platform, PlatformKeyID: prk, Now: s.Now, MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/key/jobs/") {
			s.Lifecycle.Tick(r.Context()) // a failed job records its error; the poll reads it
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	s.Operator, _, err = server.IssueToken(ctx, db, token.Operator, nil, "clienttest", 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Now is the fake clock.
func (s *Server) Now() time.Time { return s.clock.Now() }

// Advance moves the fake clock by d.
func (s *Server) Advance(d time.Duration) { s.clock.Advance(d) }

// Tick runs one pass of the lifecycle's background work; it fails t on
// error.
func (s *Server) Tick(t testing.TB) {
	t.Helper()
	if err := s.Lifecycle.Tick(context.Background()); err != nil {
		t.Fatalf("lifecycle Tick: %v", err)
	}
}

// Token issues a token of kind for tenants, valid for ttl (0: forever) from
// the fake clock's now, and returns its text.
func (s *Server) Token(t testing.TB, kind string, ttl time.Duration, tenants ...string) string {
	t.Helper()
	text, rec, err := token.New(token.Kind(kind), tenants, "clienttest", s.Now(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB.CreateToken(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return text
}
