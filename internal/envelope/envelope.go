// Package envelope is the cryptographic core of byok: the v1 byte formats
// of single-shot messages, streams and wrapped data encryption keys (DEKs),
// and the derivation of tenant keys from their two shares.
//
// The package is pure: it holds no keys and does no I/O besides the
// [io.Reader] and [io.Writer] it is given. It imports only the standard
// library. The formats are specified in docs/format.md, precisely enough to
// write a compatible implementation; testdata/ holds test vectors.
//
// # Formats
//
// Every byte string this package produces starts with the magic "byok", a
// version byte (1) and a type byte: 1 for a single-shot message ([Seal],
// [Open]), 2 for a stream ([NewWriter], [NewReader]) and 3 for a wrapped
// DEK ([WrapDEK], [UnwrapDEK]). Each parser rejects the others' bytes, and
// bytes of an unknown version, with a [*FormatError] that says so.
//
// # Errors
//
// Authentication failures, whatever their cause (altered bytes, wrong key,
// wrong tenant, scope or associated data), return [ErrAuth] and nothing
// more, so that an error is no oracle. A stream that ends before its final
// segment returns [ErrTruncated] where that can be told apart from
// tampering; it wraps ErrAuth. Bytes that are not a v1 ciphertext of the
// expected type return a [*FormatError]; arguments out of range return an
// [*InputError]. No error, panic or String method ever contains key bytes.
//
// # Identifiers
//
// Tenant and scope ids are byte strings of 1 to [MaxIDLen] bytes. Functions
// that return an error check them; [Seal] and [WrapDEK], which return none,
// panic on invalid ids, so callers validate first with [ValidateIDs].
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
)

// KeyID is a DEK's random id. It appears in the header of every message and
// stream encrypted under that DEK, so that a reader can look the DEK up.
type KeyID [16]byte

// String returns the id in lowercase hex. A KeyID is not secret.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

const (
	// KeySize is the size of every key this package takes or returns:
	// DEKs, tenant keys and tenant-key shares (AES-256).
	KeySize = 32
	// MaxIDLen is the maximum length of a tenant or scope id, in bytes.
	// Ids are at least 1 byte long.
	MaxIDLen = 255
)

// Kinds of tenant key, as bound by [DeriveTenantKey].
const (
	// PlatformManaged: the customer share is wrapped by the platform root
	// key.
	PlatformManaged uint8 = 1
	// CustomerManaged: the customer share is wrapped by the tenant's own key.
	CustomerManaged uint8 = 2
)

// Header fields common to every format (docs/format.md, "Common prefix").
const (
	magic      = "byok"
	version1   = 1
	prefixSize = len(magic) + 2 // magic, version, type

	typeMessage    = 1
	typeStream     = 2
	typeWrappedDEK = 3
	typeTenantKey  = 4 // never a blob: only the label of the HKDF info

	nonceSize = 12 // AES-GCM standard nonce
	tagSize   = 16 // AES-GCM tag
	idSize    = len(KeyID{})
)

// ErrAuth is returned when a ciphertext, a stream segment or a wrapped DEK
// fails authentication. It carries no detail on purpose.
var ErrAuth = errors.New("envelope: message authentication failed")

// FormatError says why bytes are not a v1 byok ciphertext of the expected
// type: too short, no byok magic, an unknown version or the wrong type.
type FormatError struct {
	Reason string
}

func (e *FormatError) Error() string { return "envelope: " + e.Reason }

// InputError says which argument is out of range and why.
type InputError struct {
	Arg    string // "tenant", "scope", "key", "dek", "customer share", ...
	Reason string // e.g. "is empty; ids are 1 to 255 bytes"
}

func (e *InputError) Error() string { return "envelope: " + e.Arg + " " + e.Reason }

