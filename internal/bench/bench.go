// Package bench holds byok's performance measurements, shared by the root
// package's Go benchmarks and the byok-bench command (cmd/byok-bench) so both measure the
// same thing. Every figure is measured against a baseline in the same run.
package bench

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/store/sqlite"
)

// Sizes are the payload sizes every data benchmark runs at.
var Sizes = []struct {
	Name string
	N    int
}{{"64B", 64}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// Env is a keyring over a SQLite file in dir, with a customer-managed
// tenant "bench" whose scope "data" its own key covers. The providers are
// in-memory fakes that count calls.
type Env struct {
	Keyring  *byok.Keyring
	Platform *kmstest.Fake
	Customer *kmstest.Fake
	Config   byok.Config
	db       *sqlite.DB
}

// NewEnv builds an Env in dir.
func NewEnv(dir string) (*Env, error) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		return nil, err
	}
	e := &Env{Platform: kmstest.NewFake(), Customer: kmstest.NewFake(), db: db}
	e.Config = byok.Config{
		Store:         db,
		PlatformKMS:   e.Platform,
		PlatformKeyID: e.Platform.AddKey("platform"),
		CustomerKMS:   func(context.Context, string) (kms.Provider, error) { return e.Customer, nil },
	}
	if e.Keyring, err = byok.New(e.Config); err != nil {
		return nil, err
	}
	if err := e.Keyring.CreateTenant(ctx, "bench", byok.Grace); err != nil {
		return nil, err
	}
	if _, err := e.Keyring.NewTenantKey(ctx, "bench", byok.CustomerManaged, e.Customer.AddKey("bench")); err != nil {
		return nil, err
	}
	if err := db.PutScope(ctx, byok.ScopeRecord{Tenant: "bench", Scope: "data", Kind: byok.CustomerManaged}); err != nil {
		return nil, err
	}
	return e, nil
}

// Close closes the Env's database.
func (e *Env) Close() error { return e.db.Close() }

// Calls returns the provider calls made so far, both providers together.
func (e *Env) Calls() int64 {
	p, c := e.Platform.Calls(), e.Customer.Calls()
	return p.Wrap + p.Unwrap + p.Describe + c.Wrap + c.Unwrap + c.Describe
}

var aad = []byte("bench")

// Encrypt measures a warm Keyring.Encrypt of n bytes.
func (e *Env) Encrypt(n int) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		pt := make([]byte, n)
		if _, err := e.Keyring.Encrypt(ctx, "bench", "data", pt, aad); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Keyring.Encrypt(ctx, "bench", "data", pt, aad); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Decrypt measures a warm Keyring.Decrypt of n bytes.
func (e *Env) Decrypt(n int) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		ct, err := e.Keyring.Encrypt(ctx, "bench", "data", make([]byte, n), aad)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Keyring.Decrypt(ctx, "bench", "data", ct, aad); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// ScopeEncrypt measures a warm Encrypt of n bytes through a
// [byok.ScopeHandle] of the bench scope.
func (e *Env) ScopeEncrypt(n int) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		h, err := e.Keyring.Scope("bench", "data")
		if err != nil {
			b.Fatal(err)
		}
		pt := make([]byte, n)
		if _, err := h.Encrypt(ctx, pt, aad); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Encrypt(ctx, pt, aad); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// ScopeDecrypt measures a warm Decrypt of n bytes through a
