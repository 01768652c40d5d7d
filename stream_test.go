package byok_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

func (f *fixture) encryptStream(tenant, scope string, pt []byte) []byte {
	f.t.Helper()
	var buf bytes.Buffer
	w, err := f.kr.EncryptStream(f.ctx, tenant, scope, &buf, []byte("aad"))
	if err != nil {
		f.t.Fatal(err)
	}
	// Odd-sized writes cross segment boundaries.
	for rest := pt; len(rest) > 0; {
		n := min(len(rest), 10007)
		if _, err := w.Write(rest[:n]); err != nil {
			f.t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		f.t.Fatal(err)
	}
	return buf.Bytes()
}

func (f *fixture) decryptStream(tenant, scope string, ct []byte) ([]byte, error) {
	r, err := f.kr.DecryptStream(f.ctx, tenant, scope, bytes.NewReader(ct), []byte("aad"))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestStreamRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	for _, n := range []int{0, 1, 64 << 10, 64<<10 + 1, 1<<20 + 3} {
		pt := make([]byte, n)
		rand.Read(pt)
		ct := f.encryptStream("acme", "files", pt)
		got, err := f.decryptStream("acme", "files", ct)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: round trip changed the data", n)
		}
	}
}

func TestStreamRejectsTamperingAndTruncation(t *testing.T) {
	f := newFixture(t)
	f.tenant("acme", byok.Grace)
	f.tenant("globex", byok.Grace)
	pt := make([]byte, 200<<10)
	rand.Read(pt)
	ct := f.encryptStream("acme", "files", pt)

	flipped := bytes.Clone(ct)
	flipped[len(flipped)/2] ^= 1
	cases := map[string]struct {
		tenant, scope string
		ct            []byte
	}{
		"truncated at the end":    {"acme", "files", ct[:len(ct)-1]},
		"truncated in the middle": {"acme", "files", ct[:len(ct)/2]},
		"bit flipped":             {"acme", "files", flipped},
		"other scope":             {"acme", "photos", ct},
		"other tenant":            {"globex", "files", ct},
		"trailing bytes":          {"acme", "files", append(bytes.Clone(ct), 0)},
	}
	for name, c := range cases {
		got, err := f.decryptStream(c.tenant, c.scope, c.ct)
		if !errors.Is(err, byok.ErrDecrypt) {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
		}
		if len(got) > 0 && !bytes.Equal(got, pt[:len(got)]) {
			t.Errorf("%s: released bytes that are not the plaintext", name)
		}
	}
	if _, err := f.decryptStream("acme", "files", f.encrypt("acme", "files", "single shot")); !errors.Is(err, byok.ErrFormat) {
		t.Errorf("a single-shot ciphertext as a stream: %v, want ErrFormat", err)
	}
}

// A stream in progress stops once its tenant key is revoked.
func TestStreamStopsOnRevocation(t *testing.T) {
	f := newFixture(t)
	keyID := f.byokTenant("acme", byok.Grace)
	var buf bytes.Buffer
	w, err := f.kr.EncryptStream(f.ctx, "acme", "covered", &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	f.cmk.FailKey(keyID, kms.Authoritative, kms.ReasonNotFound)
	f.clock.Advance(checkInterval)
	if _, err := w.Write([]byte("more")); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Write after revocation = %v, want ErrKeyRevoked", err)
	}
	if err := w.Close(); !errors.Is(err, byok.ErrKeyRevoked) {
		t.Fatalf("Close after revocation = %v, want ErrKeyRevoked", err)
	}
}
