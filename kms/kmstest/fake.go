package kmstest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openbyok/byok/kms"
)

// ErrInjected is the provider error inside every failure that [Fake.Fail]
// or [Fake.FailKey] injects.
var ErrInjected = errors.New("kmstest: injected failure")

// FakeAlgorithm is the [kms.Wrapped] algorithm of a [Fake].
const FakeAlgorithm = "A256GCM"

var _ kms.Provider = (*Fake)(nil)

// Fake is an in-memory [kms.Provider] for tests of code that uses one. It
// really encrypts, with AES-256-GCM under random keys and the versioned
// key id as associated data, and passes [RunConformance].
//
// Key ids are "fake:NAME" (versionless) and "fake:NAME/vN". Unwrap needs a
// versioned id. A test can make calls fail ([Fake.Fail], [Fake.FailKey]),
// hold them at a gate ([Fake.Block]) and count them ([Fake.Calls]).
//
// Every call goes through these steps, in order: it is counted; a done ctx
// fails it with class [kms.Transient]; it waits the latency, if one is
// set ([Fake.SetLatency]); it waits at the gate, if one is set; an
// injected failure fails it; then it runs.
//
// A Fake is safe for concurrent use. Create it with [NewFake].
type Fake struct {
	mu       sync.Mutex
	keys     map[string][]cipher.AEAD // by name; version n at index n-1
	fail     *injected                // every call fails
	keyFails map[string]injected      // by key id: versionless for every version
	gate     *Gate
	latency  time.Duration // every call waits this long first (SetLatency)

	wraps, unwraps, describes atomic.Int64
}

type injected struct {
	class  kms.Class
	reason kms.Reason
}

// Counts says how many calls of each method a [Fake] received.
type Counts struct {
	Wrap, Unwrap, Describe int64
}

// NewFake returns a Fake with no keys.
func NewFake() *Fake {
	return &Fake{keys: map[string][]cipher.AEAD{}, keyFails: map[string]injected{}}
}

// AddKey adds a key with one version and returns its versionless id,
// "fake:NAME". It panics if name is not a valid name (letters, digits,
// '.', '_' and '-') or is taken.
func (f *Fake) AddKey(name string) string {
	if !validFakeName(name) {
		panic(fmt.Sprintf("kmstest: AddKey(%q): a name is letters, digits, '.', '_' and '-'", name))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys[name] != nil {
		panic(fmt.Sprintf("kmstest: AddKey(%q): the key exists", name))
	}
	f.keys[name] = []cipher.AEAD{newFakeVersion()}
	return fakePrefix + name
}

// Rotate adds a version to the key keyID names (versioned or not), makes
// it current and returns its versioned id. It panics if there is no such
// key.
func (f *Fake) Rotate(keyID string) string {
	name, _, ok := parseFakeID(keyID)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !ok || f.keys[name] == nil {
		panic(fmt.Sprintf("kmstest: Rotate(%q): no such key", keyID))
	}
	f.keys[name] = append(f.keys[name], newFakeVersion())
	return fakeVersionID(name, len(f.keys[name]))
}

// Fail makes every later call fail with a [*kms.Error] of class and
// reason that wraps [ErrInjected], until [Fake.Heal].
func (f *Fake) Fail(class kms.Class, reason kms.Reason) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = &injected{class, reason}
}

// FailKey makes later calls on keyID fail like [Fake.Fail], until
// [Fake.HealKey] or [Fake.Heal]. A versionless keyID covers every version
// of the key; a versioned one only that version. keyID need not exist.
// It panics on a malformed keyID.
func (f *Fake) FailKey(keyID string, class kms.Class, reason kms.Reason) {
	if _, _, ok := parseFakeID(keyID); !ok {
		panic(fmt.Sprintf("kmstest: FailKey(%q): malformed key id", keyID))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keyFails[keyID] = injected{class, reason}
}

// HealKey ends the failure [Fake.FailKey] set for exactly keyID.
func (f *Fake) HealKey(keyID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keyFails, keyID)
}

