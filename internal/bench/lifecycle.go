package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/internal/envelope"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store/sqlite"
)

// LifecycleEnv is the real service — lifecycle, keyring, audit, HTTP API
// over a SQLite file — with one tenant "t1" whose customer key lives in
// the Key Vault emulator and is reached through the official Azure SDK.
// The platform root key is an in-memory fake.
type LifecycleEnv struct {
	Emu      *kvemu.Emulator
	Service  *lifecycle.Service
	DB       *sqlite.DB
	Platform *kmstest.Fake
	Handler  http.Handler
	conn     *azure.Connector
	settings lifecycle.KeySettings // with the secret
	dbPath   string
	roleID   string
}

var (
	benchAdmin    = audit.Actor{Kind: audit.TenantAdmin, ID: "bench"}
	benchOperator = audit.Actor{Kind: audit.Operator, ID: "bench"}
)

// NewLifecycleEnv builds the environment in dir with the given check
// interval and activates t1's customer key over scopes "a" and "b".
func NewLifecycleEnv(dir string, checkInterval time.Duration) (*LifecycleEnv, error) {
	ctx := context.Background()
	e := &LifecycleEnv{Platform: kmstest.NewFake(), dbPath: filepath.Join(dir, "bench.db")}
	var err error
	if e.Emu, err = kvemu.Start(kvemu.Options{}); err != nil {
		return nil, err
	}
	dirID := "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	if _, err := e.Emu.CreateTenant(kvemu.Tenant{ID: dirID}); err != nil {
		return nil, err
	}
	app, err := e.Emu.CreateApp(kvemu.App{TenantID: dirID})
	if err != nil {
		return nil, err
	}
	secret, err := e.Emu.AddSecret(app.ClientID, kvemu.Secret{})
	if err != nil {
		return nil, err
	}
	if err := e.Emu.CreateVault(kvemu.VaultConfig{Name: "bench", TenantID: dirID, PurgeProtection: true}); err != nil {
		return nil, err
	}
	if _, err := e.Emu.CreateKey("bench", "cmk", kvemu.KeySpec{}); err != nil {
		return nil, err
	}
	if e.roleID, err = e.Emu.AssignRole("bench", kvemu.RoleAssignment{PrincipalID: app.ObjectID, Role: "Key Vault Crypto User"}); err != nil {
		return nil, err
	}
	if e.DB, err = sqlite.Open(ctx, e.dbPath); err != nil {
		return nil, err
	}
	e.conn = azure.NewConnector(azurekv.PlatformApp{})
	e.conn.Transport = e.Emu.HTTPClient()
	log := audit.New(e.DB, nil)
	e.Service, err = lifecycle.New(lifecycle.Config{
		Store: e.DB, PlatformKMS: e.Platform, PlatformKeyID: e.Platform.AddKey("platform"), Connectors: []lifecycle.Connector{e.conn}, Audit: log,
		Keyring: byok.Config{CheckInterval: checkInterval, MaxStaleness: time.Hour},
	})
	if err != nil {
		return nil, err
	}
	if e.Handler, err = server.New(server.Config{Lifecycle: e.Service, Store: e.DB, Audit: log,
		PlatformKMS: e.Platform, PlatformKeyID: "fake:platform"}); err != nil {
		return nil, err
	}
	if err := e.Service.CreateTenant(ctx, benchOperator, "t1", byok.Grace, []string{"a", "b"}); err != nil {
		return nil, err
	}
	e.settings = azure.Settings("https://bench.vault.azure.net/keys/cmk", azure.Options{DirectoryID: dirID, ClientID: app.ClientID, Credential: azure.CredentialClientSecret}, lifecycle.NewSecret(secret.Value))
	_, err = e.Service.Configure(ctx, benchAdmin, "t1", e.settings)
	if err != nil {
		return nil, err
	}
	if r, err := e.Service.Test(ctx, benchAdmin, "t1"); err != nil || !r.Passed() {
		return nil, fmt.Errorf("Test configuration of the bench tenant: passed %v, %v", r.Passed(), err)
	}
	if _, err := e.Service.Proceed(ctx, benchAdmin, "t1", time.Now().Add(50*time.Millisecond), nil); err != nil {
		return nil, err
	}
	time.Sleep(60 * time.Millisecond) // the enforcement date passes
	if err := e.Service.Tick(ctx); err != nil {
		return nil, err
	}
	if s, err := e.Service.Status(ctx, "t1"); err != nil || s.State != lifecycle.StateActive {
		return nil, fmt.Errorf("bench tenant not active: %s, %v", s.State, err)
	}
	return e, nil
}

