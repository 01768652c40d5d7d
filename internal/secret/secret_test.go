package secret

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
)

var raw = []byte("K3Y-BYTES-0123456789abcdef!?#@%&") // 32 recognisable bytes

// leaks reports whether s shows the key bytes in any common encoding.
func leaks(s string) bool {
	forms := []string{
		string(raw),
		hex.EncodeToString(raw),
		strings.ToUpper(hex.EncodeToString(raw)),
		fmt.Sprint(raw),         // [75 51 89 ...]
		fmt.Sprintf("%#v", raw), // []byte{0x4b, ...}
		"K3Y", "4b3359", "4B3359", "75 51 89", "0x4b",
	}
	for _, f := range forms {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

type exported struct {
	Name string
	Key  Key
}

type unexported struct {
	name string
	key  Key
}

func TestKeyNeverPrints(t *testing.T) {
	k := New(raw)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%10s", "%-8v", "%b", "%o"} {
		for name, arg := range map[string]any{"value": k, "pointer": &k} {
			got := fmt.Sprintf(verb, arg)
			if name == "value" && got != Redacted || leaks(got) {
				t.Errorf("Sprintf(%q, %s) = %q", verb, name, got)
			}
		}
	}
	for _, s := range []string{
		fmt.Sprint(k), fmt.Sprintln(k), k.String(), k.GoString(),
		fmt.Sprintf("%v %+v %#v", exported{"n", k}, exported{"n", k}, exported{"n", k}),
		fmt.Sprintf("%v %x", []Key{k}, map[string]Key{"k": k}),
	} {
		if leaks(s) {
			t.Errorf("printed form %q shows the key", s)
		}
	}
	// fmt cannot call methods on an unexported field and prints it by
	// reflection: the pointer inside Key keeps the bytes out of reach.
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%X", "%s", "%q", "%d", "%t", "%c", "%U", "%e", "%p"} {
		if s := fmt.Sprintf(verb, unexported{"n", k}); leaks(s) {
			t.Errorf("Sprintf(%q) of an unexported field = %q", verb, s)
		}
	}
	if got := fmt.Sprintf("%+v", exported{"n", k}); got != "{Name:n Key:[redacted]}" {
		t.Errorf("%%+v of a struct = %q", got)
	}
}

func TestKeyMarshalling(t *testing.T) {
	k := New(raw)
	j, err := json.Marshal(map[string]any{"key": k, "struct": exported{"n", k}, "ptr": &k})
	if err != nil {
		t.Fatal(err)
	}
	if leaks(string(j)) || !strings.Contains(string(j), `"key":"[redacted]"`) {
		t.Errorf("JSON = %s", j)
	}
	txt, err := k.MarshalText()
	if err != nil || string(txt) != Redacted {
		t.Errorf("MarshalText = %q, %v", txt, err)
	}
	// As a map key, JSON uses MarshalText.
	j, err = json.Marshal(map[Key]int{k: 1})
	if err != nil || string(j) != `{"[redacted]":1}` {
		t.Errorf("JSON of a map keyed by Key = %s, %v", j, err)
	}
}

func TestKeyNeverLogs(t *testing.T) {
	k := New(raw)
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("msg", "key", k, "ptr", &k, slog.Any("any", k), slog.Group("g", "key", k), "struct", exported{"n", k})
		l.With("key", k).Error("with")
	}
	out := buf.String()
	if leaks(out) || strings.Count(out, Redacted) < 12 {
		t.Errorf("log output shows the key or lacks %q:\n%s", Redacted, out)
	}
}

func TestKeyBytesEqualWipe(t *testing.T) {
	src := bytes.Clone(raw)
	k := New(src)
	clear(src)
	if !bytes.Equal(k.Bytes(), raw) || k.Len() != len(raw) {
		t.Fatalf("New did not copy its input: %d bytes", k.Len())
	}
	same, other, short := New(raw), New(append(bytes.Clone(raw[:31]), '$')), New(raw[:31])
	if !k.Equal(same) || k.Equal(other) || k.Equal(short) || k.Equal(Key{}) {
		t.Error("Equal is wrong")
	}
	if !(Key{}).Equal(Key{}) || (Key{}).Len() != 0 || (Key{}).Bytes() != nil {
		t.Error("the zero Key is not an empty key")
	}

	copyOfK, held := k, k.Bytes()
	k.Wipe()
	if !bytes.Equal(held, make([]byte, len(raw))) {
		t.Errorf("Wipe left the bytes: %x", held)
	}
	if copyOfK.Len() != 0 || copyOfK.Bytes() != nil || copyOfK.Equal(same) {
		t.Error("a copy of a wiped key still holds bytes")
	}
	k.Wipe()       // idempotent
	(Key{}).Wipe() // no-op on the zero Key
}

func TestGenerate(t *testing.T) {
	a, b := Generate(32), Generate(32)
	if a.Len() != 32 || b.Len() != 32 || a.Equal(b) {
		t.Errorf("Generate(32) gave lengths %d and %d, equal: %v", a.Len(), b.Len(), a.Equal(b))
	}
}

// TestKeyWipedWhenDropped: once no copy of a Key is reachable, the garbage
// collector's cleanup zeroes its bytes.
func TestKeyWipedWhenDropped(t *testing.T) {
	held := func() []byte {
		k := New(raw)
		return k.Bytes() // the slice, not the Key, survives
	}()
	for range 100 {
		runtime.GC()
		runtime.Gosched()
		if bytes.Equal(held, make([]byte, len(raw))) {
			return
		}
	}
	t.Fatal("the bytes of a dropped Key were not wiped after 100 collections")
}

func TestTokenEqual(t *testing.T) {
	cases := []struct {
		got, want string
		equal     bool
	}{
		{"tok_abc", "tok_abc", true},
		{"", "", true},
		{"tok_abc", "tok_abd", false},
		{"tok_ab", "tok_abc", false},
		{"tok_abc", "", false},
		{"", "tok_abc", false},
	}
	for _, c := range cases {
		if got := TokenEqual(c.got, c.want); got != c.equal {
			t.Errorf("TokenEqual(%q, %q) = %v", c.got, c.want, got)
		}
	}
}
