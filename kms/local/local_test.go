package local_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/kms/local"
)

var bg = context.Background()

// Two fixed keys for tests: bytes 0..31 and 255..224.
var (
	key1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	key2 = "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA="
)

// content returns a key file with the given name and keys as versions 1,
// 2, ...
func content(name string, keys ...string) string {
	s := "byok-local-key v1\nname " + name + "\n"
	for i, k := range keys {
		s += fmt.Sprintf("key %d %s\n", i+1, k)
	}
	return s
}

func mustParse(t testing.TB, s string) *local.Key {
	t.Helper()
	k, err := local.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustOpen(t testing.TB, path string) *local.Key {
	t.Helper()
	k, err := local.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t testing.TB, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
}

// byName sends each call to the Key whose name its key id has, and every
// other call to the first Key. It lets the suite check that two keys with
// different names never unwrap each other's values.
type byName []*local.Key

func (m byName) pick(keyID string) *local.Key {
	for _, k := range m {
		if keyID == k.KeyID() || strings.HasPrefix(keyID, k.KeyID()+"/") {
			return k
		}
	}
	return m[0]
}

func (m byName) Wrap(ctx context.Context, keyID string, pt []byte) (kms.Wrapped, error) {
	return m.pick(keyID).Wrap(ctx, keyID, pt)
}

func (m byName) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	return m.pick(w.KeyID).Unwrap(ctx, w)
}

func (m byName) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	return m.pick(keyID).Describe(ctx, keyID)
}

func TestConformance(t *testing.T) {
	prk := mustOpen(t, filepath.Join(t.TempDir(), "prk"))
	other := mustParse(t, content("other", key1))
	kmstest.RunConformance(t, kmstest.Harness{
		Provider:         byName{prk, other},
		KeyID:            prk.KeyID(),
		OtherKeyID:       other.KeyID(),
		UnknownKeyID:     "local:unknown",
		UnknownVersionID: "local:platform/v999",
		NewVersion: func(t testing.TB) string {
			id, err := prk.Rotate()
			if err != nil {
				t.Fatal(err)
			}
			return id
		},
	})
}

// TestVector pins the wrapped format: AES-256-GCM, nonce ‖ ciphertext ‖
// tag, the versioned key id as associated data.
func TestVector(t *testing.T) {
	const (
		id         = "local:platform/v2"
		plaintext  = "byok test vector: platform share"
		ciphertext = "gIqiezAjOWfXZoyY8sdFI3EaF0NKl2eJm/F/cSRNjDsJWj54/HMeiUkQyg10Gv+NtG+dfcgcsSKYShJl"
	)
	ct, _ := base64.StdEncoding.DecodeString(ciphertext)
	k := mustParse(t, content("platform", key1, key2))
	got, err := k.Unwrap(bg, kms.Wrapped{KeyID: id, Algorithm: "A256GCM", Ciphertext: ct})
	if err != nil || string(got) != plaintext {
		t.Fatalf("Unwrap of the vector = %q, %v", got, err)
	}

	// The same, with the standard library only.
	raw, _ := base64.StdEncoding.DecodeString(key2)
	block, _ := aes.NewCipher(raw)
	gcm, _ := cipher.NewGCM(block)
	got, err = gcm.Open(nil, ct[:12], ct[12:], []byte(id))
	if err != nil || string(got) != plaintext {
		t.Fatalf("AES-GCM open of the vector = %q, %v", got, err)
	}
}

func TestOpenCreatesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prk")
	k := mustOpen(t, path)
	if got := k.KeyID(); got != "local:platform" {
		t.Errorf("KeyID = %q, want local:platform", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file has mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "byok-local-key v1\n") || !strings.Contains(string(data), "\nname platform\n") ||
		strings.Count(string(data), "\nkey ") != 1 || !strings.Contains(string(data), "\nkey 1 ") {
		t.Errorf("new key file:\n%s", data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after Open, want only the key file", len(entries))
	}

	w, err := k.Wrap(bg, k.KeyID(), []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	again := mustOpen(t, path)
	if got, err := again.Unwrap(bg, w); err != nil || string(got) != "share" {
		t.Errorf("the reopened key unwraps %q, %v", got, err)
	}
}

func TestOpenRefusesOpenModes(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "prk")
			writeFile(t, path, content("platform", key1), mode)
			_, err := local.Open(path)
			if err == nil {
				t.Fatal("Open accepted the file")
			}
			for _, want := range []string{fmt.Sprintf("mode %04o", mode), "chmod 600 " + path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), key1) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
	t.Run("0400", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "prk")
		writeFile(t, path, content("platform", key1), 0o400)
		if _, err := local.Open(path); err != nil {
			t.Errorf("Open refused a file of mode 0400: %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"directory", dir, "not a regular file"},
		{"missing directory", filepath.Join(dir, "missing", "prk"), "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := local.Open(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%s) = %v, want an error containing %q", tt.path, err, tt.want)
			}
		})
	}
	t.Run("corrupt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "prk")
		writeFile(t, path, "byok-local-key v1\nname platform\nkey 1 "+key1[:21]+"\n", 0o600)
		_, err := local.Open(path)
		if err == nil || !strings.Contains(err.Error(), path+": line 3: key of version 1 is not standard base64") {
			t.Errorf("Open of a corrupt file = %v", err)
		}
		if err != nil && strings.Contains(err.Error(), key1[:21]) {
			t.Errorf("error %q shows key bytes", err)
		}
	})
}

func TestRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prk")
	k := mustOpen(t, path)
	w1, err := k.Wrap(bg, k.KeyID(), []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if id != "local:platform/v2" {
		t.Errorf("Rotate = %q, want local:platform/v2", id)
	}
	w2, err := k.Wrap(bg, k.KeyID(), []byte("two"))
	if err != nil || w2.KeyID != id {
		t.Fatalf("Wrap after Rotate recorded %q, %v; want %s", w2.KeyID, err, id)
	}

	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "\nkey 1 ") || !strings.Contains(string(data), "\nkey 2 ") {
		t.Errorf("key file after Rotate:\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file after Rotate has mode %04o", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries after Rotate, want only the key file", len(entries))
	}

	again := mustOpen(t, path)
	if info, err := again.Describe(bg, again.KeyID()); err != nil || info.KeyID != id {
		t.Errorf("reopened key's current version = %q, %v; want %s", info.KeyID, err, id)
	}
	for _, w := range []kms.Wrapped{w1, w2} {
		if _, err := again.Unwrap(bg, w); err != nil {
			t.Errorf("reopened key: Unwrap(%s): %v", w.KeyID, err)
		}
	}
}

// TestRotateByAnotherProcess checks that a Key sees versions another Key
// on the same file added.
func TestRotateByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prk")
	a, b := mustOpen(t, path), mustOpen(t, path)
	v2, err := b.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := b.Wrap(bg, v2, []byte("two"))
	if got, err := a.Unwrap(bg, w2); err != nil || string(got) != "two" {
		t.Fatalf("a unwraps a value of b's new version: %q, %v", got, err)
	}
	v3, err := a.Rotate()
	if err != nil || v3 != "local:platform/v3" {
		t.Fatalf("a.Rotate after b's = %q, %v; want local:platform/v3", v3, err)
	}
	w3, _ := a.Wrap(bg, v3, []byte("three"))
	if got, err := b.Unwrap(bg, w3); err != nil || string(got) != "three" {
		t.Errorf("b unwraps a value of a's new version: %q, %v", got, err)
	}
}

func TestRotateNeverReusesAVersionNumber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prk")
	writeFile(t, path, content("platform", key1, key2), 0o600)
	k := mustOpen(t, path)
	// The operator removes the current version 2 from the file.
	writeFile(t, path, content("platform", key1), 0o600)
	id, err := k.Rotate()
	if err != nil || id != "local:platform/v3" {
		t.Errorf("Rotate = %q, %v; want local:platform/v3", id, err)
	}
}

