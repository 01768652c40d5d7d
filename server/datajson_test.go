package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// stdDecode decodes b as decodeFrom does, with encoding/json.
func stdDecode(b []byte, v any) error {
	return decodeFrom(bytes.NewReader(b), v, false)
}

// dataBodies are bodies of the data routes, plain and not.
var dataBodies = []string{
	`{"scope":"chat","plaintext":"aGk="}`,
	` { "scope" : "chat" , "ciphertext" : "AAAA" , "aad" : "eA==" } ` + "\n",
	`{"op":"encrypt","scope":"chat","plaintext":""}`,
	`{"scope":null,"plaintext":null,"ciphertext":null,"aad":null,"op":null}`,
	`{}`,
	`{"scope":"a b\u0041"}`,
	`{"scope":"a\"b"}`,
	`{"Scope":"chat"}`,
	`{"scope":"chat","scope":"other"}`,
	`{"scope":"ch` + "\x01" + `at"}`,
	`{"scope":"chät"}`,
	`{"scope":"ch` + "\xff" + `at"}`,
	`{"scope":5}`,
	`{"scope":"chat",}`,
	`{"scope":"chat"} {}`,
	`{"scope":"chat"}x`,
	`{"scope":"chat"`,
	`{"scope":nullx}`,
	`{"unknown":"x"}`,
	`{"items":[{"op":"encrypt","scope":"chat","plaintext":"aGk="},{"op":"decrypt","scope":"chat","ciphertext":"AAAA"}]}`,
	`{"items":[]}`,
	`{"items":null}`,
	`{"items":[null]}`,
	`{"items":[{"op":"encrypt"},]}`,
	`{"items":[{"op":"encrypt"}],"items":[]}`,
	`{"items":[{"op":"encrypt","bogus":1}]}`,
	`{"items":{}}`,
	`[]`,
	`null`,
	``,
	"\ufeff{}",
	// Special bytes at every offset of an eight-byte word, for the fast scan.
	`{"scope":"abcdefgh\"ijklmnop","plaintext":"QUJDREVGR0hJSktMTU5PUA=="}`,
	`{"scope":"abcdefghijklmno\u0041p"}`,
	`{"scope":"abcdefghijk` + "\x1f" + `lmnop"}`,
	`{"scope":"abcdefghijklm` + "\xc3\xa9" + `nop"}`,
	`{"scope":"abcdefghijklmnopqrstuvw` + "\x7f" + `"}`,
	`{"aad":"` + strings.Repeat("QUJD", 40) + `","scope":"` + strings.Repeat("x", 37) + `"}`,
}

// parseData accepts only bodies that encoding/json decodes, and yields
// exactly what encoding/json yields.
func TestParseDataMatchesEncodingJSON(t *testing.T) {
	for _, body := range dataBodies {
		checkParseData(t, []byte(body))
	}
}

func checkParseData(t *testing.T, b []byte) {
	t.Helper()
	for _, mk := range []func() any{func() any { return new(dataItem) }, func() any { return new(batchRequest) }} {
		fast, std := mk(), mk()
		if !parseData(b, fast) {
			continue
		}
		if err := stdDecode(b, std); err != nil {
			t.Errorf("parseData accepted %q as %T, which encoding/json refuses: %v", b, fast, err)
			continue
		}
		if !reflect.DeepEqual(fast, std) {
			t.Errorf("parseData(%q) = %+v, encoding/json gives %+v", b, fast, std)
		}
	}
}

func FuzzParseData(f *testing.F) {
	for _, b := range dataBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParseData(t, b) })
}

// The answers' own JSON is byte for byte what writeJSON's encoder writes.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	e := &Error{Status: 400, Code: CodeInvalidInput, Field: "items[1].scope", Message: `scope <is> "empty" & more`}
	for _, v := range []jsonAppender{
		dataResult{},
		dataResult{Plaintext: []byte("hello")},
		dataResult{Plaintext: []byte{}},
		dataResult{Ciphertext: bytes.Repeat([]byte{0xfb, 0xff}, 700)},
		dataResult{Plaintext: []byte("a"), Ciphertext: []byte("b")},
		dataResult{Error: e},
		batchResponse{},
		batchResponse{Results: []dataResult{}},
		batchResponse{Results: []dataResult{{Ciphertext: []byte("x")}, {Error: e}, {Plaintext: []byte("y")}}},
	} {
		var want strings.Builder
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		if got := string(v.appendJSON(nil)) + "\n"; got != want.String() {
			t.Errorf("appendJSON of %+v = %s, encoding/json writes %s", v, got, want.String())
		}
	}
}