// Heal ends every injected failure.
func (f *Fake) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = nil
	clear(f.keyFails)
}

// Calls returns the number of calls of each method since [NewFake] or the
// last [Fake.ResetCalls], whatever their outcome.
func (f *Fake) Calls() Counts {
	return Counts{Wrap: f.wraps.Load(), Unwrap: f.unwraps.Load(), Describe: f.describes.Load()}
}

// ResetCalls sets every count to zero.
func (f *Fake) ResetCalls() {
	f.wraps.Store(0)
	f.unwraps.Store(0)
	f.describes.Store(0)
}

// SetLatency makes every later call wait d (in real time, or until its
// ctx is done) after it is counted, as a remote provider would; 0 removes
// the wait. Benchmarks use it.
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// Gate holds the calls of a [Fake] until it is released, so that a test
// can order concurrent calls without sleeping.
type Gate struct {
	fake     *Fake
	entered  chan struct{}
	released chan struct{}
	once     sync.Once
}

// Block sets a new gate that holds every later call, and returns it. A
// call held by an earlier gate stays held until that gate is released.
func (f *Fake) Block() *Gate {
	g := &Gate{fake: f, entered: make(chan struct{}), released: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = g
	return g
}

// Entered returns a channel that yields one value for each call that
// reaches the gate: after receiving n values, a test knows that n calls
// are held. A call at the gate waits for its value to be received, then
// for [Gate.Release]; it gives up, failing with class [kms.Transient],
// when its ctx is done.
func (g *Gate) Entered() <-chan struct{} { return g.entered }

// Release lets every held call proceed and removes the gate, so later
// calls pass. It may be called more than once.
func (g *Gate) Release() {
	g.once.Do(func() {
		close(g.released)
		g.fake.mu.Lock()
		defer g.fake.mu.Unlock()
		if g.fake.gate == g {
			g.fake.gate = nil
		}
	})
}

// wait holds a call at g until g is released or ctx is done.
func (g *Gate) wait(ctx context.Context) error {
	select {
	case g.entered <- struct{}{}:
	case <-g.released:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-g.released:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wrap seals plaintext (1 to [kms.MaxPlaintext] bytes) under the version
// keyID names, or the current version for a versionless id.
func (f *Fake) Wrap(ctx context.Context, keyID string, plaintext []byte) (kms.Wrapped, error) {
	const op = "wrap"
	f.wraps.Add(1)
	if err := f.enter(ctx, op, keyID); err != nil {
		return kms.Wrapped{}, err
	}
	if len(plaintext) == 0 || len(plaintext) > kms.MaxPlaintext {
		return kms.Wrapped{}, fakeError(op, keyID, kms.Invalid, kms.ReasonBadRequest,
			fmt.Errorf("plaintext is %d bytes; want 1 to %d", len(plaintext), kms.MaxPlaintext))
	}
	aead, id, err := f.lookup(op, keyID, false)
	if err != nil {
		return kms.Wrapped{}, err
	}
	return kms.Wrapped{KeyID: id, Algorithm: FakeAlgorithm, Ciphertext: aead.Seal(nil, nil, plaintext, []byte(id))}, nil
}

// Unwrap opens w under exactly the version w.KeyID names.
func (f *Fake) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	const op = "unwrap"
	f.unwraps.Add(1)
	if err := f.enter(ctx, op, w.KeyID); err != nil {
		return nil, err
	}
	if w.Algorithm != FakeAlgorithm {
		return nil, fakeError(op, w.KeyID, kms.Invalid, kms.ReasonBadRequest,
			fmt.Errorf("algorithm %q is not %q", w.Algorithm, FakeAlgorithm))
	}
	aead, id, err := f.lookup(op, w.KeyID, true)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nil, w.Ciphertext, []byte(id))
	if err != nil {
		return nil, fakeError(op, w.KeyID, kms.Invalid, kms.ReasonUnwrapFailed,
			errors.New("ciphertext was altered or wrapped under another key or version"))
	}
	return pt, nil
}

// Describe reports an enabled 256-bit "oct" key for wrapKey and unwrapKey.
func (f *Fake) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	const op = "describe"
	f.describes.Add(1)
	if err := f.enter(ctx, op, keyID); err != nil {
		return kms.KeyInfo{}, err
	}
	_, id, err := f.lookup(op, keyID, false)
	if err != nil {
		return kms.KeyInfo{}, err
	}
	return kms.KeyInfo{KeyID: id, Type: "oct", Size: 256, Ops: []string{"wrapKey", "unwrapKey"}, Enabled: true}, nil
}

