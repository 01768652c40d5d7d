package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func rewrapKeys(t testing.TB) (from, to []byte) {
	from, to = make([]byte, KeySize), make([]byte, KeySize)
	rand.Read(from)
	rand.Read(to)
	return from, to
}

// Rewrap makes what WrapDEK makes under the new key: it unwraps there to
// the same DEK, for the same id, tenant and scope only; its results stay
// distinct across calls.
func TestRewrap(t *testing.T) {
	fk, tk := rewrapKeys(t)
	from, to := mustAEAD(t, fk), mustAEAD(t, tk)
	var r Rewrapper
	type done struct {
		id      KeyID
		scope   string
		dek, rw []byte
	}
	var all []done
	for i := range 3*rewrapBlock + 5 { // results cut from several blocks
		var id KeyID
		rand.Read(id[:])
		dek := make([]byte, KeySize)
		rand.Read(dek)
		scope := []string{"s", "mail-2026", string(bytes.Repeat([]byte("x"), 255))}[i%3]
		w := WrapDEK(from, id, "acme", scope, dek)
		rw, err := r.Rewrap(from, to, id, "acme", scope, w)
		if err != nil {
			t.Fatal(err)
		}
		if len(rw) != WrappedDEKSize || cap(rw) != WrappedDEKSize || !bytes.Equal(rw[:prefixSize], w[:prefixSize]) {
			t.Fatalf("rewrapped DEK: %d bytes (cap %d), prefix %x; want %d bytes, prefix %x", len(rw), cap(rw), rw[:prefixSize], WrappedDEKSize, w[:prefixSize])
		}
		if bytes.Equal(rw[wrapNonceOffset:wrapHeaderSize], w[wrapNonceOffset:wrapHeaderSize]) {
			t.Fatal("rewrapped DEK reuses the old nonce")
		}
		if !allZero(r.dek[:cap(r.dek)]) {
			t.Fatal("the unwrapped DEK stayed in the Rewrapper's buffer")
		}
		all = append(all, done{id, scope, dek, rw})
	}
	for _, d := range all {
		got, err := UnwrapDEK(to, d.id, "acme", d.scope, d.rw)
		if err != nil || !bytes.Equal(got, d.dek) {
			t.Fatalf("rewrapped DEK unwraps under the new key to %x, %v; want %x", got, err, d.dek)
		}
		if _, err := UnwrapDEK(to, d.id, "acme", "elsewhere", d.rw); !errors.Is(err, ErrAuth) {
			t.Fatalf("rewrapped DEK under another scope: %v, want ErrAuth", err)
		}
		if _, err := UnwrapDEK(from, d.id, "acme", d.scope, d.rw); !errors.Is(err, ErrAuth) {
			t.Fatalf("rewrapped DEK under the old key: %v, want ErrAuth", err)
		}
	}
}

func TestRewrapErrors(t *testing.T) {
	fk, tk := rewrapKeys(t)
	from, to := mustAEAD(t, fk), mustAEAD(t, tk)
	var id KeyID
	w := WrapDEK(from, id, "acme", "s", make([]byte, KeySize))
	tampered := bytes.Clone(w)
	tampered[len(tampered)-1] ^= 1
	var r Rewrapper
	var input *InputError
	var format *FormatError
	for _, tc := range []struct {
		name string
		err  error
		is   func(error) bool
	}{
		{"wrong tenant", second(r.Rewrap(from, to, id, "globex", "s", w)), func(err error) bool { return errors.Is(err, ErrAuth) }},
		{"wrong key", second(r.Rewrap(to, to, id, "acme", "s", w)), func(err error) bool { return errors.Is(err, ErrAuth) }},
		{"tampered", second(r.Rewrap(from, to, id, "acme", "s", tampered)), func(err error) bool { return errors.Is(err, ErrAuth) }},
		{"truncated", second(r.Rewrap(from, to, id, "acme", "s", w[:len(w)-1])), func(err error) bool { return errors.As(err, &format) }},
		{"too long", second(r.Rewrap(from, to, id, "acme", "s", append(bytes.Clone(w), 0))), func(err error) bool { return errors.As(err, &format) }},
		{"empty scope", second(r.Rewrap(from, to, id, "acme", "", w)), func(err error) bool { return errors.As(err, &input) }},
		{"no destination key", second(r.Rewrap(from, nil, id, "acme", "s", w)), func(err error) bool { return errors.As(err, &input) }},
	} {
		if !tc.is(tc.err) {
			t.Errorf("%s: %v", tc.name, tc.err)
		}
	}
}

// A Rewrapper allocates a block per rewrapBlock results and nothing else.
func TestRewrapAllocs(t *testing.T) {
	fk, tk := rewrapKeys(t)
	from, to := mustAEAD(t, fk), mustAEAD(t, tk)
	var id KeyID
	w := WrapDEK(from, id, "acme", "mail", make([]byte, KeySize))
	var r Rewrapper
	if _, err := r.Rewrap(from, to, id, "acme", "mail", w); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(rewrapBlock*10, func() { r.Rewrap(from, to, id, "acme", "mail", w) }); n != 0 {
		t.Errorf("Rewrap: %v allocations per call, want 0 (one block per %d)", n, rewrapBlock)
	}
}

// Whatever the bytes, Rewrap fails cleanly or gives a DEK that unwraps
// under the new key to what the old one unwrapped to.
func FuzzRewrap(f *testing.F) {
	fk, tk := rewrapKeys(f)
	from, to := mustAEAD(f, fk), mustAEAD(f, tk)
	var id KeyID
	f.Add(WrapDEK(from, id, "acme", "s", make([]byte, KeySize)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, wrapped []byte) {
		var r Rewrapper
		rw, err := r.Rewrap(from, to, id, "acme", "s", wrapped)
		want, werr := UnwrapDEK(from, id, "acme", "s", wrapped)
		if (err == nil) != (werr == nil) {
			t.Fatalf("Rewrap: %v; UnwrapDEK: %v", err, werr)
		}
		if err != nil {
			return
		}
		got, err := UnwrapDEK(to, id, "acme", "s", rw)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("rewrapped DEK unwraps to %x, %v; want %x", got, err, want)
		}
	})
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
