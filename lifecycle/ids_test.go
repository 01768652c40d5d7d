package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/lifecycle"
)

// The lifecycle checks ids by the keyring's one rule: a tenant or scope id
// that a URL path cannot carry is refused before anything is written.
func TestCreateTenantRefusesUnreachableIDs(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for _, scopes := range [][]string{{"."}, {"chat", ".."}, {"a/b"}, {"50%"}} {
		err := f.svc.CreateTenant(ctx, operator, "acme", byok.Grace, scopes)
		var fe *lifecycle.FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "scopes[") {
			t.Errorf("CreateTenant with scopes %q: %v, want a FieldError of scopes[i]", scopes, err)
		}
	}
	for _, id := range []string{".", "..", "a/b", "a?b"} {
		if err := f.svc.CreateTenant(ctx, operator, id, byok.Grace, []string{"chat"}); !errors.Is(err, byok.ErrInvalidInput) {
			t.Errorf("CreateTenant(%q): %v, want ErrInvalidInput", id, err)
		}
	}
	if err := f.svc.CreateTenant(ctx, operator, "acme", byok.Grace, []string{"chat", "a.b"}); err != nil {
		t.Fatalf("CreateTenant after the refusals: %v", err)
	}
}