func TestRotateRefusesChangedFile(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"other key bytes", content("platform", key2), "different key for a version"},
		{"other name", content("other", key1), "now holds local:other"},
		{"open mode", "", "chmod 600"},
		{"removed", "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "prk")
			writeFile(t, path, content("platform", key1), 0o600)
			k := mustOpen(t, path)
			switch tt.name {
			case "open mode":
				os.Chmod(path, 0o644)
			case "removed":
				os.Remove(path)
			default:
				writeFile(t, path, tt.file, 0o600)
			}
			id, err := k.Rotate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Rotate = %q, %v; want an error containing %q", id, err, tt.want)
			}
			if info, err := k.Describe(bg, k.KeyID()); err != nil || info.KeyID != "local:platform/v1" {
				t.Errorf("after a failed Rotate, the current version is %q, %v", info.KeyID, err)
			}
		})
	}
}

func TestRotateWithoutFile(t *testing.T) {
	k := mustParse(t, content("platform", key1))
	_, err := k.Rotate()
	if err == nil || !strings.Contains(err.Error(), "cannot rotate") {
		t.Errorf("Rotate of a parsed key = %v, want an error saying it cannot rotate", err)
	}
}

// TestUnknownVersionWithUnreadableFile: a Key that cannot read its file
// again reports a transient failure, not a missing version.
func TestUnknownVersionWithUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prk")
	k := mustOpen(t, path)
	w, _ := k.Wrap(bg, k.KeyID(), []byte("share"))
	os.Remove(path)
	w.KeyID = "local:platform/v2"
	_, err := k.Unwrap(bg, w)
	if kms.ClassOf(err) != kms.Transient || kms.ReasonOf(err) != kms.ReasonUnavailable {
		t.Errorf("Unwrap of an unknown version with the file gone = %v, want transient unavailable", err)
	}
	w.KeyID = "local:platform/v1"
	if _, err := k.Unwrap(bg, w); err != nil {
		t.Errorf("a version in memory needs no file: %v", err)
	}
}

func TestKeyIDs(t *testing.T) {
	k := mustParse(t, content("platform", key1, key2))
	malformed := []string{"", "platform", "local:", "local:/v1", "LOCAL:platform", "local:platform/", "local:platform/2",
		"local:platform/v", "local:platform/v0", "local:platform/v02", "local:platform/v+2", "local:platform/v4294967296",
		"local:platform/v1/x", "local:-platform", "local:plat form", "local:" + strings.Repeat("a", 65)}
	for _, id := range malformed {
		_, err := k.Describe(bg, id)
		if kms.ClassOf(err) != kms.Invalid || kms.ReasonOf(err) != kms.ReasonBadRequest ||
			!strings.Contains(fmt.Sprint(err), `e.g. "local:platform" or "local:platform/v3"`) {
			t.Errorf("Describe(%q) = %v, want an invalid bad-request error with an example", id, err)
		}
	}
	notFound := []string{"local:other", "local:other/v1", "local:platform/v3", "local:platform/v4294967295"}
	for _, id := range notFound {
		_, err := k.Describe(bg, id)
		if kms.ClassOf(err) != kms.Authoritative || kms.ReasonOf(err) != kms.ReasonNotFound {
			t.Errorf("Describe(%q) = %v, want authoritative key-not-found", id, err)
		}
	}
	long := strings.Repeat("a", 64)
	if _, err := mustParse(t, content(long, key1)).Describe(bg, "local:"+long+"/v1"); err != nil {
		t.Errorf("a 64-byte name: %v", err)
	}
}

func TestUnwrapNeedsVersionedID(t *testing.T) {
	k := mustParse(t, content("platform", key1))
	w, _ := k.Wrap(bg, k.KeyID(), []byte("share"))
	w.KeyID = k.KeyID()
	_, err := k.Unwrap(bg, w)
	if kms.ClassOf(err) != kms.Invalid || !strings.Contains(fmt.Sprint(err), "local:platform/v1") {
		t.Errorf("Unwrap with a versionless id = %v, want an invalid error showing a versioned id", err)
	}
}

