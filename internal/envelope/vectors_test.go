package envelope

import (
	"bytes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Regenerate the vectors with:
//
//	go test ./internal/envelope -run TestVectors -update
//
// The generator draws every key, id, nonce, salt and plaintext from a
// ChaCha8 stream with a fixed seed, so the files it writes are always the
// same bytes.
var update = flag.Bool("update", false, "rewrite the test vectors in testdata/")

// hexBytes is a []byte that JSON encodes as a lowercase hex string.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

func (h *hexBytes) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	*h = d
	return err
}

// vector is a vector of messages, wrapped DEKs and streams. For a wrapped
// DEK, key is the tenant key, plaintext the DEK and ciphertext the blob; for
// a stream, key is the DEK and ciphertext the whole stream.
type vector struct {
	Comment    string   `json:"comment"`
	Key        hexBytes `json:"key"`
	ID         hexBytes `json:"id"`
	Tenant     hexBytes `json:"tenant"`
	Scope      hexBytes `json:"scope"`
	AAD        hexBytes `json:"aad"`
	Plaintext  hexBytes `json:"plaintext"`
	Ciphertext hexBytes `json:"ciphertext"`
	// Error is empty for a valid vector, else the class of error a reader
	// must return: "auth", "truncated" (streams) or "format".
	Error string `json:"error,omitempty"`
}

func (v *vector) keyID() KeyID { return KeyID(v.ID) }

// deriveVector is a vector of DeriveTenantKey.
type deriveVector struct {
	Comment       string   `json:"comment"`
	CustomerShare hexBytes `json:"customer_share"`
	PlatformShare hexBytes `json:"platform_share"`
	Tenant        hexBytes `json:"tenant"`
	Kind          uint8    `json:"kind"`
	Epoch         uint32   `json:"epoch"`
	Key           hexBytes `json:"key"`
}

const (
	messageFile = "message.json"
	wrapFile    = "wrap.json"
	streamFile  = "stream.json"
	deriveFile  = "derive.json"
)

func loadVectors[V any](tb testing.TB, name string) []V {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("test vectors missing: %v; regenerate them with: go test ./internal/envelope -run TestVectors -update", err)
	}
	var vs []V
	if err := json.Unmarshal(b, &vs); err != nil {
		tb.Fatalf("testdata/%s: %v", name, err)
	}
	if len(vs) == 0 {
		tb.Fatalf("testdata/%s holds no vectors", name)
	}
	return vs
}

