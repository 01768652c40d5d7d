package server

import (
	"strings"
	"testing"

	"github.com/openbyok/byok/server/token"
)

// TestIdentitiesNotOffered: with a connector that offers none of the
// platform's identities, the identities route says so for each mode, and
// PUT refuses both modes with that sentence as the error on credential.
func TestIdentitiesNotOffered(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme", "chat")
	admin := e.token(t, token.TenantAdmin, "acme")
	var v identitiesView
	e.must(t, 200, "GET", "/v1/tenants/acme/key/identities", admin, nil).decode(t, &v)
	if v.ManagedIdentity != nil || v.WorkloadIdentity != nil ||
		v.NotOffered["managed-identity"] != "managed-identity is not offered by this platform" ||
		v.NotOffered["workload-identity"] != "workload-identity is not offered by this platform" {
		t.Fatalf("identities = %+v", v)
	}
	r := e.do(t, "PUT", "/v1/tenants/acme/key", admin, map[string]any{"key_id": e.cmk, "credential": "managed-identity"})
	var b errorBody
	r.decode(t, &b)
	if r.status != 400 || b.Error == nil || b.Error.Field != "credential" || !strings.HasPrefix(b.Error.Message, "credential: managed-identity is not offered by this platform") {
		t.Fatalf("PUT with managed-identity: %d %s", r.status, r.body)
	}
	if strings.Contains(string(e.must(t, 200, "GET", "/v1/tenants/acme/key", admin, nil).body), "managed-identity") {
		t.Error("the refused settings were saved")
	}
	e.must(t, 403, "GET", "/v1/tenants/acme/key/identities", e.token(t, token.Service, "acme"), nil)
}