func TestWrapPlaintextSize(t *testing.T) {
	k := mustParse(t, content("platform", key1))
	for _, n := range []int{0, kms.MaxPlaintext + 1} {
		_, err := k.Wrap(bg, k.KeyID(), make([]byte, n))
		if kms.ClassOf(err) != kms.Invalid || !strings.Contains(fmt.Sprint(err), fmt.Sprintf("plaintext is %d bytes", n)) {
			t.Errorf("Wrap of %d bytes = %v, want an invalid error", n, err)
		}
	}
}

// TestSameNameOtherKey: a value wrapped by another key file, even one with
// the same name and version, does not unwrap.
func TestSameNameOtherKey(t *testing.T) {
	a := mustParse(t, content("platform", key1))
	b := mustParse(t, content("platform", key2))
	w, _ := a.Wrap(bg, a.KeyID(), []byte("share"))
	_, err := b.Unwrap(bg, w)
	if kms.ClassOf(err) != kms.Invalid || kms.ReasonOf(err) != kms.ReasonUnwrapFailed {
		t.Errorf("Unwrap under another key = %v, want invalid unwrap-failed", err)
	}
}

func TestDescribe(t *testing.T) {
	k := mustParse(t, content("platform", key1, key2))
	for id, want := range map[string]string{"local:platform": "local:platform/v2", "local:platform/v1": "local:platform/v1"} {
		info, err := k.Describe(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		if info.KeyID != want || info.Type != "oct" || info.Size != 256 || !info.Enabled ||
			strings.Join(info.Ops, ",") != "wrapKey,unwrapKey" {
			t.Errorf("Describe(%s) = %+v", id, info)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, content, current string
	}{
		{"file", content("platform", key1, key2), "local:platform/v2"},
		{"one line", "byok-local-key v1; name prk-eu.1; key 1 " + key1 + "; key 2 " + key2, "local:prk-eu.1/v2"},
		{"comments, blank lines, CRLF, order", "# PRK\r\n\r\nbyok-local-key v1\r\n  name  platform \r\n# old\r\nkey 7 " + key2 + "\r\nkey 3 " + key1 + "\r\n", "local:platform/v7"},
		{"comment with semicolon", "# a; b\nbyok-local-key v1\nname platform\nkey 1 " + key1, "local:platform/v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := local.Parse(tt.content)
			if err != nil {
				t.Fatal(err)
			}
			if info, err := k.Describe(bg, k.KeyID()); err != nil || info.KeyID != tt.current {
				t.Errorf("current version %q, %v; want %s", info.KeyID, err, tt.current)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", `no content; want the format line "byok-local-key v1" first`},
		{"only comments", "# nothing\n\n", "no content"},
		{"no header", "name platform\nkey 1 " + key1, `line 1: want the format line "byok-local-key v1" first`},
		{"future version", "byok-local-key v2\nname platform\nkey 1 " + key1, `line 1: unsupported format version; this build reads "byok-local-key v1"`},
		{"no name", "byok-local-key v1\nkey 1 " + key1, "no name entry"},
		{"no key", "byok-local-key v1\nname platform\n", "no key entry"},
		{"two names", "byok-local-key v1\nname a\nname b\nkey 1 " + key1, "line 3: a second name entry"},
		{"bad name", "byok-local-key v1\nname -x\nkey 1 " + key1, "line 2: bad name"},
		{"version zero", "byok-local-key v1\nname platform\nkey 0 " + key1, "line 3: bad version number"},
		{"leading zero", "byok-local-key v1\nname platform\nkey 01 " + key1, "line 3: bad version number"},
		{"duplicate version", "byok-local-key v1\nname platform\nkey 1 " + key1 + "\nkey 1 " + key2, "line 4: version 1 appears twice"},
		{"not base64", "byok-local-key v1\nname platform\nkey 1 " + key1[:43] + "!", "line 3: key of version 1 is not standard base64"},
		{"url base64", "byok-local-key v1\nname platform\nkey 1 " + strings.NewReplacer("+", "-", "/", "_").Replace(key2), "not standard base64"},
		{"short key", "byok-local-key v1\nname platform\nkey 1 " + short, "line 3: key of version 1 is 16 bytes; want 32 random bytes"},
		{"key without version", "byok-local-key v1\nname platform\nkey " + key1, `line 3: unknown entry; want "name NAME" or "key N BASE64"`},
		{"unknown entry", "byok-local-key v1; name platform; secret " + key1, `line 1 entry 3: unknown entry`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := local.Parse(tt.content)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tt.want)
			}
			for _, secret := range []string{key1, key1[:20], key2, key2[:20], short} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows key text", err)
				}
			}
		})
	}
}