// enter checks ctx, waits at the gate and applies a failure set by Fail.
func (f *Fake) enter(ctx context.Context, op, keyID string) error {
	if err := kms.CtxError(ctx, op, keyID); err != nil {
		return err
	}
	f.mu.Lock()
	g, lat := f.gate, f.latency
	f.mu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return kms.CtxError(ctx, op, keyID)
		}
	}
	if g != nil {
		if err := g.wait(ctx); err != nil {
			return kms.CtxError(ctx, op, keyID)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return fakeError(op, keyID, f.fail.class, f.fail.reason, ErrInjected)
	}
	return nil
}

// lookup returns the version keyID names (the current one for a
// versionless id, unless needVersion) and its versioned id, after applying
// a failure set by FailKey.
func (f *Fake) lookup(op, keyID string, needVersion bool) (cipher.AEAD, string, error) {
	name, n, ok := parseFakeID(keyID)
	if !ok {
		return nil, "", fakeError(op, keyID, kms.Invalid, kms.ReasonBadRequest,
			errors.New(`malformed key id; want "fake:NAME" or "fake:NAME/vN", e.g. "fake:tenant1/v2"`))
	}
	if n == 0 && needVersion {
		return nil, "", fakeError(op, keyID, kms.Invalid, kms.ReasonBadRequest,
			errors.New("a versionless id names no exact version; pass the versioned id that wrap returned"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fail, ok := f.keyFails[fakePrefix+name]; ok {
		return nil, "", fakeError(op, keyID, fail.class, fail.reason, ErrInjected)
	}
	versions := f.keys[name]
	if versions == nil {
		return nil, "", fakeError(op, keyID, kms.Authoritative, kms.ReasonNotFound, errors.New("no such key"))
	}
	if n == 0 {
		n = len(versions)
	}
	id := fakeVersionID(name, n)
	if fail, ok := f.keyFails[id]; ok {
		return nil, "", fakeError(op, keyID, fail.class, fail.reason, ErrInjected)
	}
	if n > len(versions) {
		return nil, "", fakeError(op, keyID, kms.Authoritative, kms.ReasonNotFound, errors.New("no such version"))
	}
	return versions[n-1], id, nil
}

func fakeError(op, keyID string, class kms.Class, reason kms.Reason, err error) *kms.Error {
	return &kms.Error{Op: op, KeyID: keyID, Class: class, Reason: reason, Err: err}
}

const fakePrefix = "fake:"

func fakeVersionID(name string, n int) string {
	return fakePrefix + name + "/v" + strconv.Itoa(n)
}

// parseFakeID splits "fake:NAME" or "fake:NAME/vN" into NAME and N (0 if
// versionless).
func parseFakeID(id string) (name string, n int, ok bool) {
	rest, ok := strings.CutPrefix(id, fakePrefix)
	name, ver, versioned := strings.Cut(rest, "/")
	if !ok || !validFakeName(name) {
		return "", 0, false
	}
	if !versioned {
		return name, 0, true
	}
	digits, ok := strings.CutPrefix(ver, "v")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil || n < 1 || strconv.Itoa(n) != digits {
		return "", 0, false
	}
	return name, n, true
}

func validFakeName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newFakeVersion() cipher.AEAD {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		panic(err)
	}
	return aead
}
