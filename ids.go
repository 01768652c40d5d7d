package byok

import (
	"fmt"
	"strings"
)

// idReserved are the characters no id may contain: ids appear in URL
// paths (/v1/tenants/{tenant}/…, console links), where '/' ends a segment,
// '?' and '#' end the path and '%' starts an escape. A client that escapes
// them reaches the id, one that does not (a hand-typed curl, a proxy that
// decodes %2F) reaches another route or another id.
const idReserved = "/?#%"

// CheckID reports whether id is a valid tenant or scope id, as an
// [*InputError] naming arg: 1 to [MaxIDLen] bytes, no space or control
// character, none of / ? # %, and not "." or ".." (a URL path cannot carry
// them: the path is cleaned, /v1/tenants/../key is /v1/key). It is the one
// rule: the keyring, the lifecycle and the HTTP API all apply it.
func CheckID(arg, id string) error {
	if id == "" {
		return &InputError{Arg: arg, Reason: "is empty"}
	}
	if len(id) > MaxIDLen {
		return &InputError{Arg: arg, Reason: fmt.Sprintf("is %d bytes, the limit is %d", len(id), MaxIDLen)}
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c == 0x7f {
			return &InputError{Arg: arg, Reason: fmt.Sprintf("contains a space or control character at byte %d; use printable characters only", i)}
		}
	}
	if i := strings.IndexAny(id, idReserved); i >= 0 {
		return &InputError{Arg: arg, Reason: fmt.Sprintf("contains %q at byte %d; ids appear in URL paths, so / ? # and %% are not allowed", id[i:i+1], i)}
	}
	if id == "." || id == ".." {
		return &InputError{Arg: arg, Reason: fmt.Sprintf("is %q, which a URL path cannot carry; choose another id", id)}
	}
	return nil
}

// checkID is [CheckID].
func checkID(arg, id string) error { return CheckID(arg, id) }