// NewAEAD returns the AES-256-GCM AEAD (12-byte nonces, 16-byte tags) for a
// 32-byte key: a DEK for [Seal] and [Open], or a tenant key for [WrapDEK]
// and [UnwrapDEK]. It returns an [*InputError] if the key is not 32 bytes.
func NewAEAD(key []byte) (cipher.AEAD, error) {
	if err := checkKey("key", key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("envelope: creating AES cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// ValidateIDs returns an [*InputError] if tenant or scope is empty or longer
// than [MaxIDLen] bytes. Callers of [Seal] and [WrapDEK] use it first.
func ValidateIDs(tenant, scope string) error {
	if err := checkID("tenant id", tenant); err != nil {
		return err
	}
	return checkID("scope id", scope)
}

// checkID checks what the format needs of an id: 1 to MaxIDLen bytes.
// Which ids a service accepts (printable, none of / ? # %, not . or ..)
// is byok.CheckID's rule, which every caller applies before it gets here.
func checkID(arg, id string) error {
	switch {
	case id == "":
		return &InputError{Arg: arg, Reason: fmt.Sprintf("is empty; ids are 1 to %d bytes", MaxIDLen)}
	case len(id) > MaxIDLen:
		return &InputError{Arg: arg, Reason: fmt.Sprintf("is %d bytes; the limit is %d", len(id), MaxIDLen)}
	}
	return nil
}

func checkKey(arg string, key []byte) error {
	if len(key) != KeySize {
		return &InputError{Arg: arg, Reason: fmt.Sprintf("is %d bytes; it must be %d (AES-256)", len(key), KeySize)}
	}
	return nil
}

// checkAEAD reports whether aead has the shape of the AES-GCM of NewAEAD.
func checkAEAD(aead cipher.AEAD) error {
	if aead == nil || aead.NonceSize() != nonceSize || aead.Overhead() != tagSize {
		return &InputError{Arg: "aead", Reason: "is not AES-GCM with 12-byte nonces and 16-byte tags; create it with NewAEAD"}
	}
	return nil
}

// mustValid panics, for the functions that return no error, on arguments
// that callers must have validated. The message names the argument only.
func mustValid(aead cipher.AEAD, tenant, scope string) {
	if err := checkAEAD(aead); err != nil {
		panic(err.Error())
	}
	if err := ValidateIDs(tenant, scope); err != nil {
		panic(err.Error())
	}
}

func typeName(t byte) string {
	switch t {
	case typeMessage:
		return "single-shot message"
	case typeStream:
		return "stream"
	case typeWrappedDEK:
		return "wrapped DEK"
	}
	return fmt.Sprintf("object of unknown type %d", t)
}

// hints say how to read each type, for FormatErrors on the wrong type.
var hints = map[byte]string{
	typeMessage:    "open it with Open",
	typeStream:     "read it with ReadStreamHeader and NewReader",
	typeWrappedDEK: "unwrap it with UnwrapDEK",
}

// checkPrefix validates the common prefix of b and its length, in the order
// the spec gives: magic, then length of the prefix, version, type, and
// finally the minimum length minLen of the expected type.
func checkPrefix(b []byte, want byte, minLen int) error {
	what := typeName(want)
	if n := min(len(b), len(magic)); string(b[:n]) != magic[:n] {
		return &FormatError{Reason: fmt.Sprintf("not a byok %s: it does not start with the magic bytes %q", what, magic)}
	}
	if len(b) < prefixSize {
		return &FormatError{Reason: fmt.Sprintf("%s too short: %d bytes, a v%d %s has at least %d", what, len(b), version1, what, minLen)}
	}
	if v := b[len(magic)]; v != version1 {
		return &FormatError{Reason: fmt.Sprintf("unknown format version %d; this library reads version %d only: upgrade byok to read it", v, version1)}
	}
	if t := b[len(magic)+1]; t != want {
		r := fmt.Sprintf("this is a byok %s, not a %s", typeName(t), what)
		if h, ok := hints[t]; ok {
			r += ": " + h
		}
		return &FormatError{Reason: r}
	}
	if len(b) < minLen {
		return &FormatError{Reason: fmt.Sprintf("%s too short: %d bytes, a v%d %s has at least %d: was it truncated?", what, len(b), version1, what, minLen)}
	}
	return nil
}

func appendPrefix(b []byte, typ byte) []byte {
	b = append(b, magic...)
	return append(b, version1, typ)
}

// appendContext appends the length-prefixed tenant and scope ids and the
// caller's associated data, prefixed by its 64-bit length.
func appendContext(b []byte, tenant, scope string, aad []byte) []byte {
	b = append(b, byte(len(tenant)))
	b = append(b, tenant...)
	b = append(b, byte(len(scope)))
	b = append(b, scope...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(aad)))
	return append(b, aad...)
}

// adPool recycles the buffers in which Seal and Open build the associated
// data, so that they do not allocate. Buffers that grew past maxPooledAD
// (caller aad over 64 KiB) are left to the garbage collector.
var adPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledAD = 128 << 10

func getAD() *[]byte { return adPool.Get().(*[]byte) }

func putAD(p *[]byte) {
	if cap(*p) <= maxPooledAD {
		*p = (*p)[:0]
		adPool.Put(p)
	}
}
