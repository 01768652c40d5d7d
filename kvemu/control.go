package kvemu

import (
	"encoding/json"
	"net/http"
)

// controlPrefix is the path prefix of the HTTP control API on the loopback
// host names.
const controlPrefix = "/control/"

// errorBody is the error envelope of the control API, shaped like Key
// Vault's.
func errorBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// truncate shortens untrusted input echoed in messages.
func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// controlHandler serves the HTTP control API.
func (e *Emulator) controlHandler() http.Handler {
	mux := http.NewServeMux()
	return mux
}
