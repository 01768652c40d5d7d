package envelope

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsOnlyStandardLibrary holds the layering rule of DESIGN.md: the
// crypto core imports nothing but the standard library.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Imports) == 0 {
		t.Fatal("found no imports; is the package directory right?")
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("package envelope imports %s; it may import only the standard library", imp)
		}
	}
}
