package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/lifecycle/lifecycletest"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
	"github.com/openbyok/byok/store/sqlite"
)

// HTTP load: what `byok-bench http` runs against each route.
const (
	HTTPConns     = 8       // keep-alive connections of the load generator
	HTTPPayload   = 1 << 10 // bytes of plaintext per item
	HTTPBatchSize = 32      // items per batch request
)

// HTTPEnv is byok's API as `byok serve` builds it — server.New over the
// lifecycle and a SQLite file, with metrics, the usage counter and a JSON
// request log (to io.Discard) — with one tenant "t1" whose scope "data" is
// covered by an active customer key in an in-memory fake provider; and,
// beside it, the ceiling: a minimal net/http handler that decodes the same
// JSON, does one AES-256-GCM seal (or open) and answers the same size of
// JSON. Both listen on loopback.
type HTTPEnv struct {
	ByokURL    string // http://127.0.0.1:port, byok's API
	CeilingURL string // http://127.0.0.1:port, the minimal handler
	Token      string // a service token of t1

	EncryptBody, DecryptBody, BatchBody []byte // byok's request bodies
	CeilEncryptBody, CeilDecryptBody    []byte // the ceiling's, of the same sizes

	Service *lifecycle.Service
	db      *sqlite.DB
	servers []*http.Server
}

// NewHTTPEnv builds the environment in dir and starts both servers.
func NewHTTPEnv(dir string) (*HTTPEnv, error) {
	ctx := context.Background()
	e := &HTTPEnv{}
	var err error
	if e.db, err = sqlite.Open(ctx, filepath.Join(dir, "http.db")); err != nil {
		return nil, err
	}
	platform, customer := kmstest.NewFake(), kmstest.NewFake()
	log := audit.New(e.db, nil)
	metrics := server.NewMetrics(nil)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	prk := platform.AddKey("platform")
	e.Service, err = lifecycle.New(lifecycle.Config{
		Store: e.db, PlatformKMS: metrics.InstrumentProvider("platform", platform), PlatformKeyID: prk,
		Connectors: []lifecycle.Connector{lifecycletest.Connector{KMS: customer}},
		Instrument: metrics.InstrumentProvider,
		Audit:      log, Logger: logger,
	})
	if err != nil {
		e.Close()
		return nil, err
	}
	api, err := server.New(server.Config{Lifecycle: e.Service, Store: e.db, Audit: log,
		PlatformKMS: platform, PlatformKeyID: prk, Metrics: metrics, Logger: logger, Usage: audit.NewCounter(log)})
	if err != nil {
		e.Close()
		return nil, err
	}
	if err := e.activate(ctx, customer.AddKey("cmk")); err != nil {
		e.Close()
		return nil, err
	}
	if e.Token, _, err = server.IssueToken(ctx, e.db, token.Service, []string{"t1"}, "bench", 0); err != nil {
		e.Close()
		return nil, err
	}
	if e.ByokURL, err = e.serve(api); err != nil {
		e.Close()
		return nil, err
	}
	ceil, err := newCeiling()
	if err != nil {
		e.Close()
		return nil, err
	}
	if e.CeilingURL, err = e.serve(ceil); err != nil {
		e.Close()
		return nil, err
	}

	// Request bodies: 1 KiB of plaintext; a ciphertext of it made by byok;
	// the ceiling's ciphertext is of the same length, so every body and
	// answer has the same size on both sides.
	pt := make([]byte, HTTPPayload)
	rand.Read(pt)
	ct, err := e.Service.Keyring().Encrypt(ctx, "t1", "data", pt, nil)
	if err != nil {
		e.Close()
		return nil, err
	}
	ceil.pad = len(ct) - (ceil.aead.NonceSize() + len(pt) + ceil.aead.Overhead())
	if ceil.pad < 0 {
		ceil.pad = 0
	}
	b64 := base64.StdEncoding.EncodeToString
	e.EncryptBody, _ = json.Marshal(map[string]string{"scope": "data", "plaintext": b64(pt)})
	e.DecryptBody, _ = json.Marshal(map[string]string{"scope": "data", "ciphertext": b64(ct)})
	e.CeilEncryptBody = e.EncryptBody
	e.CeilDecryptBody, _ = json.Marshal(map[string]string{"scope": "data", "ciphertext": b64(ceil.seal(pt))})
	items := make([]map[string]string, HTTPBatchSize)
	for i := range items {
		items[i] = map[string]string{"op": "encrypt", "scope": "data", "plaintext": b64(pt)}
	}
	e.BatchBody, _ = json.Marshal(map[string]any{"items": items})
	return e, nil
}

