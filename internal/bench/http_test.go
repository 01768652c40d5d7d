package bench

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// `byok-bench http` measures what it says: both servers answer every
// route with 200, the ceiling's bodies and answers have byok's sizes, and
// a short comparison yields rates and ordered percentiles.
func TestHTTPCompare(t *testing.T) {
	e, err := NewHTTPEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if len(e.CeilEncryptBody) != len(e.EncryptBody) || len(e.CeilDecryptBody) != len(e.DecryptBody) {
		t.Fatalf("ceiling bodies of %d and %d bytes, byok's %d and %d", len(e.CeilEncryptBody), len(e.CeilDecryptBody), len(e.EncryptBody), len(e.DecryptBody))
	}
	post := func(url, tok string, body []byte) []byte {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s = %d %s", url, resp.StatusCode, b)
		}
		return b
	}
	for _, c := range []struct{ byok, ceil []byte }{
		{post(e.ByokURL+"/v1/tenants/t1/encrypt", e.Token, e.EncryptBody), post(e.CeilingURL+"/encrypt", "", e.CeilEncryptBody)},
		{post(e.ByokURL+"/v1/tenants/t1/decrypt", e.Token, e.DecryptBody), post(e.CeilingURL+"/decrypt", "", e.CeilDecryptBody)},
	} {
		if len(c.byok) != len(c.ceil) {
			t.Errorf("answers of %d bytes from byok and %d from the ceiling: %.60s… %.60s…", len(c.byok), len(c.ceil), c.byok, c.ceil)
		}
	}
	if b := post(e.ByokURL+"/v1/tenants/t1/batch", e.Token, e.BatchBody); strings.Count(string(b), `"ciphertext"`) != HTTPBatchSize {
		t.Fatalf("batch answer holds %d ciphertexts, want %d", strings.Count(string(b), `"ciphertext"`), HTTPBatchSize)
	}
	r, err := e.Compare(1, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]Load{"ceiling encrypt": r.CeilEncrypt, "encrypt": r.Encrypt, "ceiling decrypt": r.CeilDecrypt, "decrypt": r.Decrypt, "batch": r.Batch} {
		if l.Ops <= 0 || l.P50 <= 0 || l.P50 > l.P99 {
			t.Errorf("%s: %+v", name, l)
		}
	}
	// One round: each ratio is that round's.
	if r.EncryptRatio != r.Encrypt.Ops/r.CeilEncrypt.Ops || r.DecryptRatio != r.Decrypt.Ops/r.CeilDecrypt.Ops ||
		r.BatchRatio != r.Batch.Ops*HTTPBatchSize/r.Encrypt.Ops {
		t.Errorf("ratios %v, %v, %v do not match the round's rates %+v", r.EncryptRatio, r.DecryptRatio, r.BatchRatio, r)
	}
}

// summarize takes the median of the rounds' own ratios, not the ratio of
// the median rates: here they differ.
func TestSummarize(t *testing.T) {
	l := func(ops float64) Load { return Load{Ops: ops} }
	// Rounds: ceiling encrypt, encrypt, batch, ceiling decrypt, decrypt.
	r := summarize([][5]Load{
		{l(100), l(90), l(20), l(100), l(50)},   // 0.9, 7.11, 0.5
		{l(200), l(100), l(16), l(200), l(180)}, // 0.5, 5.12, 0.9
		{l(300), l(240), l(40), l(300), l(240)}, // 0.8, 5.33, 0.8
	})
	if r.EncryptRatio != 0.8 || r.DecryptRatio != 0.8 || r.BatchRatio != 40.0*HTTPBatchSize/240 {
		t.Errorf("ratios %v, %v, %v; want the medians of the rounds' ratios 0.8, 0.8, %v", r.EncryptRatio, r.DecryptRatio, r.BatchRatio, 40.0*HTTPBatchSize/240)
	}
	if r.CeilEncrypt.Ops != 200 || r.Encrypt.Ops != 100 || r.Batch.Ops != 20 || r.CeilDecrypt.Ops != 200 || r.Decrypt.Ops != 180 {
		t.Errorf("median runs %+v", r)
	}
	// The ratio of the median rates would be 0.5 for encrypt: not what is reported.
}

func TestHTTPCompareRounds(t *testing.T) {
	var e HTTPEnv
	if _, err := e.Compare(0, time.Millisecond); err == nil {
		t.Error("Compare with 0 rounds: no error")
	}
}

func TestMedianLoad(t *testing.T) {
	ls := []Load{{Ops: 3, P50: 3}, {Ops: 1, P50: 1}, {Ops: 2, P50: 2}}
	if got := medianLoad(ls); got.Ops != 2 || got.P50 != 2 {
		t.Errorf("medianLoad = %+v, want the run of 2 ops/s", got)
	}
	if ls[0].Ops != 3 {
		t.Errorf("medianLoad reordered its input: %+v", ls)
	}
	if got := medianLoad(ls[:1]); got.Ops != 3 {
		t.Errorf("medianLoad of one run = %+v", got)
	}
}
