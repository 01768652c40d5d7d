package entra

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxFormBytes bounds a token request body.
const maxFormBytes = 64 << 10

// aadError is an Entra error reply.
type aadError struct {
	status int
	err    string // OAuth error, e.g. invalid_client
	code   int    // AADSTS number
	msg    string // text after "AADSTSnnn: "
}

// write sends e as Entra's error JSON.
func (e *aadError) write(w http.ResponseWriter, now time.Time) {
	trace, corr := NewGUID(), NewGUID()
	ts := now.UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, e.status, map[string]any{
		"error": e.err,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.code, e.msg, trace, corr, ts),
		"error_codes":    []int{e.code},
		"timestamp":      ts,
		"trace_id":       trace,
		"correlation_id": corr,
		"error_uri":      "https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.code),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// ServeHTTP serves the login host (login.microsoftonline.com): instance
// discovery, openid-configuration, signing keys, the v1 and v2 token
// endpoints and admin consent.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	authority := "https://" + r.Host
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) < 2 {
		s.notFound(w, r)
		return
	}
	tenantSeg, rest := segs[0], strings.ToLower(strings.Join(segs[1:], "/"))
	switch rest {
	case "discovery/instance":
		s.instanceDiscovery(w, r)
	case "v2.0/.well-known/openid-configuration", ".well-known/openid-configuration":
		s.openIDConfiguration(w, authority, tenantSeg, strings.HasPrefix(rest, "v2.0"))
	case "discovery/v2.0/keys", "discovery/keys":
		s.keys(w)
	case "oauth2/v2.0/authorize":
		s.authorize(w, r, authority, tenantSeg)
	case "oauth2/v2.0/token", "oauth2/token":
		if r.Method == http.MethodPost && postValue(w, r, "grant_type") == "authorization_code" {
			s.codeGrant(w, r, authority, tenantSeg)
			return
		}
		s.tokenEndpoint(w, r, authority, tenantSeg, rest == "oauth2/token")
	case "adminconsent", "v2.0/adminconsent":
		s.adminConsent(w, r, tenantSeg)
	default:
		s.notFound(w, r)
	}
}

func (s *Service) notFound(w http.ResponseWriter, r *http.Request) {
	(&aadError{status: 404, err: "invalid_request", code: 900561,
		msg: fmt.Sprintf("The endpoint %s %s is not emulated by kvemu.", r.Method, truncate(r.URL.Path))}).write(w, s.now())
}

// isMeta reports whether t is a tenant placeholder rather than a tenant.
func isMeta(t string) bool {
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

func (s *Service) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	host := "login.microsoftonline.com"
	if ae := r.URL.Query().Get("authorization_endpoint"); ae != "" {
		if u, err := url.Parse(ae); err == nil && u.Host != "" {
			host = u.Host
		}
	}
	aliases := []string{host}
	if host == "login.microsoftonline.com" {
		aliases = []string{"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": "https://" + host + "/{tenant}/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host, "preferred_cache": host, "aliases": aliases,
		}},
	})
}

func (s *Service) openIDConfiguration(w http.ResponseWriter, authority, tenantSeg string, v2 bool) {
	tid, seg := "{tenantid}", strings.ToLower(tenantSeg)
	if !isMeta(tenantSeg) {
		s.mu.Lock()
		t := s.lookupTenant(tenantSeg)
		s.mu.Unlock()
		if t == nil {
			errUnknownTenant(tenantSeg).write(w, s.now())
			return
		}
		tid = t.ID
		seg = t.ID
	}
	// A tenant's endpoints are under its id; organizations' and common's
	// under that name, with the {tenantid} template as issuer.
	base := authority + "/" + seg
	doc := map[string]any{
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                authority + "/" + tid + "/v2.0",
		"request_uri_parameter_supported":       false,
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
		"rbac_url":                              "https://pas.windows.net",
	}
	if v2 {
		doc["token_endpoint"] = base + "/oauth2/v2.0/token"
		doc["authorization_endpoint"] = base + "/oauth2/v2.0/authorize"
		doc["device_authorization_endpoint"] = base + "/oauth2/v2.0/devicecode"
		doc["end_session_endpoint"] = base + "/oauth2/v2.0/logout"
	} else {
		doc["issuer"] = "https://sts.windows.net/" + tid + "/"
		doc["jwks_uri"] = base + "/discovery/keys"
		doc["token_endpoint"] = base + "/oauth2/token"
		doc["authorization_endpoint"] = base + "/oauth2/authorize"
		doc["end_session_endpoint"] = base + "/oauth2/logout"
	}
	writeJSON(w, http.StatusOK, doc)
}

