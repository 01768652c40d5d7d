// Package local is a [kms.Provider] whose key is an AES-256 key held by the
// platform itself: byok's platform root key (PRK). It wraps the platform
// share of every tenant key, and the customer share of tenants without a
// key of their own.
//
// # Key ids
//
// A [Key] holds one named key with one or more versions. Its versionless id
// is "local:NAME" (e.g. "local:platform"); a version's id is "local:NAME/vN"
// with N = 1, 2, ... (e.g. "local:platform/v3"). [Key.Wrap] accepts either
// and returns the versioned id; [Key.Unwrap] needs the versioned id that
// Wrap returned. [Open] names a new key "platform". A malformed id fails
// with class [kms.Invalid]; another name or an unknown version fails with
// class [kms.Authoritative] and reason [kms.ReasonNotFound].
//
// # Wrapping
//
// Wrap seals with AES-256-GCM under the version's key, with a random 96-bit
// nonce and the versioned key id as associated data, so a value wrapped
// under one key or version never unwraps under another. The ciphertext is
// nonce (12 bytes) ‖ sealed plaintext ‖ tag (16 bytes); the algorithm is
// "A256GCM". Random nonces bound a version to about 2^32 wraps; byok wraps
// two shares per tenant key epoch, far below that.
//
// # Key file
//
// The key is kept in a UTF-8 text file, one entry per line:
//
//	byok-local-key v1
//	# comments and blank lines are ignored
//	name platform
//	key 1 <32 random bytes, standard base64>
//	key 2 <...>
//
// The first entry is the format version line. "name" gives the key's name
// (letters, digits, '.', '_' and '-', at most 64 bytes, starting with a
// letter or digit); "key N" gives version N, and the highest N is the
// current version. Entries may also be separated by ';' so that the content
// fits on one line of an environment variable. A file can be written by
// hand:
//
//	(umask 077; printf 'byok-local-key v1\nname platform\nkey 1 %s\n' "$(head -c 32 /dev/urandom | base64)" > prk)
//
// The name and every version's key are bound into the values they wrapped:
// never change them, and remove a version only when nothing wrapped under
// it remains. Keep a backup: a lost key file makes every tenant's data
// unreadable.
//
// [Open] creates the file on first use with mode 0600 and, on Unix,
// refuses a file that its group or others may read or write. [Key.Rotate]
// adds a version and rewrites the file atomically (temporary file, fsync,
// rename). A Key asked for a version it does not hold reads its file again
// first, so that it finds a version another process added. The package
// never reads environment variables: a caller that keeps the content in
// one passes it to [Parse].
package local

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/openbyok/byok/kms"
)

// DefaultName is the name [Open] gives a key it creates.
const DefaultName = "platform"

// Algorithm is the [kms.Wrapped] algorithm of this provider.
const Algorithm = "A256GCM"

// keySize is the size of a version's key in bytes.
const keySize = 32

// idPrefix starts every key id of this provider.
const idPrefix = "local:"

var _ kms.Provider = (*Key)(nil)

// Key is a named AES-256 key with versions: a [kms.Provider] for its own
// key ids. It is safe for concurrent use. Create it with [Open] or [Parse].
//
// Formatting a Key with fmt or log/slog shows its id, never key bytes.
type Key struct {
	name string
	path string // the key file; "" for a Key from Parse

	mu       sync.RWMutex
	versions map[uint32]*version
	current  uint32
	file     os.FileInfo // the key file as last read; nil without a file
}

// version is one version of a Key. It is only ever held by pointer, so
// fmt never prints its fields.
type version struct {
	raw  [keySize]byte
	aead cipher.AEAD
}

func newVersion(raw [keySize]byte) *version {
	block, err := aes.NewCipher(raw[:])
	if err != nil {
		panic("local: AES-256 rejected a 32-byte key: " + err.Error())
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		panic("local: AES-GCM setup failed: " + err.Error())
	}
	return &version{raw: raw, aead: aead}
}

// generate returns a new random version.
func generate() *version {
	var raw [keySize]byte
	rand.Read(raw[:])
	return newVersion(raw)
}

// Parse returns the key held in s, in the key file format (see the package
// documentation). A Key from Parse has no file: it cannot [Key.Rotate]; add
// a "key N" entry to the content instead. Errors name the line at fault but
// never repeat its content.
func Parse(s string) (*Key, error) {
	c, err := parseContent(s)
	if err != nil {
		return nil, fmt.Errorf("local: parse key: %w", err)
	}
	k := &Key{name: c.name}
	k.set(c.versions, nil)
	return k, nil
}