func writeVectors(t *testing.T, name string, vs any) {
	t.Helper()
	b, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// vectorRand is the deterministic randomness of the generator.
type vectorRand struct{ *rand.ChaCha8 }

func newVectorRand() vectorRand {
	return vectorRand{rand.NewChaCha8([32]byte([]byte("byok envelope v1 test vectors...")))}
}

func (r vectorRand) bytes(n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func TestVectors(t *testing.T) {
	if *update {
		r := newVectorRand()
		writeVectors(t, messageFile, genMessageVectors(r))
		writeVectors(t, wrapFile, genWrapVectors(r))
		writeVectors(t, streamFile, genStreamVectors(r))
		writeVectors(t, deriveFile, genDeriveVectors(r))
	}
	t.Run("message", func(t *testing.T) {
		for _, v := range loadVectors[vector](t, messageFile) {
			checkMessageVector(t, v)
		}
	})
	t.Run("wrap", func(t *testing.T) {
		for _, v := range loadVectors[vector](t, wrapFile) {
			checkWrapVector(t, v)
		}
	})
	t.Run("stream", func(t *testing.T) {
		for _, v := range loadVectors[vector](t, streamFile) {
			checkStreamVector(t, v)
		}
	})
	t.Run("derive", func(t *testing.T) {
		for _, v := range loadVectors[deriveVector](t, deriveFile) {
			k, err := DeriveTenantKey(v.CustomerShare, v.PlatformShare, string(v.Tenant), v.Kind, v.Epoch)
			if err != nil {
				t.Fatalf("%s: %v", v.Comment, err)
			}
			if !bytes.Equal(k, v.Key) {
				t.Errorf("%s: derived %x, want %x", v.Comment, k, v.Key)
			}
		}
	})
}

// checkErrorClass fails t unless err is of the class a vector names.
func checkErrorClass(t *testing.T, comment string, err error, class string) {
	t.Helper()
	var fe *FormatError
	ok := false
	switch class {
	case "auth":
		ok = err == ErrAuth
	case "truncated":
		ok = err == ErrTruncated
	case "format":
		ok = errors.As(err, &fe)
	default:
		t.Fatalf("%s: unknown error class %q", comment, class)
	}
	if !ok {
		t.Errorf("%s: got error %v, want class %q", comment, err, class)
	}
}

func checkMessageVector(t *testing.T, v vector) {
	t.Helper()
	aead := mustAEAD(t, v.Key)
	pt, err := Open(nil, aead, string(v.Tenant), string(v.Scope), v.Ciphertext, v.AAD)
	if v.Error != "" {
		checkErrorClass(t, v.Comment, err, v.Error)
		return
	}
	if err != nil {
		t.Fatalf("%s: Open: %v", v.Comment, err)
	}
	if !bytes.Equal(pt, v.Plaintext) {
		t.Errorf("%s: Open = %x, want %x", v.Comment, pt, v.Plaintext)
	}
	id, err := ParseID(v.Ciphertext)
	if err != nil || id != v.keyID() {
		t.Errorf("%s: ParseID = %v, %v; want %x", v.Comment, id, err, v.ID)
	}
	ct := seal(nil, aead, v.keyID(), v.Ciphertext[msgNonceOffset:msgHeaderSize], string(v.Tenant), string(v.Scope), v.Plaintext, v.AAD)
	if !bytes.Equal(ct, v.Ciphertext) {
		t.Errorf("%s: re-encryption differs:\n got %x\nwant %x", v.Comment, ct, v.Ciphertext)
	}
}

func checkWrapVector(t *testing.T, v vector) {
	t.Helper()
	tk := mustAEAD(t, v.Key)
	dek, err := UnwrapDEK(tk, v.keyID(), string(v.Tenant), string(v.Scope), v.Ciphertext)
	if v.Error != "" {
		checkErrorClass(t, v.Comment, err, v.Error)
		return
	}
	if err != nil {
		t.Fatalf("%s: UnwrapDEK: %v", v.Comment, err)
	}
	if !bytes.Equal(dek, v.Plaintext) {
		t.Errorf("%s: UnwrapDEK = %x, want %x", v.Comment, dek, v.Plaintext)
	}
	w := wrapDEK(tk, v.keyID(), v.Ciphertext[wrapNonceOffset:wrapHeaderSize], string(v.Tenant), string(v.Scope), v.Plaintext)
	if !bytes.Equal(w, v.Ciphertext) {
		t.Errorf("%s: re-wrap differs:\n got %x\nwant %x", v.Comment, w, v.Ciphertext)
	}
}

// readStream decrypts a whole stream, returning what the reader released
// before it failed.
func readStream(stream, dek []byte, tenant, scope string, aad []byte) ([]byte, error) {
	src := bytes.NewReader(stream)
	h, err := ReadStreamHeader(src)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(src, h, dek, tenant, scope, aad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func checkStreamVector(t *testing.T, v vector) {
	t.Helper()
	pt, err := readStream(v.Ciphertext, v.Key, string(v.Tenant), string(v.Scope), v.AAD)
	if v.Error != "" {
		checkErrorClass(t, v.Comment, err, v.Error)
		return
	}
	if err != nil {
		t.Fatalf("%s: reading: %v", v.Comment, err)
	}
	if !bytes.Equal(pt, v.Plaintext) {
		t.Errorf("%s: plaintext differs (%d bytes, want %d)", v.Comment, len(pt), len(v.Plaintext))
	}
	h, err := ReadStreamHeader(bytes.NewReader(v.Ciphertext))
	if err != nil || h.ID() != v.keyID() {
		t.Errorf("%s: ReadStreamHeader = %v, %v; want id %x", v.Comment, h.ID(), err, v.ID)
	}
	ct := writeStream(t, bytes.NewReader(v.Ciphertext[streamSaltOffset:StreamHeaderSize]), v.Key, v.keyID(),
		string(v.Tenant), string(v.Scope), v.AAD, v.Plaintext, len(v.Plaintext))
	if !bytes.Equal(ct, v.Ciphertext) {
		t.Errorf("%s: re-encryption differs (%d bytes, want %d)", v.Comment, len(ct), len(v.Ciphertext))
	}
}

// writeStream encrypts plaintext into a stream with the salt read from rnd,
// in writes of at most chunk bytes.
func writeStream(t testing.TB, rnd io.Reader, dek []byte, id KeyID, tenant, scope string, aad, plaintext []byte, chunk int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newWriter(&buf, rnd, dek, id, tenant, scope, aad)
	if err != nil {
		t.Fatal(err)
	}
	for p := plaintext; len(p) > 0; {
		n := min(len(p), max(chunk, 1))
		if m, err := w.Write(p[:n]); m != n || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", m, err, n)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustAEAD(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	a, err := NewAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Generators. Each valid vector draws its key, id, nonce or salt and
// plaintext from r; the invalid ones alter a valid one.

type msgCase struct {
	comment       string
	tenant, scope string
	aad           []byte
	size          int
}

func genMessageVectors(r vectorRand) []vector {
	cases := []msgCase{
		{"empty plaintext, no aad", "tenant-a", "app-1", nil, 0},
		{"16 bytes with aad", "tenant-a", "app-1", []byte("row 42"), 16},
		{"1 KiB, 1-byte ids", "t", "s", []byte{0}, 1024},
		{"255-byte ids, UTF-8 scope", string(bytes.Repeat([]byte("T"), 255)), "bot/ünïcødé", []byte("aad"), 100},
		{"4 KiB", "tenant-b", "archive", nil, 4 << 10},
	}
	var vs []vector
	for _, c := range cases {
		key, id, nonce, pt := r.bytes(KeySize), KeyID(r.bytes(idSize)), r.bytes(nonceSize), r.bytes(c.size)
		aead, _ := NewAEAD(key)
		vs = append(vs, vector{
			Comment: c.comment, Key: key, ID: id[:], Tenant: []byte(c.tenant), Scope: []byte(c.scope), AAD: c.aad,
			Plaintext: pt, Ciphertext: seal(nil, aead, id, nonce, c.tenant, c.scope, pt, c.aad),
		})
	}
	good := vs[1]
	bad := func(comment, class string, edit func(v *vector)) {
		v := good
		v.Comment, v.Error, v.Plaintext = comment, class, nil
		v.Ciphertext = bytes.Clone(good.Ciphertext)
		edit(&v)
		vs = append(vs, v)
	}
	bad("wrong tenant", "auth", func(v *vector) { v.Tenant = []byte("tenant-b") })
	bad("wrong scope", "auth", func(v *vector) { v.Scope = []byte("app-2") })
	bad("wrong aad", "auth", func(v *vector) { v.AAD = []byte("row 43") })
	bad("altered tag", "auth", func(v *vector) { v.Ciphertext[len(v.Ciphertext)-1] ^= 1 })
	bad("altered key id", "auth", func(v *vector) { v.Ciphertext[msgIDOffset] ^= 0x80 })
	bad("unknown version 2", "format", func(v *vector) { v.Ciphertext[4] = 2 })
	bad("stream type byte", "format", func(v *vector) { v.Ciphertext[5] = typeStream })
	bad("bad magic", "format", func(v *vector) { v.Ciphertext[0] = 'B' })
	bad("truncated to 49 bytes", "format", func(v *vector) { v.Ciphertext = v.Ciphertext[:Overhead-1] })
	return vs
}

func genWrapVectors(r vectorRand) []vector {
	cases := []struct{ comment, tenant, scope string }{
		{"platform scope", "tenant-a", "app-1"},
		{"1-byte ids", "t", "s"},
		{"255-byte ids", string(bytes.Repeat([]byte("t"), 255)), string(bytes.Repeat([]byte("s"), 255))},
	}
	var vs []vector
	for _, c := range cases {
		tk, id, nonce, dek := r.bytes(KeySize), KeyID(r.bytes(idSize)), r.bytes(nonceSize), r.bytes(KeySize)
		aead, _ := NewAEAD(tk)
		vs = append(vs, vector{
			Comment: c.comment, Key: tk, ID: id[:], Tenant: []byte(c.tenant), Scope: []byte(c.scope),
			Plaintext: dek, Ciphertext: wrapDEK(aead, id, nonce, c.tenant, c.scope, dek),
		})
	}
	good := vs[0]
	bad := func(comment, class string, edit func(v *vector)) {
		v := good
		v.Comment, v.Error, v.Plaintext = comment, class, nil
		v.Ciphertext = bytes.Clone(good.Ciphertext)
		edit(&v)
		vs = append(vs, v)
	}
	bad("wrong DEK id", "auth", func(v *vector) { v.ID = bytes.Repeat([]byte{0}, idSize) })
	bad("wrong scope", "auth", func(v *vector) { v.Scope = []byte("app-2") })
	bad("one byte too long", "format", func(v *vector) { v.Ciphertext = append(v.Ciphertext, 0) })
	bad("message type byte", "format", func(v *vector) { v.Ciphertext[5] = typeMessage })
	return vs
}

func genStreamVectors(r vectorRand) []vector {
	cases := []msgCase{
		{"empty stream", "tenant-a", "app-1", nil, 0},
		{"1 byte with aad", "tenant-a", "app-1", []byte("file 7"), 1},
		{"1000 bytes, UTF-8 tenant", "locataire-é", "bot", []byte{1, 2, 3}, 1000},
		{"exactly one segment (64 KiB)", "tenant-b", "archive", nil, SegmentSize},
		{"one segment and one byte (64 KiB + 1)", "tenant-b", "archive", []byte("x"), SegmentSize + 1},
	}
	var vs []vector
	for _, c := range cases {
		key, id, salt, pt := r.bytes(KeySize), KeyID(r.bytes(idSize)), r.bytes(saltSize), r.bytes(c.size)
		var buf bytes.Buffer
		w, _ := newWriter(&buf, bytes.NewReader(salt), key, id, c.tenant, c.scope, c.aad)
		w.Write(pt)
		w.Close()
		vs = append(vs, vector{
			Comment: c.comment, Key: key, ID: id[:], Tenant: []byte(c.tenant), Scope: []byte(c.scope), AAD: c.aad,
			Plaintext: pt, Ciphertext: buf.Bytes(),
		})
	}
	bad := func(comment, class string, edit func(v *vector)) {
		v := vs[2] // 1000 bytes
		if class == "truncated" {
			v = vs[4] // two segments
		}
		v.Comment, v.Error, v.Plaintext = comment, class, nil
		v.Ciphertext = bytes.Clone(v.Ciphertext)
		edit(&v)
		vs = append(vs, v)
	}
	bad("truncated at the segment boundary", "truncated", func(v *vector) {
		v.Ciphertext = v.Ciphertext[:StreamHeaderSize+encryptedSegment]
	})
	bad("truncated inside the final segment", "auth", func(v *vector) { v.Ciphertext = v.Ciphertext[:len(v.Ciphertext)-1] })
	bad("header only", "truncated", func(v *vector) { v.Ciphertext = v.Ciphertext[:StreamHeaderSize] })
	bad("trailing byte", "auth", func(v *vector) { v.Ciphertext = append(v.Ciphertext, 0) })
	bad("wrong aad", "auth", func(v *vector) { v.AAD = []byte{1, 2, 4} })
	bad("unknown version 2", "format", func(v *vector) { v.Ciphertext[4] = 2 })
	return vs
}

func genDeriveVectors(r vectorRand) []deriveVector {
	cases := []struct {
		comment string
		tenant  string
		kind    uint8
		epoch   uint32
	}{
		{"platform-managed, epoch 1", "tenant-a", PlatformManaged, 1},
		{"customer-managed, epoch 1", "tenant-a", CustomerManaged, 1},
		{"customer-managed, epoch 2", "tenant-a", CustomerManaged, 2},
		{"255-byte tenant, max epoch", string(bytes.Repeat([]byte("t"), 255)), CustomerManaged, 1<<32 - 1},
	}
	var vs []deriveVector
	for _, c := range cases {
		cs, ps := r.bytes(KeySize), r.bytes(KeySize)
		k, _ := DeriveTenantKey(cs, ps, c.tenant, c.kind, c.epoch)
		vs = append(vs, deriveVector{
			Comment: c.comment, CustomerShare: cs, PlatformShare: ps, Tenant: []byte(c.tenant),
			Kind: c.kind, Epoch: c.epoch, Key: k,
		})
	}
	return vs
}
