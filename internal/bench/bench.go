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
	"math"
	"path/filepath"
	"runtime"
	"slices"
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

// An Op is one call of a data benchmark, ready to repeat.
type Op func() error

// goBenchmark runs the Op that mk makes for n bytes as a Go benchmark.
func goBenchmark(n int, mk func(n int) (Op, error)) func(*testing.B) {
	return func(b *testing.B) {
		op, err := mk(n)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Encrypt measures a warm Keyring.Encrypt of n bytes.
func (e *Env) Encrypt(n int) func(*testing.B) { return goBenchmark(n, e.encryptOp) }

// Decrypt measures a warm Keyring.Decrypt of n bytes.
func (e *Env) Decrypt(n int) func(*testing.B) { return goBenchmark(n, e.decryptOp) }

// ScopeEncrypt measures a warm Encrypt of n bytes through a
// [byok.ScopeHandle] of the bench scope.
func (e *Env) ScopeEncrypt(n int) func(*testing.B) { return goBenchmark(n, e.scopeEncryptOp) }

// ScopeDecrypt measures a warm Decrypt of n bytes through a
// [byok.ScopeHandle] of the bench scope.
func (e *Env) ScopeDecrypt(n int) func(*testing.B) { return goBenchmark(n, e.scopeDecryptOp) }

// RawAESGCM measures the physical limit: a plain AES-256-GCM seal of n
// bytes with a random nonce, into a new output slice, as Encrypt does.
func RawAESGCM(n int) func(*testing.B) { return goBenchmark(n, rawOp) }

// Each op maker below makes its first call before it returns, so that the
// Op it returns is warm.

func (e *Env) encryptOp(n int) (Op, error) {
	ctx, pt := context.Background(), make([]byte, n)
	op := func() error {
		_, err := e.Keyring.Encrypt(ctx, "bench", "data", pt, aad)
		return err
	}
	return op, op()
}

func (e *Env) decryptOp(n int) (Op, error) {
	ctx := context.Background()
	ct, err := e.Keyring.Encrypt(ctx, "bench", "data", make([]byte, n), aad)
	if err != nil {
		return nil, err
	}
	op := func() error {
		_, err := e.Keyring.Decrypt(ctx, "bench", "data", ct, aad)
		return err
	}
	return op, op()
}

func (e *Env) scopeEncryptOp(n int) (Op, error) {
	h, err := e.Keyring.Scope("bench", "data")
	if err != nil {
		return nil, err
	}
	ctx, pt := context.Background(), make([]byte, n)
	op := func() error {
		_, err := h.Encrypt(ctx, pt, aad)
		return err
	}
	return op, op()
}

func (e *Env) scopeDecryptOp(n int) (Op, error) {
	h, err := e.Keyring.Scope("bench", "data")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	ct, err := h.Encrypt(ctx, make([]byte, n), aad)
	if err != nil {
		return nil, err
	}
	op := func() error {
		_, err := h.Decrypt(ctx, ct, aad)
		return err
	}
	return op, op()
}

func rawOp(n int) (Op, error) { return rawSeal(n, aad) }

// rawV1ADOp is rawOp with associated data as long as that of a v1 message
// of the bench scope (docs/format.md: the 34-byte header, lp8("bench"),
// lp8("data"), lp64(aad)): what AES-GCM itself charges for the format.
func rawV1ADOp(n int) (Op, error) {
	return rawSeal(n, make([]byte, 34+1+len("bench")+1+len("data")+8+len(aad)))
}

func rawSeal(n int, ad []byte) (Op, error) {
	aead, err := randomGCM()
	if err != nil {
		return nil, err
	}
	pt := make([]byte, n)
	op := func() error {
		out := make([]byte, aead.NonceSize(), aead.NonceSize()+n+aead.Overhead())
		rand.Read(out)
		aead.Seal(out, out, pt, ad)
		return nil
	}
	return op, op()
}

// randomGCM returns AES-256-GCM under a new random key: the baselines'
// cipher, made as the standard library makes it.
func randomGCM() (cipher.AEAD, error) {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
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

// Row is one line of the comparison table: medians over the rounds.
type Row struct {
	Size                    string
	Raw, Enc, Dec, ScopeEnc float64 // ns per call
	// EncRatio, ScopeRatio, ADRatio and RawRatio are the medians of each
	// round's ratio to the raw seal of Encrypt, a ScopeHandle's Encrypt, a
	// raw seal with the v1 format's length of associated data, and a
	// second raw seal: RawRatio, the baseline against itself, is the error
	// of the measure.
	EncRatio, ScopeRatio, ADRatio, RawRatio float64
	EncAllocs, DecAllocs                    float64 // per call
}

// PairedRounds and Slice shape Compare's measure (see [Pair]). On a shared
// machine the time of a call swings by tenths from one second to the
// next; the ratio of two calls measured side by side, within a fraction
// of a second, swings far less, and the median of many such ratios, on one
// P, is steady to about a percent, which raw/raw shows in every run.
const (
	PairedRounds = 31
	Slice        = 20 * time.Millisecond
)

// Compare measures Encrypt, Decrypt, a ScopeHandle's Encrypt, a raw seal
// with v1's associated data and a second raw seal against the raw seal at
// every size, in one process, in paired rounds (see [Pair]), and returns
// the rows. It runs on one P
// (GOMAXPROCS 1): the collector then works on the thread whose calls make
// its garbage, counted in their time, instead of on the other core at
// moments of its own, which on a 2-core VM moved ratios by several
// percent from run to run.
func (e *Env) Compare() ([]Row, error) { return e.compare(PairedRounds, Slice) }

func (e *Env) compare(rounds int, slice time.Duration) ([]Row, error) {
	// The old value comes back; since Go 1.25 the runtime then no longer
	// follows the CPU limit by itself, which a benchmark run does not need.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var rows []Row
	for _, s := range Sizes {
		var ops []Op
		for _, mk := range []func(int) (Op, error){rawOp, e.encryptOp, e.decryptOp, e.scopeEncryptOp, rawV1ADOp, rawOp} {
			op, err := mk(s.N)
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
		p, err := Pair(ops[0], ops[1:], rounds, slice)
		if err != nil {
			return nil, err
		}
		rows = append(rows, Row{
			Size: s.Name,
			Raw:  Median(p.Base), Enc: Median(p.Op[0]), Dec: Median(p.Op[1]), ScopeEnc: Median(p.Op[2]),
			EncRatio: Median(p.Ratio[0]), ScopeRatio: Median(p.Ratio[2]), ADRatio: Median(p.Ratio[3]), RawRatio: Median(p.Ratio[4]),
			EncAllocs: allocs(ops[1]), DecAllocs: allocs(ops[2]),
		})
	}
	return rows, nil
}

func allocs(op Op) float64 { return testing.AllocsPerRun(100, func() { op() }) }

// Paired is what [Pair] measured, in nanoseconds per call.
type Paired struct {
	Calls []int       // the calls in each run: Calls[0] of the base, Calls[i+1] of ops[i]
	Base  []float64   // the base, in every run of it
	Op    [][]float64 // Op[i][r]: ops[i] in round r, the mean of its two runs
	Ratio [][]float64 // Ratio[i][r]: ops[i] ÷ the base in round r
}

// Pair measures ops against base in rounds. In every round, for each op
// in turn, it runs the base, the op, the op again and the base again, each
// for about slice (a number of calls set once, before the first round),
// and takes the ratio of the op's two runs to the base's: a change of the
// machine's speed that is steady over those four runs weighs on both
// alike. The first error of an Op stops it.
func Pair(base Op, ops []Op, rounds int, slice time.Duration) (Paired, error) {
	calls := make([]int, len(ops)+1)
	for i, op := range append([]Op{base}, ops...) {
		n, err := callsIn(op, slice)
		if err != nil {
			return Paired{}, err
		}
		calls[i] = n
	}
	run := func(op Op, n int) (float64, error) {
		start := time.Now()
		for range n {
			if err := op(); err != nil {
				return 0, err
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(n), nil
	}
	p := Paired{Calls: calls, Op: make([][]float64, len(ops)), Ratio: make([][]float64, len(ops))}
	for range rounds {
		for i, op := range ops {
			var t [4]float64
			for j, o := range [4]Op{base, op, op, base} {
				n := calls[0]
				if j == 1 || j == 2 {
					n = calls[i+1]
				}
				var err error
				if t[j], err = run(o, n); err != nil {
					return Paired{}, err
				}
			}
			p.Base = append(p.Base, t[0], t[3])
			p.Op[i] = append(p.Op[i], (t[1]+t[2])/2)
			p.Ratio[i] = append(p.Ratio[i], (t[1]+t[2])/(t[0]+t[3]))
		}
	}
	return p, nil
}

// callsIn returns how many calls of op take about d.
func callsIn(op Op, d time.Duration) (int, error) {
	for n := 1; ; n *= 4 {
		start := time.Now()
		for range n {
			if err := op(); err != nil {
				return 0, err
			}
		}
		if took := time.Since(start); took >= d/8 {
			return max(1, int(float64(n)*float64(d)/float64(took))), nil
		}
	}
}

// Median returns the median of xs (the mean of the middle two when their
// number is even), or NaN when there are none. It does not change xs.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 0 {
		return (s[m-1] + s[m]) / 2
	}
	return s[m]
}

func nsPerOp(r testing.BenchmarkResult) float64 { return float64(r.T.Nanoseconds()) / float64(r.N) }

// Run measures everything and writes the tables to w.
func Run(w io.Writer, dir string) error {
	e, err := NewEnv(dir)
	if err != nil {
		return err
	}
	defer e.Close()

	rows, err := e.Compare()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Warm path, against a plain AES-256-GCM seal in the same run, on one P: medians of %d paired rounds of %v per call type;\n", PairedRounds, Slice)
	fmt.Fprintln(w, "a ratio is the median of the rounds' ratios. \"raw, v1 AD\" is the raw seal given as much associated data as the v1 format")
	fmt.Fprintln(w, "authenticates (58 B here): AES-GCM's own share of the format's cost. raw/raw, the baseline against itself, is the measure's own error.")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\traw ns/op\tEncrypt ns/op\tDecrypt ns/op\tScopeHandle Encrypt ns/op\tEncrypt/raw\tScopeHandle/raw\traw, v1 AD/raw\traw/raw\tEncrypt allocs/op\tDecrypt allocs/op\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.3fx\t%.3fx\t%.3fx\t%.3fx\t%.0f\t%.0f\t\n", r.Size, r.Raw, r.Enc, r.Dec, r.ScopeEnc,
			r.EncRatio, r.ScopeRatio, r.ADRatio, r.RawRatio, r.EncAllocs, r.DecAllocs)
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
