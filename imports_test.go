package byok_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/openbyok/byok"

// importRules says which packages of this module a package must never
// depend on, directly or not: imports point down (DESIGN §5).
var importRules = []struct {
	pkg       string
	forbidden []string // suffixes of module paths; "" forbids every package of ours
}{
	{".", []string{"/store", "/server", "/config", "/cmd", "/lifecycle", "/client", "/kvemu"}},
	{"./internal/envelope", []string{""}},
	{"./internal/secret", []string{""}},
	{"./kms", []string{""}},
}

func TestImportsPointDown(t *testing.T) {
	for _, r := range importRules {
		for _, v := range violations(t, r.pkg, r.forbidden) {
			t.Error(v)
		}
	}
}

// TestImportCheckCanFail proves the check finds a real dependency: the
// SQLite store depends on the root package.
func TestImportCheckCanFail(t *testing.T) {
	if v := violations(t, "./store/sqlite", []string{""}); len(v) == 0 {
		t.Fatal("no violation found for store/sqlite, which imports the root package")
	}
}

// violations lists the dependencies of pkg that start with module+f for a
// forbidden f.
func violations(t *testing.T, pkg string, forbidden []string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	deps := strings.Fields(string(out))
	self := deps[len(deps)-1] // go list -deps prints the package itself last
	var v []string
	for _, dep := range deps[:len(deps)-1] {
		for _, f := range forbidden {
			if dep == module+f || strings.HasPrefix(dep, module+f+"/") || f == "" && strings.HasPrefix(dep, module) {
				v = append(v, self+" depends on "+dep)
			}
		}
	}
	return v
}
