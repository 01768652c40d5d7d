package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok/server/token"
)

// BenchmarkHTTPEncrypt is a Go load generator: parallel HTTP encrypts of
// 1 KiB on loopback against the real server, lifecycle and SQLite store.
// It reports ops/s and the p99 latency, and the same encrypt called on the
// keyring in-process in the same run as the baseline (ratio = HTTP time /
// in-process time).
func BenchmarkHTTPEncrypt(b *testing.B) {
	e := newEnv(b)
	e.tenant(b, "acme", "chat")
	svc := e.token(b, token.Service, "acme")
	body, _ := json.Marshal(map[string]any{"scope": "chat", "plaintext": bytes.Repeat([]byte{'x'}, 1024)})
	url := e.srv.URL + "/v1/tenants/acme/encrypt"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	send := func() error {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+svc)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return &Error{Code: res.Status}
		}
		return nil
	}
	if err := send(); err != nil { // warm the tenant key and DEK
		b.Fatal(err)
	}

	// Baseline: the keyring in-process.
	kr := e.lc.Keyring()
	pt := bytes.Repeat([]byte{'x'}, 1024)
	const baseN = 20000
	start := time.Now()
	for range baseN {
		if _, err := kr.Encrypt(context.Background(), "acme", "chat", pt, nil); err != nil {
			b.Fatal(err)
		}
	}
	inProcess := time.Since(start) / baseN

	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(4)
	b.ResetTimer()
	start = time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := send(); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(inProcess.Nanoseconds()), "inproc-ns/op")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(len(lat))/float64(inProcess.Nanoseconds()), "x-inproc")
}

// handlerBench is the server's handler with a JSON request log to
// io.Discard (as `byok serve` logs, minus the terminal), a tenant "acme"
// with scope "chat", a service token and the bodies of the data routes.
type handlerBench struct {
	h                       http.Handler
	tok                     string
	encrypt, decrypt, batch []byte
}

func newHandlerBench(b *testing.B) *handlerBench {
	e := newEnv(b)
	e.tenant(b, "acme", "chat")
	hb := &handlerBench{tok: "Bearer " + e.token(b, token.Service, "acme")}
	var err error
	hb.h, err = New(Config{Lifecycle: e.lc, Store: e.db, Audit: e.log, PlatformKMS: e.platform, PlatformKeyID: "fake:prk",
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: e.clock.Now, Usage: e.usage})
	if err != nil {
		b.Fatal(err)
	}
	pt := bytes.Repeat([]byte{'x'}, 1024)
	ct, err := e.lc.Keyring().Encrypt(context.Background(), "acme", "chat", pt, nil)
	if err != nil {
		b.Fatal(err)
	}
	hb.encrypt, _ = json.Marshal(map[string]any{"scope": "chat", "plaintext": pt})
	hb.decrypt, _ = json.Marshal(map[string]any{"scope": "chat", "ciphertext": ct})
	items := make([]map[string]any, 32)
	for i := range items {
		items[i] = map[string]any{"op": "encrypt", "scope": "chat", "plaintext": pt}
	}
	hb.batch, _ = json.Marshal(map[string]any{"items": items})
	return hb
}

// run serves body on path in-process (no network), in parallel, and
// fails b on any answer but 200.
func (hb *handlerBench) run(b *testing.B, path string, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rd := bytes.NewReader(body)
		for pb.Next() {
			rd.Reset(body)
			req := httptest.NewRequest("POST", path, rd)
			req.Header.Set("Authorization", hb.tok)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			hb.h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Errorf("POST %s = %d %s", path, w.Code, w.Body)
				return
			}
		}
	})
}

// BenchmarkHandler measures the data routes' handler in-process at 1 KiB:
// routing, token check, JSON and base64, keyring, metrics, usage and the
// request log; the network is `byok-bench http`'s part.
func BenchmarkHandler(b *testing.B) {
	hb := newHandlerBench(b)
	b.Run("encrypt", func(b *testing.B) { hb.run(b, "/v1/tenants/acme/encrypt", hb.encrypt) })
	b.Run("decrypt", func(b *testing.B) { hb.run(b, "/v1/tenants/acme/decrypt", hb.decrypt) })
	b.Run("batch32", func(b *testing.B) { hb.run(b, "/v1/tenants/acme/batch", hb.batch) })
}
