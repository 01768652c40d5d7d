package byok_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/openbyok/byok"

// importRules says which packages a package must never depend on, directly
// or not: imports point down (DESIGN §5), and the server binary links no
// test code.
var importRules = []struct {
	pkg       string
	forbidden []string // suffixes of module paths ("" forbids every package of ours), or other import paths
}{
	{".", []string{"/store", "/server", "/config", "/cmd", "/lifecycle", "/client", "/kvemu"}},
	{"./internal/envelope", []string{""}},
	{"./internal/secret", []string{""}},
	{"./kms", []string{""}},
	{"./cmd/byok", serverBinaryForbids},
	// The provider boundary: the lifecycle knows providers only through
	// its Connector; its records are a leaf that the stores implement
	// without the lifecycle; neither links a cloud's SDK.
	{"./lifecycle", append([]string{"/lifecycle/azure", "/store/sqlite", "/store/postgres", "/store/sqlstore", "/server$", "/server/console"}, cloudSDKs...)},
	{"./lifecycle/record", append([]string{"/lifecycle$", "/lifecycle/azure", "/store/sqlite", "/store/postgres", "/store/sqlstore"}, cloudSDKs...)},
	{"./store/sqlite", append([]string{"/lifecycle$", "/lifecycle/azure", "/server$", "/server/console"}, cloudSDKs...)},
	{"./store/postgres", append([]string{"/lifecycle$", "/lifecycle/azure", "/server$", "/server/console"}, cloudSDKs...)},
	{"./store/sqlstore", append([]string{"/lifecycle$", "/lifecycle/azure", "/server$", "/server/console"}, cloudSDKs...)},
}

// cloudSDKs are the module paths of the clouds' SDKs: only a provider's
// own packages (kms/azurekv, lifecycle/azure, ...) and the commands link
// them.
var cloudSDKs = []string{"github.com/Azure/azure-sdk-for-go", "github.com/aws/aws-sdk-go-v2", "cloud.google.com/go"}

// serverBinaryForbids is what the byok binary, which runs serve in
// production, must not link: package testing, the test-support packages
// and the benchmarks, which are cmd/byok-bench's.
var serverBinaryForbids = []string{
	"testing", "/kms/kmstest", "/internal/bench",
	"/lifecycle/lifecycletest", "/store/storetest", "/client/clienttest", "/internal/pgtest",
}

func TestImportsPointDown(t *testing.T) {
	for _, r := range importRules {
		for _, v := range violations(t, r.pkg, r.forbidden) {
			t.Error(v)
		}
	}
}

// TestImportCheckCanFail proves the check finds real dependencies: the
// SQLite store depends on the root package, and byok-bench on the test
// code the server binary must not link.
func TestImportCheckCanFail(t *testing.T) {
	if v := violations(t, "./store/sqlite", []string{""}); len(v) == 0 {
		t.Fatal("no violation found for store/sqlite, which imports the root package")
	}
	// The Azure connector links the lifecycle and Azure's SDK; "$" names
	// the lifecycle alone, not its record package under it.
	if v := violations(t, "./lifecycle/azure", append([]string{"/lifecycle$"}, cloudSDKs...)); len(v) < 2 {
		t.Fatalf("violations of lifecycle/azure, which imports the lifecycle and Azure's SDK: %v", v)
	}
	if v := violations(t, "./store/sqlite", []string{"/lifecycle$"}); len(v) != 0 {
		t.Fatalf("\"/lifecycle$\" matched more than the lifecycle itself: %v", v)
	}
	// byok-bench links what the server binary must not: testing (through
	// testing.Benchmark), the fake provider and the benchmarks.
	v := strings.Join(violations(t, "./cmd/byok-bench", serverBinaryForbids), "\n")
	for _, dep := range []string{" testing", " " + module + "/kms/kmstest", " " + module + "/internal/bench"} {
		if !strings.Contains(v+"\n", " depends on"+dep+"\n") {
			t.Errorf("no violation found for cmd/byok-bench, which depends on%s; found:\n%s", dep, v)
		}
	}
}

// violations lists the dependencies of pkg that a forbidden f names: for f
// "" or beginning with "/", module+f and the packages under it; for any
// other f, the import path f and the packages under it ("testing" forbids
// testing/quick too). An f ending in "$" names that package alone
// ("/lifecycle$" allows lifecycle/record).
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
			p, exact := strings.CutSuffix(f, "$")
			if p == "" || strings.HasPrefix(p, "/") {
				p = module + p
			}
			if dep == p || !exact && strings.HasPrefix(dep, p+"/") || f == "" && strings.HasPrefix(dep, module) {
				v = append(v, self+" depends on "+dep)
			}
		}
	}
	return v
}