// set replaces k's versions. The caller holds k.mu or owns k alone.
func (k *Key) set(versions map[uint32]*version, file os.FileInfo) {
	k.versions = versions
	k.current = 0
	for n := range versions {
		k.current = max(k.current, n)
	}
	k.file = file
}

// KeyID returns the versionless id of k, e.g. "local:platform".
func (k *Key) KeyID() string { return idPrefix + k.name }

// versionID returns the id of version n of k.
func (k *Key) versionID(n uint32) string {
	return idPrefix + k.name + "/v" + strconv.FormatUint(uint64(n), 10)
}

// String returns "local.Key(ID)".
func (k *Key) String() string { return "local.Key(" + k.KeyID() + ")" }

// Format writes [Key.String] for every verb, so that no verb prints key
// bytes.
func (k *Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue reports k as its versionless id.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.KeyID()) }

// Wrap seals plaintext (1 to [kms.MaxPlaintext] bytes) under the version of
// k that keyID names, or under the current version if keyID is versionless.
// The result records the versioned id.
func (k *Key) Wrap(ctx context.Context, keyID string, plaintext []byte) (kms.Wrapped, error) {
	const op = "wrap"
	if err := kms.CtxError(ctx, op, keyID); err != nil {
		return kms.Wrapped{}, err
	}
	if len(plaintext) == 0 || len(plaintext) > kms.MaxPlaintext {
		return kms.Wrapped{}, opError(op, keyID, kms.Invalid, kms.ReasonBadRequest,
			"plaintext is %d bytes; want 1 to %d", len(plaintext), kms.MaxPlaintext)
	}
	n, v, err := k.lookup(op, keyID, false)
	if err != nil {
		return kms.Wrapped{}, err
	}
	id := k.versionID(n)
	return kms.Wrapped{
		KeyID:      id,
		Algorithm:  Algorithm,
		Ciphertext: v.aead.Seal(nil, nil, plaintext, []byte(id)),
	}, nil
}

// Unwrap opens w under exactly the version w.KeyID names. A versionless id
// fails with class [kms.Invalid]: Unwrap needs the id Wrap returned. A
// value altered in any way, or wrapped under another key or version, fails
// with class [kms.Invalid] and reason [kms.ReasonUnwrapFailed].
func (k *Key) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	const op = "unwrap"
	if err := kms.CtxError(ctx, op, w.KeyID); err != nil {
		return nil, err
	}
	if w.Algorithm != Algorithm {
		return nil, opError(op, w.KeyID, kms.Invalid, kms.ReasonBadRequest,
			"algorithm %q is not %q, the only one this provider uses", w.Algorithm, Algorithm)
	}
	n, v, err := k.lookup(op, w.KeyID, true)
	if err != nil {
		return nil, err
	}
	if shortest := v.aead.Overhead() + 1; len(w.Ciphertext) < shortest {
		return nil, opError(op, w.KeyID, kms.Invalid, kms.ReasonUnwrapFailed,
			"ciphertext is %d bytes, shorter than the %d-byte minimum: it was truncated", len(w.Ciphertext), shortest)
	}
	plaintext, err := v.aead.Open(nil, nil, w.Ciphertext, []byte(k.versionID(n)))
	if err != nil {
		return nil, opError(op, w.KeyID, kms.Invalid, kms.ReasonUnwrapFailed,
			"ciphertext was altered or wrapped under another key or version")
	}
	return plaintext, nil
}

// Describe reports the version of k that keyID names, or the current
// version if keyID is versionless: an enabled 256-bit "oct" key for
// wrapKey and unwrapKey.
func (k *Key) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	const op = "describe"
	if err := kms.CtxError(ctx, op, keyID); err != nil {
		return kms.KeyInfo{}, err
	}
	n, _, err := k.lookup(op, keyID, false)
	if err != nil {
		return kms.KeyInfo{}, err
	}
	return kms.KeyInfo{
		KeyID:   k.versionID(n),
		Type:    "oct",
		Size:    keySize * 8,
		Ops:     []string{"wrapKey", "unwrapKey"},
		Enabled: true,
	}, nil
}

