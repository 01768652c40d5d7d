package envelope

import (
	"bytes"
	"io"
	"testing"
)

var benchSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

var benchAAD = []byte("row 42")

// BenchmarkSeal seals into a pre-sized dst: it must report 0 allocs/op.
func BenchmarkSeal(b *testing.B) {
	aead := mustAEAD(b, testKey)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			pt := make([]byte, s.n)
			dst := make([]byte, 0, s.n+Overhead)
			b.ReportAllocs()
			b.SetBytes(int64(s.n))
			for b.Loop() {
				dst = Seal(dst[:0], aead, testID, "tenant", "scope", pt, benchAAD)
			}
		})
	}
}

// BenchmarkOpen opens into a pre-sized dst.
func BenchmarkOpen(b *testing.B) {
	aead := mustAEAD(b, testKey)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			ct := Seal(nil, aead, testID, "tenant", "scope", make([]byte, s.n), benchAAD)
			dst := make([]byte, 0, s.n)
			b.ReportAllocs()
			b.SetBytes(int64(s.n))
			for b.Loop() {
				var err error
				if dst, err = Open(dst[:0], aead, "tenant", "scope", ct, benchAAD); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStream writes and reads a 1 MiB stream, key derivation included.
func BenchmarkStream(b *testing.B) {
	const n = 1 << 20
	pt := make([]byte, n)
	b.Run("write/1MiB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(n)
		for b.Loop() {
			w, err := NewWriter(io.Discard, testKey, testID, "tenant", "scope", benchAAD)
			if err != nil {
				b.Fatal(err)
			}
			w.Write(pt)
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read/1MiB", func(b *testing.B) {
		var buf bytes.Buffer
		w, _ := NewWriter(&buf, testKey, testID, "tenant", "scope", benchAAD)
		w.Write(pt)
		w.Close()
		s := buf.Bytes()
		b.ReportAllocs()
		b.SetBytes(n)
		for b.Loop() {
			src := bytes.NewReader(s)
			h, err := ReadStreamHeader(src)
			if err != nil {
				b.Fatal(err)
			}
			r, err := NewReader(src, h, testKey, "tenant", "scope", benchAAD)
			if err != nil {
				b.Fatal(err)
			}
			if m, err := io.Copy(io.Discard, r); m != n || err != nil {
				b.Fatal(m, err)
			}
		}
	})
}
