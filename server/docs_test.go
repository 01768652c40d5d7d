package server

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIMatchesRoutes holds docs/openapi.yaml to the route table:
// every route is documented with its method and path, and nothing is
// documented that is not served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("docs/openapi.yaml is OpenAPI %q, want 3.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	var served []string
	for _, rt := range (&server{}).table() {
		served = append(served, rt.method+" "+rt.pattern)
	}
	slices.Sort(documented)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("docs/openapi.yaml documents %s, which is not served", d)
		}
	}
}

// TestAPIDocListsEveryRouteAndCode holds docs/api.md to the route table
// and the error codes.
func TestAPIDocListsEveryRouteAndCode(t *testing.T) {
	b, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, rt := range (&server{}).table() {
		if !strings.Contains(md, rt.method+" "+rt.pattern) {
			t.Errorf("docs/api.md does not show %s %s", rt.method, rt.pattern)
		}
	}
	for _, code := range []string{CodeInvalidInput, CodeBadJSON, CodeUnknownField, CodeDecryptFailed, CodeInvalidCiphertext,
		CodeUnauthenticated, CodeTokenExpired, CodeTokenRevoked, CodeForbidden, CodeKeyRevoked, CodeNotFound,
		CodeMethodNotAllowed, CodeInvalidState, CodeExists, CodeConflict, CodeBodyTooLarge, CodeUnsupportedMedia,
		CodeKeyUnavailable, CodeTimeout, CodeUnavailable, CodeInternal} {
		if !strings.Contains(md, "`"+code+"`") {
			t.Errorf("docs/api.md's error table lacks `%s`", code)
		}
	}
}
