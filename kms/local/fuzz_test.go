package local

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParse checks that parsing never panics, that content which parses
// survives a marshal and parse unchanged, and that errors never repeat a
// key.
func FuzzParse(f *testing.F) {
	const k1, k2 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA="
	for _, seed := range []string{
		"byok-local-key v1\nname platform\nkey 1 " + k1 + "\n",
		"byok-local-key v1; name prk; key 2 " + k1 + "; key 9 " + k2,
		"# c\r\nbyok-local-key v1\r\nname a\r\nkey 1 " + k1 + "\r\nkey 1 " + k2,
		"byok-local-key v2\nkey 1 " + k1,
		"byok-local-key v1\nname platform\nkey 01 " + k1[:40],
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseContent(s)
		if err != nil {
			for _, field := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\n' || r == ';' || r == '\t' || r == '\r' }) {
				if raw, derr := base64.StdEncoding.DecodeString(field); derr == nil && len(raw) == keySize && strings.Contains(err.Error(), field) {
					t.Fatalf("error %q repeats a key", err)
				}
			}
			return
		}
		again, err := parseContent(string(marshal(c.name, c.versions)))
		if err != nil {
			t.Fatalf("marshalled content does not parse: %v", err)
		}
		if again.name != c.name || len(again.versions) != len(c.versions) ||
			!sameVersions(c.versions, again.versions) {
			t.Fatalf("round trip changed the key: name %q -> %q, %d -> %d versions", c.name, again.name, len(c.versions), len(again.versions))
		}
	})
}