// activate configures, tests and activates t1's customer key over every
// scope, as a tenant admin would.
func (e *HTTPEnv) activate(ctx context.Context, cmk string) error {
	if err := e.Service.CreateTenant(ctx, benchOperator, "t1", byok.Grace, []string{"data"}); err != nil {
		return err
	}
	_, err := e.Service.Configure(ctx, benchAdmin, "t1", azure.Settings(cmk, azure.Options{DirectoryID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", ClientID: "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", Credential: azure.CredentialClientSecret}, lifecycle.NewSecret("bench-secret")))
	if err != nil {
		return err
	}
	if r, err := e.Service.Test(ctx, benchAdmin, "t1"); err != nil || !r.Passed() {
		return fmt.Errorf("Test configuration of the bench tenant: passed %v, %v", r.Passed(), err)
	}
	if _, err := e.Service.Proceed(ctx, benchAdmin, "t1", time.Now().Add(50*time.Millisecond), nil); err != nil {
		return err
	}
	time.Sleep(60 * time.Millisecond)
	for range 2 {
		if err := e.Service.Tick(ctx); err != nil {
			return err
		}
	}
	if s, err := e.Service.Status(ctx, "t1"); err != nil || s.State != lifecycle.StateActive {
		return fmt.Errorf("bench tenant not active: %s, %v", s.State, err)
	}
	return nil
}

// serve serves h on a loopback port and returns its URL.
func (e *HTTPEnv) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h}
	e.servers = append(e.servers, srv)
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// Close stops the servers and closes the database.
func (e *HTTPEnv) Close() {
	for _, s := range e.servers {
		s.Close()
	}
	if e.db != nil {
		e.db.Close()
	}
}

// ceiling is the minimal handler: encoding/json in and out, standard
// base64 (as encoding/json does []byte), one AES-256-GCM seal or open.
type ceiling struct {
	aead cipher.AEAD
	pad  int // zero bytes before the nonce, so that its ciphertext is as long as byok's
}

func newCeiling() (*ceiling, error) {
	aead, err := randomGCM()
	if err != nil {
		return nil, err
	}
	return &ceiling{aead: aead}, nil
}

func (c *ceiling) seal(pt []byte) []byte {
	ns := c.aead.NonceSize()
	out := make([]byte, c.pad+ns, c.pad+ns+len(pt)+c.aead.Overhead())
	rand.Read(out[c.pad:])
	return c.aead.Seal(out, out[c.pad:], pt, nil)
}

func (c *ceiling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Scope      string `json:"scope"`
		Plaintext  []byte `json:"plaintext"`
		Ciphertext []byte `json:"ciphertext"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var resp struct {
		Plaintext  []byte `json:"plaintext,omitempty"`
		Ciphertext []byte `json:"ciphertext,omitempty"`
	}
	if req.Plaintext != nil {
		resp.Ciphertext = c.seal(req.Plaintext)
	} else {
		ns := c.aead.NonceSize()
		if len(req.Ciphertext) < c.pad+ns {
			http.Error(w, "short ciphertext", http.StatusBadRequest)
			return
		}
		ct := req.Ciphertext[c.pad:]
		pt, err := c.aead.Open(nil, ct[:ns], ct[ns:], nil)
		if err != nil {
			http.Error(w, "decrypt failed", http.StatusBadRequest)
			return
		}
		resp.Plaintext = pt
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// Load is the result of one load run.
type Load struct {
	Ops      float64 // requests per second
	P50, P99 time.Duration
}

// RunLoad sends body to url with tok (if not "") from conns goroutines,
// each on its own keep-alive connection, for d, and returns the rate and
// latencies. Any answer but 200 fails it.
func RunLoad(url, tok string, body []byte, conns int, d time.Duration) (Load, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	send := func() error {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s: HTTP %d", url, resp.StatusCode)
		}
		return nil
	}
	// Open the connections and warm both sides before the clock starts.
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i := range conns {
		wg.Go(func() {
			for range 20 {
				if errs[i] = send(); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Load{}, err
		}
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  error
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1<<14)
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				if err := send(); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return Load{}, firstErr
	}
	if len(latencies) == 0 {
		return Load{}, fmt.Errorf("POST %s: no request finished in %v", url, d)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	return Load{Ops: float64(len(latencies)) / elapsed.Seconds(), P50: pct(0.50), P99: pct(0.99)}, nil
}

// Rounds is how many interleaved rounds the HTTP benchmark runs by
// default (see [HTTPEnv.Compare]).
const Rounds = 5

// HTTPResult is what Compare measured: for each target, its round of
// median rate; and the ratios, each the median of the rounds' own ratios
// (a byok route over the ceiling's run just before it; the batch route's
// payload over the byok encrypt run just before it), so that a ratio
// compares runs made seconds apart, not the best of each from different
// moments of a shared machine.
type HTTPResult struct {
	CeilEncrypt, Encrypt, CeilDecrypt, Decrypt, Batch Load
	EncryptRatio, DecryptRatio, BatchRatio            float64
}

// medianLoad returns the run of median rate (the upper one of an even
// number).
func medianLoad(ls []Load) Load {
	s := slices.Clone(ls)
	slices.SortFunc(s, func(a, b Load) int { return cmp.Compare(a.Ops, b.Ops) })
	return s[len(s)/2]
}

// Compare runs the load generator against the five targets in rounds
// rounds, interleaved (ceiling encrypt, byok encrypt, byok batch, ceiling
// decrypt, byok decrypt), d each.
func (e *HTTPEnv) Compare(rounds int, d time.Duration) (HTTPResult, error) {
	if rounds < 1 {
		return HTTPResult{}, fmt.Errorf("bench: %d rounds; measure at least one", rounds)
	}
	runs := make([][5]Load, rounds)
	for r := range runs {
		for i, t := range []struct {
			url, tok string
			body     []byte
		}{
			{e.CeilingURL + "/encrypt", "", e.CeilEncryptBody},
			{e.ByokURL + "/v1/tenants/t1/encrypt", e.Token, e.EncryptBody},
			{e.ByokURL + "/v1/tenants/t1/batch", e.Token, e.BatchBody},
			{e.CeilingURL + "/decrypt", "", e.CeilDecryptBody},
			{e.ByokURL + "/v1/tenants/t1/decrypt", e.Token, e.DecryptBody},
		} {
			var err error
			if runs[r][i], err = RunLoad(t.url, t.tok, t.body, HTTPConns, d); err != nil {
				return HTTPResult{}, err
			}
		}
	}
	return summarize(runs), nil
}

// summarize makes the HTTPResult of rounds of runs, each in Compare's
// order: ceiling encrypt, byok encrypt, byok batch, ceiling decrypt, byok
// decrypt.
func summarize(runs [][5]Load) HTTPResult {
	var each [5][]Load
	var encR, batchR, decR []float64
	for _, l := range runs {
		for i := range l {
			each[i] = append(each[i], l[i])
		}
		encR = append(encR, l[1].Ops/l[0].Ops)
		batchR = append(batchR, l[2].Ops*HTTPBatchSize/l[1].Ops)
		decR = append(decR, l[4].Ops/l[3].Ops)
	}
	return HTTPResult{
		CeilEncrypt: medianLoad(each[0]), Encrypt: medianLoad(each[1]), Batch: medianLoad(each[2]),
		CeilDecrypt: medianLoad(each[3]), Decrypt: medianLoad(each[4]),
		EncryptRatio: Median(encR), DecryptRatio: Median(decR), BatchRatio: Median(batchR),
	}
}

// RunHTTP measures byok's data routes against the ceiling and writes the
// table to w.
func RunHTTP(w io.Writer, dir string, rounds int, d time.Duration) error {
	e, err := NewHTTPEnv(dir)
	if err != nil {
		return err
	}
	defer e.Close()
	r, err := e.Compare(rounds, d)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "HTTP on loopback: %d keep-alive connections, %d B payloads, %v per run, %d interleaved rounds:\n",
		HTTPConns, HTTPPayload, d, rounds)
	fmt.Fprintf(w, "each target's round of median rate; each ratio the median of the rounds' ratios, of runs made one after the other.\n")
	fmt.Fprintf(w, "ceiling: a minimal net/http handler (encoding/json, base64, one AES-256-GCM seal/open, answers of the same size).\n")
	fmt.Fprintf(w, "byok: server.New over SQLite, a customer key in an in-memory fake provider, a service token, metrics, usage counting, JSON request log.\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route\tops/s\tp50\tp99\tceiling ops/s\tceiling p50\tceiling p99\tbyok/ceiling\tgoal\t")
	row := func(name string, b, c Load, ratio float64) {
		fmt.Fprintf(tw, "%s\t%.0f\t%v\t%v\t%.0f\t%v\t%v\t%.2fx\t≥ 0.60x\t\n", name, b.Ops, b.P50.Round(time.Microsecond), b.P99.Round(time.Microsecond),
			c.Ops, c.P50.Round(time.Microsecond), c.P99.Round(time.Microsecond), ratio)
	}
	row("encrypt", r.Encrypt, r.CeilEncrypt, r.EncryptRatio)
	row("decrypt", r.Decrypt, r.CeilDecrypt, r.DecryptRatio)
	fmt.Fprintf(tw, "batch of %d encrypts\t%.0f\t%v\t%v\t\t\t\t%.2fx the encrypt route's payload\t≥ 5x\t\n", HTTPBatchSize, r.Batch.Ops,
		r.Batch.P50.Round(time.Microsecond), r.Batch.P99.Round(time.Microsecond), r.BatchRatio)
	return tw.Flush()
}