// [byok.ScopeHandle] of the bench scope.
func (e *Env) ScopeDecrypt(n int) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		h, err := e.Keyring.Scope("bench", "data")
		if err != nil {
			b.Fatal(err)
		}
		ct, err := h.Encrypt(ctx, make([]byte, n), aad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.Decrypt(ctx, ct, aad); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Decrypt(ctx, ct, aad); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// ColdDecrypt measures a Decrypt of 1 KiB in a process that has nothing of
// the tenant cached: the tenant key is loaded (two unwraps by the in-memory
// providers, a store read) and the DEK is read and unwrapped.
func (e *Env) ColdDecrypt(b *testing.B) {
	ctx := context.Background()
	ct, err := e.Keyring.Encrypt(ctx, "bench", "data", make([]byte, 1<<10), aad)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Keyring.Forget("bench")
		if _, err := e.Keyring.Decrypt(ctx, "bench", "data", ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}

// RawAESGCM measures the physical limit: a plain AES-256-GCM seal of n
// bytes with a random nonce, into a new output slice, as Encrypt does.
func RawAESGCM(n int) func(*testing.B) {
	return func(b *testing.B) {
		key := make([]byte, 32)
		rand.Read(key)
		block, _ := aes.NewCipher(key)
		aead, _ := cipher.NewGCM(block)
		pt := make([]byte, n)
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			out := make([]byte, aead.NonceSize(), aead.NonceSize()+n+aead.Overhead())
			rand.Read(out)
			aead.Seal(out, out, pt, aad)
		}
	}
}

// Row is one line of the comparison table.
type Row struct {
	Size              string
	Raw, Enc, Dec     testing.BenchmarkResult
	ScopeEnc          testing.BenchmarkResult // Encrypt through a ScopeHandle
	EncRatio, MBRatio float64                 // Encrypt time per op ÷ raw; Encrypt throughput ÷ raw
	ScopeRatio        float64                 // ScopeHandle Encrypt time per op ÷ raw
}

// Rounds is how many times Compare measures each benchmark; it keeps the
// fastest round, the one least disturbed by the rest of the machine.
const Rounds = 3

// Compare runs the raw baseline, Encrypt and Decrypt at every size in one
// process, interleaved, and returns the rows.
func (e *Env) Compare() []Row {
	var rows []Row
	for _, s := range Sizes {
		r := Row{Size: s.Name}
		for range Rounds {
			r.Raw = fastest(r.Raw, testing.Benchmark(RawAESGCM(s.N)))
			r.Enc = fastest(r.Enc, testing.Benchmark(e.Encrypt(s.N)))
			r.Dec = fastest(r.Dec, testing.Benchmark(e.Decrypt(s.N)))
			r.ScopeEnc = fastest(r.ScopeEnc, testing.Benchmark(e.ScopeEncrypt(s.N)))
		}
		r.EncRatio = nsPerOp(r.Enc) / nsPerOp(r.Raw)
		r.ScopeRatio = nsPerOp(r.ScopeEnc) / nsPerOp(r.Raw)
		r.MBRatio = nsPerOp(r.Raw) / nsPerOp(r.Enc)
		rows = append(rows, r)
	}
	return rows
}

// fastest returns the result with the lower time per op; a zero result
// loses.
func fastest(a, b testing.BenchmarkResult) testing.BenchmarkResult {
	if a.N == 0 || nsPerOp(b) < nsPerOp(a) {
		return b
	}
	return a
}

func nsPerOp(r testing.BenchmarkResult) float64 { return float64(r.T.Nanoseconds()) / float64(r.N) }

// Run measures everything and writes the tables to w.
func Run(w io.Writer, dir string) error {
	e, err := NewEnv(dir)
	if err != nil {
		return err
	}
	defer e.Close()

	fmt.Fprintf(w, "Warm path, against a plain AES-256-GCM seal measured in the same run (fastest of %d interleaved rounds):\n", Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\traw ns/op\tEncrypt ns/op\tDecrypt ns/op\tEncrypt/raw time\tEncrypt/raw MB/s\tScopeHandle Encrypt ns/op\tScopeHandle/raw time\tEncrypt allocs/op\tDecrypt allocs/op\t")
	for _, r := range e.Compare() {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.3fx\t%.3fx\t%.0f\t%.3fx\t%d\t%d\t\n", r.Size, nsPerOp(r.Raw), nsPerOp(r.Enc), nsPerOp(r.Dec),
			r.EncRatio, r.MBRatio, nsPerOp(r.ScopeEnc), r.ScopeRatio, r.Enc.AllocsPerOp(), r.Dec.AllocsPerOp())
	}
	tw.Flush()

	before := e.Calls()
	ctx := context.Background()
	ct, _ := e.Keyring.Encrypt(ctx, "bench", "data", make([]byte, 64), aad)
	start := time.Now()
	const ops = 1_000_000
	for i := 0; i < ops/2; i++ {
		if _, err := e.Keyring.Encrypt(ctx, "bench", "data", make([]byte, 64), aad); err != nil {
			return err
		}
		if _, err := e.Keyring.Decrypt(ctx, "bench", "data", ct, aad); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	calls := e.Calls() - before
	cold := testing.Benchmark(e.ColdDecrypt)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "provider calls per 10^6 warm operations: %d (%d encrypts + %d decrypts of 64 B in %v)\n", calls, ops/2, ops/2, elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "cold Decrypt of 1 KiB (nothing cached; in-memory providers): %.0f ns/op, %d allocs/op\n", nsPerOp(cold), cold.AllocsPerOp())
	return nil
}
