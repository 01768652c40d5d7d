package server

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"sync"
)

// The data routes' JSON, without reflection on the common path.
//
// Requests: decodeData reads the body into a pooled buffer and parses it
// with parseData, which accepts only the plain shape those routes take —
// one object of known, lower-case keys, each at most once, whose values
// are null or strings of printable ASCII without escapes — and yields
// exactly what encoding/json would. Any other body (an escape, another
// key, a duplicate, a number, trailing data, a body over the limit…) goes
// to encoding/json, exactly as before, so every error is the one
// encoding/json gives.
//
// Answers: dataResult and batchResponse append their JSON as encoding/json
// with SetEscapeHTML(false) writes it (a test holds the two together), into
// a pooled buffer written at once.

// bufPool holds the buffers of request bodies.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled is the largest buffer kept in the pool.
const maxPooled = 256 * kib

// outPool holds the buffers of answers.
var outPool = sync.Pool{New: func() any { return new([]byte) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() > maxPooled {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// errReader returns err on every read.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// decodeData decodes the body of a data route into v, a *dataItem or a
// *batchRequest, as decode(c, v, false) does.
func decodeData(c *call, v any) error {
	if err := checkContentType(c); err != nil {
		return err
	}
	buf := getBuf()
	defer putBuf(buf)
	if n := c.r.ContentLength; n > 0 && n <= maxPooled {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, rerr := buf.ReadFrom(c.r.Body)
	if rerr == nil && parseData(buf.Bytes(), v) {
		return nil
	}
	// encoding/json over the same bytes, then whatever the body's reader
	// said after them (EOF, or the error of a body over the limit).
	rest := io.Reader(errReader{io.EOF})
	if rerr != nil {
		rest = errReader{rerr}
	}
	switch v := v.(type) {
	case *dataItem:
		*v = dataItem{}
	case *batchRequest:
		*v = batchRequest{}
	}
	return decodeFrom(io.MultiReader(bytes.NewReader(buf.Bytes()), rest), v, false)
}

// parseData parses b into v (a *dataItem or *batchRequest) if b has the
// plain shape; it reports false, leaving v partly set, otherwise.
func parseData(b []byte, v any) bool {
	p := scanner{b: b}
	var ok bool
	switch v := v.(type) {
	case *dataItem:
		ok = p.item(v)
	case *batchRequest:
		ok = p.batch(v)
	}
	p.ws()
	return ok && p.i == len(p.b)
}

// scanner reads the plain shape of JSON that parseData accepts.
type scanner struct {
	b []byte
	i int
}

func (p *scanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// lit consumes c after white space, if it is there.
func (p *scanner) lit(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// null consumes a null after white space, if it is there.
func (p *scanner) null() bool {
	p.ws()
	if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return true
	}
	return false
}

// str consumes a string of printable ASCII with no escape and returns its
// content, which encoding/json would decode to the same bytes.
func (p *scanner) str() ([]byte, bool) {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	j := start
	// Eight bytes at a time while none is special: a quote, a backslash,
	// a control character or a byte of a multi-byte character.
	for ; j+8 <= len(p.b); j += 8 {
		x := binary.LittleEndian.Uint64(p.b[j:])
		if x&msb != 0 || hasZero(x^(lsb*'"')) || hasZero(x^(lsb*'\\')) || (x-lsb*0x20)&^x&msb != 0 {
			break
		}
	}
	for ; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return p.b[start:j], true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasZero reports whether a byte of x is zero.
func hasZero(x uint64) bool { return (x-lsb)&^x&msb != 0 }

// item parses one data item: an object of op, scope, plaintext,
// ciphertext and aad, each at most once.
func (p *scanner) item(it *dataItem) bool {
	if !p.lit('{') {
		return false
	}
	if p.lit('}') {
		return true
	}
	var seen uint8
	for {
		key, ok := p.str()
		if !ok || !p.lit(':') {
			return false
		}
		var bit uint8
		switch string(key) {
		case "op":
			bit = 1
		case "scope":
			bit = 2
		case "plaintext":
			bit = 4
		case "ciphertext":
			bit = 8
		case "aad":
			bit = 16
		default:
			return false // unknown, or another case of a known key
		}
		if seen&bit != 0 {
			return false // a duplicate: encoding/json decides
		}
		seen |= bit
		// null leaves a string as it is and sets a pointer to nil, as
		// encoding/json does; every field starts so.
		if !p.null() {
			val, ok := p.str()
			if !ok {
				return false
			}
			switch bit {
			case 1:
				it.Op = opName(val)
			case 2:
				s := string(val)
				it.Scope = &s
			case 4:
				s := string(val)
				it.Plaintext = &s
			case 8:
				s := string(val)
				it.Ciphertext = &s
			case 16:
				it.AAD = string(val)
			}
		}
		if p.lit(',') {
			continue
		}
		return p.lit('}')
	}
}

// opName returns op as a string, without allocating for the known ones.
func opName(op []byte) string {
	switch string(op) {
	case opEncrypt:
		return opEncrypt
	case opDecrypt:
		return opDecrypt
	case opReencrypt:
		return opReencrypt
	}
	return string(op)
}

// batch parses {"items": [item, …]} or {"items": null} or {}.
func (p *scanner) batch(req *batchRequest) bool {
	if !p.lit('{') {
		return false
	}
	if p.lit('}') {
		return true
	}
	key, ok := p.str()
	if !ok || string(key) != "items" || !p.lit(':') {
		return false
	}
	if !p.null() {
		if !p.lit('[') {
			return false
		}
		req.Items = make([]dataItem, 0, 16)
		if !p.lit(']') {
			for {
				req.Items = append(req.Items, dataItem{})
				if !p.item(&req.Items[len(req.Items)-1]) {
					return false
				}
				if p.lit(',') {
					continue
				}
				if !p.lit(']') {
					return false
				}
				break
			}
		}
	}
	return p.lit('}')
}

// jsonAppender is an answer that appends its own JSON, without the
// trailing newline.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// appendJSON appends r as encoding/json writes it.
func (r dataResult) appendJSON(b []byte) []byte {
	if r.Error != nil {
		return appendStdJSON(b, r)
	}
	b = append(b, '{')
	if len(r.Plaintext) > 0 {
		b = append(b, `"plaintext":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Plaintext)
		b = append(b, '"')
	}
	if len(r.Ciphertext) > 0 {
		if len(r.Plaintext) > 0 {
			b = append(b, ',')
		}
		b = append(b, `"ciphertext":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Ciphertext)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendJSON appends r as encoding/json writes it.
func (r batchResponse) appendJSON(b []byte) []byte {
	if r.Results == nil {
		return append(b, `{"results":null}`...)
	}
	b = append(b, `{"results":[`...)
	for i, res := range r.Results {
		if i > 0 {
			b = append(b, ',')
		}
		b = res.appendJSON(b)
	}
	return append(b, "]}"...)
}

// appendStdJSON appends v as writeJSON's encoder writes it, without the
// newline.
func appendStdJSON(b []byte, v any) []byte {
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
