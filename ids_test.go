package byok_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/openbyok/byok"
)

// Ids that a URL path cannot carry, or whose characters change a URL's
// meaning, are refused by the one rule and so by the keyring; every other
// printable id is accepted.
func TestCheckID(t *testing.T) {
	for _, id := range []string{"acme", "a.b", "...", ".hidden", "a..b", "contoso-eu_1", "user@example.com", "ns:tenant", "café", "a+b", strings.Repeat("x", byok.MaxIDLen)} {
		if err := byok.CheckID("tenant", id); err != nil {
			t.Errorf("CheckID(%q) = %v, want nil", id, err)
		}
	}
	for id, why := range map[string]string{
		"":                                   "is empty",
		".":                                  `is "."`,
		"..":                                 `is ".."`,
		"a/b":                                `contains "/" at byte 1`,
		"/":                                  `contains "/"`,
		"a?b":                                `contains "?"`,
		"a#b":                                `contains "#"`,
		"50%":                                `contains "%" at byte 2`,
		"a%2Fb":                              `contains "%"`,
		"a b":                                "space or control character",
		strings.Repeat("x", byok.MaxIDLen+1): "the limit is 255",
	} {
		err := byok.CheckID("tenant", id)
		var in *byok.InputError
		if !errors.As(err, &in) || in.Arg != "tenant" || !errors.Is(err, byok.ErrInvalidInput) || !strings.Contains(err.Error(), why) {
			t.Errorf("CheckID(%q) = %v, want an *InputError of tenant saying %q", id, err, why)
		}
	}
}

func TestKeyringRefusesUnreachableIDs(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{".", "..", "a/b", "a%b"} {
		if err := f.kr.CreateTenant(f.ctx, id, byok.Grace); !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("CreateTenant(%q) = %v, want ErrInvalidInput", id, err)
		}
	}
	if err := f.kr.CreateTenant(f.ctx, "acme", byok.Grace); err != nil {
		t.Fatal(err)
	}
	for _, scope := range []string{".", "..", "chat?x"} {
		if _, err := f.kr.Encrypt(f.ctx, "acme", scope, []byte("x"), nil); !errors.Is(err, byok.ErrInvalidInput) || !strings.Contains(err.Error(), "scope") {
			t.Errorf("Encrypt with scope %q: %v, want ErrInvalidInput naming the scope", scope, err)
		}
	}
}