// TestFormattingHidesKeys prints a Key every way fmt and slog can.
func TestFormattingHidesKeys(t *testing.T) {
	k := mustParse(t, content("platform", key1, key2))
	var leaks []string
	for _, s := range []string{key1, key2} {
		raw, _ := base64.StdEncoding.DecodeString(s)
		leaks = append(leaks, s, hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)),
			fmt.Sprint(raw[:4]), fmt.Sprintf("%q", raw[1:5]))
	}
	leaks = append(leaks, "0x0 0x1 0x2", "1 2 3 4 5")

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q", "%p"} {
		outputs = append(outputs, fmt.Sprintf(verb, k))
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("loaded", "prk", k)
		outputs = append(outputs, b.String())
		if !strings.Contains(b.String(), "local:platform") {
			t.Errorf("log line %q does not name the key", b.String())
		}
	}
	for _, out := range outputs {
		for _, leak := range leaks {
			if strings.Contains(out, leak) {
				t.Errorf("output %q shows key bytes (%q)", out, leak)
			}
		}
	}
	if got := fmt.Sprint(k); got != "local.Key(local:platform)" {
		t.Errorf("fmt.Sprint = %q", got)
	}
}

func BenchmarkWrap(b *testing.B) {
	k := mustParse(b, content("platform", key1))
	share := make([]byte, 32)
	for b.Loop() {
		if _, err := k.Wrap(bg, "local:platform", share); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrap(b *testing.B) {
	k := mustParse(b, content("platform", key1))
	w, _ := k.Wrap(bg, "local:platform", make([]byte, 32))
	for b.Loop() {
		if _, err := k.Unwrap(bg, w); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVersionlessFollowsFile adds a version to the key file behind a Key's
// back, as an operator or another replica does: the versionless id follows
// it, the old version still unwraps, and Versions lists both.
func TestVersionlessFollowsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prk")
	writeFile(t, path, content("platform", key1), 0o600)
	k := mustOpen(t, path)
	old, err := k.Wrap(bg, k.KeyID(), []byte("share"))
	if err != nil || old.KeyID != "local:platform/v1" {
		t.Fatalf("Wrap = %+v, %v", old, err)
	}
	other := mustOpen(t, path)
	if _, err := other.Rotate(); err != nil {
		t.Fatal(err)
	}
	if info, err := k.Describe(bg, k.KeyID()); err != nil || info.KeyID != "local:platform/v2" {
		t.Fatalf("Describe after another process rotated = %+v, %v; want v2", info, err)
	}
	w, err := k.Wrap(bg, k.KeyID(), []byte("share"))
	if err != nil || w.KeyID != "local:platform/v2" {
		t.Fatalf("Wrap after the rotation = %+v, %v; want v2", w, err)
	}
	if b, err := k.Unwrap(bg, old); err != nil || string(b) != "share" {
		t.Fatalf("Unwrap of the v1 value = %q, %v", b, err)
	}
	vs, err := k.Versions(bg, k.KeyID())
	if err != nil || strings.Join(vs, ",") != "local:platform/v1,local:platform/v2" {
		t.Fatalf("Versions = %v, %v", vs, err)
	}
	if _, err := k.Versions(bg, "local:other"); kms.ClassOf(err) != kms.Authoritative {
		t.Fatalf("Versions of another key: %v", err)
	}
}