// keys serves the JWKS: the access token key and the ID token keys (the
// current one and the one it replaced, see [Service.RotateIDTokenKey]).
func (s *Service) keys(w http.ResponseWriter) {
	s.mu.Lock()
	pubs := []*rsa.PublicKey{&s.signingKey.PublicKey}
	for _, k := range s.idKeys {
		if !k.PublicKey.Equal(&s.signingKey.PublicKey) {
			pubs = append(pubs, &k.PublicKey)
		}
	}
	s.mu.Unlock()
	keys := make([]map[string]any, 0, len(pubs))
	for _, pub := range pubs {
		kid := keyThumbprint(pub)
		keys = append(keys, map[string]any{
			"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (s *Service) tokenEndpoint(w http.ResponseWriter, r *http.Request, authority, tenantSeg string, v1 bool) {
	now := s.now()
	if r.Method != http.MethodPost {
		(&aadError{status: 405, err: "invalid_request", code: 900561, msg: "The endpoint only accepts POST requests. Received a " + r.Method + " request."}).write(w, now)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		(&aadError{status: 400, err: "invalid_request", code: 900144,
			msg: "The request body must be application/x-www-form-urlencoded and at most 64 KiB."}).write(w, now)
		return
	}
	if isMeta(tenantSeg) {
		(&aadError{status: 400, err: "invalid_request", code: 700016,
			msg: fmt.Sprintf("Client credential flows must name a tenant; '%s' is not allowed here. Use the tenant (directory) id.", tenantSeg)}).write(w, now)
		return
	}
	req, aerr := parseTokenRequest(r.PostForm, v1)
	if aerr != nil {
		aerr.write(w, now)
		return
	}
	tokenURL := authority + "/" + tenantSeg + "/oauth2/v2.0/token"
	if v1 {
		tokenURL = authority + "/" + tenantSeg + "/oauth2/token"
	}
	p, resource, aerr := s.grant(tenantSeg, tokenURL, req)
	if aerr != nil {
		aerr.write(w, now)
		return
	}
	token, expires, err := s.issue(p, resource)
	if err != nil {
		(&aadError{status: 500, err: "temporarily_unavailable", code: 90033, msg: "The emulator could not sign the token."}).write(w, now)
		return
	}
	secs := int64(expires.Sub(now) / time.Second)
	body := map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token}
	if v1 {
		body["expires_on"] = strconv.FormatInt(expires.Unix(), 10)
		body["resource"] = resource
	}
	writeJSON(w, http.StatusOK, body)
}

// adminConsent grants a multi-tenant app in the tenant, as an administrator
// approving https://login.microsoftonline.com/{tenant}/adminconsent would.
// With a redirect_uri it redirects there with admin_consent=True (or an
// error), otherwise it answers JSON.
func (s *Service) adminConsent(w http.ResponseWriter, r *http.Request, tenantSeg string) {
	q := r.URL.Query()
	clientID := q.Get("client_id")
	s.mu.Lock()
	known := s.lookupTenant(tenantSeg) != nil
	s.mu.Unlock()
	if !known {
		errUnknownTenant(tenantSeg).write(w, s.now())
		return
	}
	oid, err := s.Consent(tenantSeg, clientID)
	redirect := q.Get("redirect_uri")
	if redirect != "" {
		u, perr := url.Parse(redirect)
		if perr == nil && (u.Scheme == "https" || u.Scheme == "http") {
			v := u.Query()
			v.Set("tenant", tenantSeg)
			if st := q.Get("state"); st != "" {
				v.Set("state", st)
			}
			if err != nil {
				v.Set("error", "access_denied")
				v.Set("error_description", err.Error())
			} else {
				v.Set("admin_consent", "True")
			}
			u.RawQuery = v.Encode()
			http.Redirect(w, r, u.String(), http.StatusFound)
			return
		}
	}
	if err != nil {
		(&aadError{status: 400, err: "invalid_request", code: 700016, msg: "Admin consent failed: " + err.Error()}).write(w, s.now())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"admin_consent": "True", "tenant": tenantSeg, "client_id": clientID, "service_principal_object_id": oid})
}
