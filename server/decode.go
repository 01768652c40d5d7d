package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/openbyok/byok"
)

// decode reads the body of c as exactly one JSON value into v, strictly:
// an unknown field, a value of the wrong type, trailing data or a body
// that is not application/json is an error that names what was wrong. An
// empty body decodes as {} when emptyOK.
func decode(c *call, v any, emptyOK bool) error {
	if err := checkContentType(c); err != nil {
		return err
	}
	return decodeFrom(c.r.Body, v, emptyOK)
}

// checkContentType fails unless c's body is declared JSON. A request
// without a body (Content-Length 0, as a POST of a route that takes none
// sends) need not declare a type; one with a body must.
func checkContentType(c *call) error {
	ct := c.r.Header.Get("Content-Type")
	if ct == "" && c.r.ContentLength == 0 {
		return nil
	}
	if ct == "" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia,
			Message: "the request has a body but no Content-Type: send Content-Type: application/json"}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia,
			Message: "the body must be JSON: send Content-Type: application/json"}
	}
	return nil
}

// decodeFrom is decode of the body r.
func decodeFrom(r io.Reader, v any, emptyOK bool) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		if emptyOK {
			return nil
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeBadJSON, Message: "the body is empty; send a JSON object"}
	}
	if err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeBadJSON, Message: "the body holds more than one JSON value; send exactly one object"}
	}
	return nil
}

// jsonError maps an error of encoding/json to a 400 that names the field
// or the offset at fault. A body over the route's limit stays itself.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.As(err, &syntax):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadJSON,
			Message: fmt.Sprintf("the body is not valid JSON (at byte %d: %s)", syntax.Offset, syntax.Error())}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &Error{Status: http.StatusBadRequest, Code: CodeBadJSON,
				Message: fmt.Sprintf("the body is a JSON %s; send a JSON object", typ.Value)}
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidInput, Field: field,
			Message: fmt.Sprintf("%s is a JSON %s; it must be a %s", field, typ.Value, jsonTypeName(typ.Type.Kind().String()))}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadJSON, Message: "the body ends in the middle of a JSON value"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return &Error{Status: http.StatusBadRequest, Code: CodeUnknownField, Field: name,
			Message: fmt.Sprintf("field %q is not one this route takes; see docs/api.md for its fields", name)}
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeBadJSON, Message: "the body is not a JSON object of the right shape"}
}

// jsonTypeName names a Go kind as a JSON type.
func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	}
	return "number" // ints, uints, floats
}

// strictStd is standard base64 that refuses non-zero padding bits, made
// once: Strict returns a new Encoding, a copy of its tables, per call.
var strictStd = base64.StdEncoding.Strict()

// b64 decodes field, a standard base64 string (with padding, as
// encoding/json writes []byte), or fails naming the field.
func b64(field, s string) ([]byte, error) {
	b, err := strictStd.DecodeString(s)
	if err != nil {
		return nil, &byok.InputError{Arg: field, Reason: "is not standard base64 (RFC 4648 §4, with padding); encode the bytes again"}
	}
	return b, nil
}

// required fails naming field if p is nil.
func required[T any](field string, p *T) error {
	if p == nil {
		return &byok.InputError{Arg: field, Reason: "is missing; the route requires it"}
	}
	return nil
}

// parseTime parses field as an RFC 3339 time.
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &byok.InputError{Arg: field, Reason: fmt.Sprintf("%q is not an RFC 3339 time such as 2026-07-01T00:00:00Z", s)}
	}
	return t, nil
}

// parseDuration parses field as a Go duration ("720h", "90m").
func parseDuration(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &byok.InputError{Arg: field, Reason: fmt.Sprintf("%q is not a duration such as \"720h\"", s)}
	}
	return d, nil
}
