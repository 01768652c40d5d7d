package gcpkmsemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// The HTTP control API: the Go control methods as HTTPS routes under
// https://TOKEN_ADDR/control/ on the token listener, for scripts and
// clients in other languages when the emulator runs as a process. It has
// no authentication and answers only callers on loopback. Bodies are JSON,
// decoded strictly; errors are {"error":{"code","message"}} with 400
// BadRequest or 404 NotFound.
func (e *Emulator) controlRoutes(mux *http.ServeMux) {
	route := func(pattern string, h func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			if host, _, _ := net.SplitHostPort(r.RemoteAddr); !net.ParseIP(host).IsLoopback() {
				writeControlError(w, http.StatusForbidden, "Forbidden", "the control API answers loopback callers only")
				return
			}
			v, err := h(r)
			switch {
			case errors.Is(err, ErrNotFound):
				writeControlError(w, http.StatusNotFound, "NotFound", err.Error())
			case err != nil:
				writeControlError(w, http.StatusBadRequest, "BadRequest", err.Error())
			case v == nil:
				w.WriteHeader(http.StatusNoContent)
			default:
				json.NewEncoder(w).Encode(v)
			}
		})
	}
	route("GET /control/ca.pem", func(*http.Request) (any, error) { return string(e.CACertPEM()), nil })
	route("GET /control/calls", func(*http.Request) (any, error) { return callList(e.Calls()), nil })
	route("DELETE /control/calls", func(*http.Request) (any, error) { e.ResetCalls(); return nil, nil })
	route("POST /control/faults", func(r *http.Request) (any, error) {
		var in faultJSON
		if err := decodeStrict(r, &in); err != nil {
			return nil, err
		}
		f, err := in.fault()
		if err != nil {
			return nil, err
		}
		e.InjectFault(f)
		return nil, nil
	})
	route("DELETE /control/faults", func(*http.Request) (any, error) { e.ClearFaults(); return nil, nil })
	route("GET /control/service-accounts", func(*http.Request) (any, error) { return e.ServiceAccounts(), nil })
	route("POST /control/service-accounts", func(r *http.Request) (any, error) {
		var in struct{ Project, AccountID string }
		if err := decodeStrict(r, &in); err != nil {
			return nil, err
		}
		email, err := e.CreateServiceAccount(in.Project, in.AccountID)
		return map[string]string{"email": email}, err
	})
	route("POST /control/service-accounts/{email}/keys", func(r *http.Request) (any, error) {
		b, err := e.CreateServiceAccountKey(r.PathValue("email"))
		return json.RawMessage(b), err
	})
	route("PUT /control/service-accounts/{email}/disabled", func(r *http.Request) (any, error) {
		var in struct{ Disabled bool }
		if err := decodeStrict(r, &in); err != nil {
			return nil, err
		}
		return nil, e.SetServiceAccountDisabled(r.PathValue("email"), in.Disabled)
	})
	binding := func(add bool) func(r *http.Request) (any, error) {
		return func(r *http.Request) (any, error) {
			var in struct{ Resource, Role, Member string }
			if err := decodeStrict(r, &in); err != nil {
				return nil, err
			}
			if add {
				return nil, e.AddBinding(in.Resource, in.Role, in.Member)
			}
			return nil, e.RemoveBinding(in.Resource, in.Role, in.Member)
		}
	}
	route("POST /control/bindings", binding(true))
	route("DELETE /control/bindings", binding(false))
	route("GET /control/clock", func(*http.Request) (any, error) { return map[string]time.Time{"now": e.Now()}, nil })
	route("POST /control/clock/advance", func(r *http.Request) (any, error) {
		var in struct{ Duration string }
		if err := decodeStrict(r, &in); err != nil {
			return nil, err
		}
		d, err := time.ParseDuration(in.Duration)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("duration %q: a non-negative Go duration such as \"25h\"", in.Duration)
		}
		e.Advance(d)
		return map[string]time.Time{"now": e.Now()}, nil
	})
	route("POST /control/seed", func(r *http.Request) (any, error) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, err
		}
		s, err := ParseSeed(b)
		if err != nil {
			return nil, err
		}
		return nil, e.ApplySeed(s)
	})
}

// faultJSON is a Fault in the control API: latency a Go duration, code a
// gRPC code name ("UNAVAILABLE", "RESOURCE_EXHAUSTED", …).
type faultJSON struct {
	Methods  []string `json:"methods"`
	Resource string   `json:"resource"`
	Latency  string   `json:"latency"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Reset    bool     `json:"reset"`
	Count    int      `json:"count"`
}

func (in faultJSON) fault() (Fault, error) {
	f := Fault{Methods: in.Methods, Resource: in.Resource, Message: in.Message, Reset: in.Reset, Count: in.Count}
	if in.Latency != "" {
		d, err := time.ParseDuration(in.Latency)
		if err != nil || d < 0 {
			return Fault{}, fmt.Errorf("latency %q: a non-negative Go duration such as \"50ms\"", in.Latency)
		}
		f.Latency = d
	}
	if in.Code != "" {
		if err := f.Code.UnmarshalJSON([]byte(`"` + strings.ToUpper(in.Code) + `"`)); err != nil {
			return Fault{}, fmt.Errorf("code %q: a gRPC code name such as UNAVAILABLE", in.Code)
		}
	}
	return f, nil
}

type callJSON struct {
	Method    string `json:"method"`
	Principal string `json:"principal"`
	Code      string `json:"code"`
	Count     int    `json:"count"`
}

func callList(calls map[Call]int) []callJSON {
	out := []callJSON{}
	for c, n := range calls {
		out = append(out, callJSON{Method: c.Method, Principal: c.Principal, Code: codeName(c.Code), Count: n})
	}
	return out
}

// codeNames are the canonical names of the gRPC codes, by value.
var codeNames = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// codeName is the canonical name of a code (OK, UNAVAILABLE, …).
func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return c.String()
}

func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %v", err)
	}
	return nil
}

func writeControlError(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
