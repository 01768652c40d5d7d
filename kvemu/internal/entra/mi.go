package entra

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Managed identity endpoint paths, served by [Service.ServeManagedIdentity].
const (
	// IMDSPath is the token path of the Instance Metadata Service at
	// http://169.254.169.254.
	IMDSPath = "/metadata/identity/oauth2/token"
	// AppServicePath is the path of the App Service style endpoint that
	// IDENTITY_ENDPOINT points to.
	AppServicePath = "/msi/token"
)

// ServeManagedIdentity serves the managed identity token endpoints: IMDS
// (GET [IMDSPath] with "Metadata: true") and App Service (GET
// [AppServicePath] with X-IDENTITY-HEADER). Both pick the system-assigned
// identity unless client_id, object_id, msi_res_id or mi_res_id names a
// user-assigned one.
func (s *Service) ServeManagedIdentity(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.EqualFold(r.URL.Path, IMDSPath):
		s.imds(w, r)
	case strings.EqualFold(r.URL.Path, AppServicePath):
		s.appService(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "kvemu serves managed identity tokens at " + IMDSPath + " and " + AppServicePath})
	}
}

// miError answers the IMDS error shape.
func miError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Service) imds(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		miError(w, http.StatusMethodNotAllowed, "invalid_request", "IMDS token requests must be GET")
		return
	}
	if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		miError(w, http.StatusBadRequest, "invalid_request", "Required metadata header not specified")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		miError(w, http.StatusBadRequest, "invalid_request", "Required query variable 'api-version' is missing")
		return
	}
	mi, resource, status, desc := s.miToken(q.Get("resource"), q.Get("client_id"), q.Get("object_id"), firstOf(q.Get("msi_res_id"), q.Get("mi_res_id")))
	if status != 0 {
		code := "invalid_request"
		if status == http.StatusBadRequest && resource != "" {
			code = "invalid_resource"
		}
		miError(w, status, code, desc)
		return
	}
	s.answerMI(w, mi, resource, true)
}

func (s *Service) appService(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"statusCode": 405, "message": "Managed identity token requests must be GET."})
		return
	}
	if h := r.Header.Get("X-IDENTITY-HEADER"); h == "" || h != s.ManagedIdentityHeader() {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong; send the value of IDENTITY_HEADER."})
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "message": "The api-version query parameter is required (2019-08-01)."})
		return
	}
	mi, resource, status, desc := s.miToken(q.Get("resource"), q.Get("client_id"), q.Get("object_id"), firstOf(q.Get("mi_res_id"), q.Get("msi_res_id")))
	if status != 0 {
		writeJSON(w, status, map[string]any{"statusCode": status, "message": desc, "correlationId": NewGUID()})
		return
	}
	s.answerMI(w, mi, resource, false)
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// miToken selects the identity and validates the resource. A non-zero
// status is an error to answer with desc.
func (s *Service) miToken(resource, clientID, objectID, resourceID string) (ManagedIdentity, string, int, string) {
	if resource == "" {
		return ManagedIdentity{}, "", http.StatusBadRequest, "Required audience parameter not specified"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *ManagedIdentity
	for _, mi := range s.identities {
		switch {
		case clientID != "":
			if strings.EqualFold(mi.ClientID, clientID) {
				found = mi
			}
		case objectID != "":
			if strings.EqualFold(mi.ObjectID, objectID) {
				found = mi
			}
		case resourceID != "":
			if strings.EqualFold(mi.ResourceID, resourceID) {
				found = mi
			}
		case mi.SystemAssigned:
			found = mi
		}
	}
	if found == nil {
		return ManagedIdentity{}, "", http.StatusBadRequest, "Identity not found"
	}
	res, ok := s.resolveResource(resource)
	if !ok {
		s.count(found.TenantID, found.ClientID, false)
		return ManagedIdentity{}, res, http.StatusBadRequest, "AADSTS500011: The resource principal named " + truncate(resource) + " was not found in the tenant."
	}
	s.count(found.TenantID, found.ClientID, true)
	return *found, res, 0, ""
}

func (s *Service) answerMI(w http.ResponseWriter, mi ManagedIdentity, resource string, imds bool) {
	token, expires, err := s.issue(principal{
		tenantID: mi.TenantID, clientID: mi.ClientID, objectID: mi.ObjectID, acr: "2", miResourceID: mi.ResourceID,
	}, resource)
	if err != nil {
		miError(w, http.StatusInternalServerError, "internal_error", "the emulator could not sign the token")
		return
	}
	now := s.now()
	body := map[string]string{
		"access_token": token, "expires_on": strconv.FormatInt(expires.Unix(), 10),
		"resource": resource, "token_type": "Bearer", "client_id": mi.ClientID,
	}
	if imds {
		secs := strconv.FormatInt(int64(expires.Sub(now)/time.Second), 10)
		body["expires_in"], body["ext_expires_in"] = secs, secs
		body["not_before"] = strconv.FormatInt(now.Unix(), 10)
	}
	writeJSON(w, http.StatusOK, body)
}
