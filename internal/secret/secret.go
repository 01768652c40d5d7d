// Package secret holds key bytes in a type that never shows them: printing,
// logging or marshalling a [Key] yields "[redacted]". Keys compare in
// constant time, can be wiped, and are wiped when the garbage collector
// drops them. [TokenEqual] compares bearer tokens in constant time.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"runtime"
)

// Redacted is what a Key shows instead of its bytes.
const Redacted = "[redacted]"

// Key is secret key material: a DEK, a tenant key or a share. Its zero value
// is an empty key. Copies of a Key share its bytes, so wiping one wipes all.
//
// A Key prints as [Redacted] with every fmt verb, and so do its JSON, text
// and slog forms. fmt cannot call the methods of a Key in an unexported
// field and prints it by reflection instead; so the bytes sit two pointers
// deep, where fmt, even in its bad-verb fallback, shows only an address.
// A Key is safe for concurrent use except [Key.Wipe], which must not run
// concurrently with any other use.
type Key struct {
	p *keyBytes
}

type keyBytes struct {
	b *[]byte
}

// New returns a Key holding a copy of b. The caller may wipe b afterwards.
func New(b []byte) Key {
	return newKey(append(make([]byte, 0, len(b)), b...))
}

// Generate returns a Key of n random bytes from crypto/rand.
func Generate(n int) Key {
	b := make([]byte, n)
	rand.Read(b)
	return newKey(b)
}

func newKey(b []byte) Key {
	p := &keyBytes{b: &b}
	// Wipe the bytes when the last copy of the Key is dropped. The cleanup
	// holds the byte slice, not p, so p can still be collected.
	runtime.AddCleanup(p, func(b []byte) { clear(b) }, b)
	return Key{p: p}
}

// Bytes returns the key bytes themselves, not a copy, to hand to a cipher.
// The caller must not modify them, keep them beyond the Key's use, or let
// them reach a log or an error. A zero or wiped Key returns nil.
func (k Key) Bytes() []byte {
	if k.p == nil {
		return nil
	}
	return *k.p.b
}

// Len returns the number of key bytes; 0 for a zero or wiped Key.
func (k Key) Len() int { return len(k.Bytes()) }

// Equal reports whether k and o hold the same bytes. It takes a time that
// depends on their lengths, which are not secret, and not on their
// contents.
func (k Key) Equal(o Key) bool {
	return subtle.ConstantTimeCompare(k.Bytes(), o.Bytes()) == 1
}

// Wipe overwrites the key bytes with zeros and empties the Key and all its
// copies. Bytes returned earlier by [Key.Bytes] are zeroed too.
func (k Key) Wipe() {
	if k.p != nil {
		clear(*k.p.b)
		*k.p.b = nil
	}
}

// String returns [Redacted].
func (Key) String() string { return Redacted }

// GoString returns [Redacted], for the %#v verb.
func (Key) GoString() string { return Redacted }

// Format writes [Redacted] whatever the verb and flags.
func (Key) Format(f fmt.State, _ rune) { io.WriteString(f, Redacted) }

// MarshalJSON returns the JSON string "[redacted]".
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns [Redacted].
func (Key) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue returns [Redacted] as a slog string value.
func (Key) LogValue() slog.Value { return slog.StringValue(Redacted) }

var (
	_ fmt.Formatter  = Key{}
	_ fmt.GoStringer = Key{}
	_ slog.LogValuer = Key{}
)

// TokenEqual reports whether the token got equals want, for checking a
// bearer token or an API key. It compares SHA-256 digests in constant time,
// so its timing reveals neither the contents nor the length of want.
func TokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