// Close stops the emulator and closes the database.
func (e *LifecycleEnv) Close() {
	e.DB.Close()
	e.Emu.Close()
}

// AddDEKs inserts n DEKs of scope "a" under t1's current customer-managed
// tenant key, really wrapped, in one transaction of a second connection:
// setting up a large tenant without n encryptions.
func (e *LifecycleEnv) AddDEKs(n int) error {
	ctx := context.Background()
	tk, err := e.DB.TenantKey(ctx, "t1", byok.CustomerManaged)
	if err != nil {
		return err
	}
	c, err := e.unwrapCustomer(ctx, tk)
	if err != nil {
		return err
	}
	p, err := e.Platform.Unwrap(ctx, tk.PlatformShare)
	if err != nil {
		return err
	}
	key, err := envelope.DeriveTenantKey(c, p, "t1", uint8(byok.CustomerManaged), tk.Epoch)
	if err != nil {
		return err
	}
	aead, _ := envelope.NewAEAD(key)
	raw, err := sql.Open("sqlite", e.dbPath)
	if err != nil {
		return err
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare(insertDEK)
	if err != nil {
		return err
	}
	dek := make([]byte, envelope.KeySize)
	for range n {
		var id byok.DEKID
		rand.Read(id[:])
		rand.Read(dek)
		w := envelope.WrapDEK(aead, envelope.KeyID(id), "t1", "a", dek)
		if _, err := stmt.Exec(id[:], "t1", "a", int64(byok.CustomerManaged), int64(tk.Epoch), w, time.Now().UnixNano()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// unwrapCustomer unwraps a customer share through the tenant's provider.
func (e *LifecycleEnv) unwrapCustomer(ctx context.Context, tk byok.TenantKeyRecord) ([]byte, error) {
	p, err := e.conn.Provider(ctx, e.settings)
	if err != nil {
		return nil, err
	}
	return p.Unwrap(ctx, tk.CustomerShare)
}

// vaultCalls counts the calls the emulator served: wraps and unwraps, and
// the others (key reads). The 401 challenge a new SDK client gets on its
// first request (no token is sent before it) is not a served call.
func (e *LifecycleEnv) vaultCalls() (crypto, other int64) {
	for _, c := range e.Emu.Calls() {
		if c.Status == http.StatusUnauthorized {
			continue
		}
		switch c.Op {
		case kvemu.OpWrapKey, kvemu.OpUnwrapKey:
			crypto += c.N
		default:
			other += c.N
		}
	}
	return crypto, other
}

// Rotate rotates t1 to a new version of its key and returns the vault calls
// it made (wraps and unwraps; other calls) and its wall time. The monitor
// does not run meanwhile.
func (e *LifecycleEnv) Rotate() (int64, int64, time.Duration, error) {
	k, err := e.Emu.RotateKey("bench", "cmk")
	if err != nil {
		return 0, 0, 0, err
	}
	e.Emu.ResetCalls()
	start := time.Now()
	_, err = e.Service.Rotate(context.Background(), benchAdmin, "t1", lifecycle.RotateRequest{KeyID: k.ID})
	took := time.Since(start)
	crypto, other := e.vaultCalls()
	return crypto, other, took, err
}

// Rekey re-keys t1 and runs the job to its end; it returns the DEKs
// re-wrapped and the wall time.
func (e *LifecycleEnv) Rekey() (int64, time.Duration, error) {
	ctx := context.Background()
	start := time.Now()
	j, err := e.Service.Rekey(ctx, benchAdmin, "t1")
	if err != nil {
		return 0, 0, err
	}
	for j.State != lifecycle.JobDone {
		if err := e.Service.Tick(ctx); err != nil {
			return 0, 0, err
		}
		if j, err = e.Service.Job(ctx, "t1", j.ID); err != nil {
			return 0, 0, err
		}
		if j.State == lifecycle.JobFailed {
			return 0, 0, fmt.Errorf("re-key job failed: %s", j.Error)
		}
	}
	return j.Done, time.Since(start), nil
}

// RevocationLatency removes the platform's role on the vault at a random
// moment of the check interval while a client keeps decrypting covered
// data, and returns the time until the first call fails closed; then it
// restores the role and returns the time until service is back. The
// health monitor must be running (Service.Run), as in byok serve.
func (e *LifecycleEnv) RevocationLatency(ctx context.Context, interval time.Duration) (revoked, restored time.Duration, err error) {
	kr := e.Service.Keyring()
	ct, err := kr.Encrypt(ctx, "t1", "b", []byte("covered"), nil)
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(mathrand.N(interval)) // the customer acts at any moment
	waitUntil := func(ok func(error) bool) (time.Duration, error) {
		start := time.Now()
		for {
			_, err := kr.Decrypt(ctx, "t1", "b", ct, nil)
			if ok(err) {
				return time.Since(start), nil
			}
			if time.Since(start) > 10*interval+10*time.Second {
				return 0, fmt.Errorf("no change after %v: last error %v", time.Since(start), err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := e.Emu.RevokeRole("bench", e.roleID); err != nil {
		return 0, 0, err
	}
	if revoked, err = waitUntil(func(err error) bool { return err != nil }); err != nil {
		return 0, 0, err
	}
	if err := e.Emu.RestoreRole("bench", e.roleID); err != nil {
		return 0, 0, err
	}
	restored, err = waitUntil(func(err error) bool { return err == nil })
	return revoked, restored, err
}

// HTTPEncrypt runs a load generator of workers goroutines for d against the
// encrypt route of a server on loopback, and returns ops/s and the 50th and
// 99th percentile latencies.
func (e *LifecycleEnv) HTTPEncrypt(workers int, d time.Duration) (float64, time.Duration, time.Duration, error) {
	ctx := context.Background()
	tok, _, err := server.IssueToken(ctx, e.DB, token.Service, []string{"t1"}, "bench", 0)
	if err != nil {
		return 0, 0, 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, 0, err
	}
	srv := &http.Server{Handler: e.Handler}
	go srv.Serve(ln)
	defer srv.Close()
	body, _ := json.Marshal(map[string]any{"scope": "b", "plaintext": base64.StdEncoding.EncodeToString(make([]byte, 1024))})
	url := "http://" + ln.Addr().String() + "/v1/tenants/t1/encrypt"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) {
				start := time.Now()
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("encrypt: HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, 0, firstErr
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	return float64(len(latencies)) / d.Seconds(), pct(0.50), pct(0.99), nil
}

// RunLifecycle measures the lifecycle's figures and writes them as a table.
func RunLifecycle(w io.Writer, dir string, deks int) error {
	const interval = time.Second
	e, err := NewLifecycleEnv(dir, interval)
	if err != nil {
		return err
	}
	defer e.Close()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tresult\tgoal")

	warm := filepath.Join(dir, "warm")
	if err := os.MkdirAll(warm, 0o700); err != nil {
		return err
	}
	env, err := NewEnv(warm)
	if err != nil {
		return err
	}
	ctx := context.Background()
	warmCT, err := env.Keyring.Encrypt(ctx, "bench", "data", []byte("x"), nil) // loads the tenant key
	if err != nil {
		return err
	}
	if _, err := env.Keyring.Decrypt(ctx, "bench", "data", warmCT, nil); err != nil {
		return err
	}
	before, beforePlatform := env.Calls(), env.PlatformCalls()
	for range 1_000_000 / 2 {
		ct, err := env.Keyring.Encrypt(ctx, "bench", "data", []byte("x"), nil)
		if err == nil {
			_, err = env.Keyring.Decrypt(ctx, "bench", "data", ct, nil)
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(tw, "vault calls per 10^6 warm operations\t%d\t0\n", env.Calls()-before)
	fmt.Fprintf(tw, "platform root key calls per 10^6 warm operations\t%d\t0\n", env.PlatformCalls()-beforePlatform)
	env.Close()

	if err := e.AddDEKs(deks); err != nil {
		return err
	}
	crypto, other, took, err := e.Rotate()
	if err != nil {
		return err
	}
	fmt.Fprintf(tw, "rotate a tenant holding %d DEKs to a new key version\t%d wrap/unwrap + %d other, %v\t≤ 2 calls\n", deks, crypto, other, took.Round(time.Millisecond))
	// Three re-keys, each onto a new epoch: the median rate, and the
	// spread, which on a shared machine is wide.
	var rates []float64
	var n int64
	for range 3 {
		moved, took, err := e.Rekey()
		if err != nil {
			return err
		}
		n = moved
		rates = append(rates, float64(moved)/took.Seconds())
	}
	slices.Sort(rates)
	fmt.Fprintf(tw, "re-key: re-wrap %d DEKs on SQLite (batches of %d), median of 3\t%.0f DEKs/s (%.0f–%.0f)\t≥ 200k DEKs/s\n",
		n, lifecycle.DefaultBatchSize, rates[1], rates[0], rates[2])

	var revs, ress []time.Duration
	monitor, stop := context.WithCancel(ctx)
	defer stop()
	go e.Service.Run(monitor)
	for range 5 {
		rev, res, err := e.RevocationLatency(ctx, interval)
		if err != nil {
			return err
		}
		revs, ress = append(revs, rev), append(ress, res)
	}
	slices.Sort(revs)
	slices.Sort(ress)
	stop()
	fmt.Fprintf(tw, "revocation latency (role removed in kvemu → fail closed), check interval %v\tmedian %v, max %v of 5\t≤ interval + 5 s\n", interval, revs[2].Round(time.Millisecond), revs[4].Round(time.Millisecond))
	fmt.Fprintf(tw, "restoration latency (role restored → service back)\tmedian %v, max %v of 5\t≤ interval + 5 s\n", ress[2].Round(time.Millisecond), ress[4].Round(time.Millisecond))

	const rekeyTenants = 1000
	pr, err := PlatformRekey(dir, rekeyTenants, deks)
	if err != nil {
		return err
	}
	fmt.Fprintf(tw, "platform re-key after a root key rotation (oct-HSM in a kvemu Managed HSM, through the SDK): %d tenants, %d DEKs\t%.2f s for %d shares (%.0f shares/s), %d vault calls, %d DEKs re-wrapped\tno DEK re-wrapped\n",
		pr.Tenants, pr.DEKs, pr.Took.Seconds(), pr.Moved, float64(pr.Moved)/pr.Took.Seconds(), pr.VaultCalls, pr.DEKsRewrapped)

	ops, p50, p99, err := e.HTTPEncrypt(8, 3*time.Second)
	if err != nil {
		return err
	}
	inproc := testing.Benchmark(func(b *testing.B) {
		pt := make([]byte, 1024)
		for b.Loop() {
			if _, err := e.Service.Keyring().Encrypt(ctx, "t1", "b", pt, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	fmt.Fprintf(tw, "HTTP encrypt of 1 KiB on loopback, 8 connections\t%.0f ops/s, p50 %v, p99 %v\t(in-process: %.0f ops/s on one core)\n",
		ops, p50.Round(time.Microsecond), p99.Round(time.Microsecond), 1e9/nsPerOp(inproc))
	return tw.Flush()
}