// lookup returns the version keyID names, or the current one for a
// versionless id unless needVersion is set. A version k does not hold makes
// a Key with a file read its file again, in case another process rotated it.
func (k *Key) lookup(op, keyID string, needVersion bool) (uint32, *version, error) {
	name, n, err := parseKeyID(keyID)
	if err != nil {
		return 0, nil, &kms.Error{Op: op, KeyID: keyID, Class: kms.Invalid, Reason: kms.ReasonBadRequest, Err: err}
	}
	if name != k.name {
		return 0, nil, opError(op, keyID, kms.Authoritative, kms.ReasonNotFound,
			"no such key; this provider holds %s", k.KeyID())
	}
	if n == 0 && needVersion {
		return 0, nil, opError(op, keyID, kms.Invalid, kms.ReasonBadRequest,
			"a versionless id names no exact version; pass the versioned id that wrap returned, e.g. %s/v1", k.KeyID())
	}
	if n == 0 && k.path != "" {
		// A versionless id follows the current version, which an
		// operator or another process may have added to the file. A
		// file that cannot be read again (removed, opened up, altered)
		// leaves the versions read before: Rotate and an unknown
		// version report that.
		_ = k.refresh()
	}
	v, current := k.get(n)
	if v == nil && k.path != "" && n != 0 {
		if err := k.refresh(); err != nil {
			return 0, nil, &kms.Error{Op: op, KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: err}
		}
		v, current = k.get(n)
	}
	if v == nil {
		return 0, nil, opError(op, keyID, kms.Authoritative, kms.ReasonNotFound,
			"no such version; the current version is %s", k.versionID(current))
	}
	if n == 0 {
		n = current
	}
	return n, v, nil
}

// Versions returns the versioned ids of every version of k, oldest first,
// reading its file again if it changed. keyID must name k.
func (k *Key) Versions(ctx context.Context, keyID string) ([]string, error) {
	const op = "versions"
	if err := kms.CtxError(ctx, op, keyID); err != nil {
		return nil, err
	}
	if _, _, err := k.lookup(op, k.KeyID(), false); err != nil {
		return nil, err
	}
	if name, _, err := parseKeyID(keyID); err != nil || name != k.name {
		return nil, opError(op, keyID, kms.Authoritative, kms.ReasonNotFound, "no such key; this provider holds %s", k.KeyID())
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	ns := make([]uint32, 0, len(k.versions))
	for n := range k.versions {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = k.versionID(n)
	}
	return ids, nil
}

// get returns version n (the current one if n is 0), or nil, and the
// current version number.
func (k *Key) get(n uint32) (*version, uint32) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if n == 0 {
		n = k.current
	}
	return k.versions[n], k.current
}

// opError returns a *kms.Error whose Err says what went wrong.
func opError(op, keyID string, class kms.Class, reason kms.Reason, format string, args ...any) *kms.Error {
	return &kms.Error{Op: op, KeyID: keyID, Class: class, Reason: reason, Err: fmt.Errorf(format, args...)}
}

// errMalformedID is the cause of every malformed key id error.
var errMalformedID = errors.New(`malformed key id; want "local:NAME" or "local:NAME/vN", e.g. "local:platform" or "local:platform/v3"`)

// parseKeyID splits "local:NAME" or "local:NAME/vN" into NAME and N (0 for
// a versionless id).
func parseKeyID(id string) (string, uint32, error) {
	rest, ok := strings.CutPrefix(id, idPrefix)
	name, ver, versioned := strings.Cut(rest, "/")
	if ok && validName(name) == nil {
		if !versioned {
			return name, 0, nil
		}
		if digits, ok := strings.CutPrefix(ver, "v"); ok {
			if n, ok := parseVersion(digits); ok {
				return name, n, nil
			}
		}
	}
	return "", 0, errMalformedID
}

// parseVersion parses a version number: decimal, 1 to 2^32-1, no sign or
// leading zero.
func parseVersion(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, false
	}
	return uint32(n), true
}

// validName checks a key name.
func validName(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("a key name is 1 to 64 bytes long")
	}
	for i, c := range []byte(name) {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_' && c != '.') {
			return errors.New("a key name has letters, digits, '.', '_' and '-', and starts with a letter or digit")
		}
	}
	return nil
}

// sameVersions reports whether every version in both a and b has the same
// key in each.
func sameVersions(a, b map[uint32]*version) bool {
	for n, va := range a {
		if vb, ok := b[n]; ok && subtle.ConstantTimeCompare(va.raw[:], vb.raw[:]) != 1 {
			return false
		}
	}
	return true
}
