package entra

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Claims are the verified claims of an access token the service issued.
type Claims struct {
	Audience, Issuer, TenantID, ObjectID, AppID string
	NotBefore, ExpiresAt                        time.Time
}

// Errors of [Service.VerifyAccessToken].
var (
	// ErrTokenInvalid: not a token of this emulator, or altered.
	ErrTokenInvalid = errors.New("entra: access token invalid")
	// ErrTokenExpired: the token's exp has passed or its nbf is ahead.
	ErrTokenExpired = errors.New("entra: access token expired or not yet valid")
)

// VerifyAccessToken checks that raw is an access token this service signed
// and that it is valid now. It does not check the audience or the tenant;
// the resource does that. Errors wrap [ErrTokenInvalid] or [ErrTokenExpired]
// and never contain the token.
func (s *Service) VerifyAccessToken(raw string) (Claims, error) {
	p, err := parseJWT(raw)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	s.mu.Lock()
	key, kid := s.signingKey, s.keyID
	s.mu.Unlock()
	if p.header.Alg != "RS256" || p.header.Kid != kid {
		return Claims{}, fmt.Errorf("%w: not signed by this emulator's key (alg %q, kid %q)", ErrTokenInvalid, p.header.Alg, p.header.Kid)
	}
	if err := p.verify(&key.PublicKey); err != nil {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrTokenInvalid)
	}
	nbf, ok1 := p.num("nbf")
	exp, ok2 := p.num("exp")
	if !ok1 || !ok2 {
		return Claims{}, fmt.Errorf("%w: nbf or exp missing", ErrTokenInvalid)
	}
	appID := p.str("appid")
	if appID == "" {
		appID = p.str("azp") // v2.0 tokens
	}
	c := Claims{
		Audience: p.str("aud"), Issuer: p.str("iss"), TenantID: p.str("tid"),
		ObjectID: p.str("oid"), AppID: appID,
		NotBefore: time.Unix(nbf, 0), ExpiresAt: time.Unix(exp, 0),
	}
	now := s.now()
	if now.Before(c.NotBefore) || !now.Before(c.ExpiresAt) {
		return Claims{}, fmt.Errorf("%w: valid from %s to %s, now %s", ErrTokenExpired,
			c.NotBefore.UTC().Format(time.RFC3339), c.ExpiresAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// principal is who a token is issued to.
type principal struct {
	tenantID, clientID, objectID string
	acr                          string // appidacr: "1" secret, "2" certificate or assertion
	miResourceID                 string
}

// Issuer returns Entra's v2.0 issuer of a tenant,
// https://login.microsoftonline.com/{tenant}/v2.0: the iss of tokens for
// [DefaultFederatedAudience], and the issuer a federated credential names
// to trust a managed identity of that tenant.
func Issuer(tenantID string) string {
	return "https://login.microsoftonline.com/" + strings.ToLower(tenantID) + "/v2.0"
}

// issuerTenant returns the tenant whose v2.0 issuer iss is, if iss is
// exactly [Issuer] of a tenant of this service (case-sensitive, as Entra
// matches federated credentials). The caller holds mu.
func (s *Service) issuerTenant(iss string) (string, bool) {
	const prefix, suffix = "https://login.microsoftonline.com/", "/v2.0"
	if !strings.HasPrefix(iss, prefix) || !strings.HasSuffix(iss, suffix) {
		return "", false
	}
	tid := strings.TrimSuffix(strings.TrimPrefix(iss, prefix), suffix)
	t := s.tenants[tid]
	if t == nil || Issuer(t.ID) != iss {
		return "", false
	}
	return t.ID, true
}

// issue signs an access token for p and resource; the caller does not hold mu.
// Tokens for [DefaultFederatedAudience] have the v2.0 shape (iss
// [Issuer], azp, azpacr, idtyp, ver "2.0"), as Entra issues them for that
// audience; every other token is a v1.0 token of https://sts.windows.net/{tid}/.
func (s *Service) issue(p principal, resource string) (token string, expires time.Time, err error) {
	s.mu.Lock()
	key, kid := s.signingKey, s.keyID
	s.mu.Unlock()
	now := s.now()
	expires = now.Add(s.lifetime)
	var claims map[string]any
	if resource == DefaultFederatedAudience {
		claims = map[string]any{
			"aud": resource, "iss": Issuer(p.tenantID),
			"iat": now.Unix(), "nbf": now.Unix(), "exp": expires.Unix(),
			"aio": randomString(24), "azp": p.clientID, "azpacr": p.acr, "idtyp": "app",
			"oid": p.objectID, "sub": p.objectID, "tid": p.tenantID,
			"rh": "0.kvemu.", "uti": randomString(22), "ver": "2.0",
		}
	} else {
		iss := "https://sts.windows.net/" + p.tenantID + "/"
		claims = map[string]any{
			"aud": resource, "iss": iss, "idp": iss,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": expires.Unix(),
			"aio": randomString(24), "appid": p.clientID, "appidacr": p.acr,
			"oid": p.objectID, "sub": p.objectID, "tid": p.tenantID,
			"rh": "0.kvemu.", "uti": randomString(22), "ver": "1.0",
		}
	}
	if p.miResourceID != "" {
		claims["xms_mirid"] = p.miResourceID
	}
	token, err = signJWT(key, jwtHeader{Typ: "JWT", X5t: kid, Kid: kid}, claims)
	return token, expires, err
}

// knownResources are the resource ids tokens can be asked for besides the
// app id URIs of registered apps.
var knownResources = []string{
	"https://vault.azure.net", "https://managedhsm.azure.net",
	"https://vault.azure.cn", "https://vault.usgovcloudapi.net",
	"https://management.azure.com", "https://management.core.windows.net",
	"https://graph.microsoft.com", "https://storage.azure.com",
	DefaultFederatedAudience,
}

// resolveResource normalises a requested resource and reports whether it
// exists. The caller holds mu.
func (s *Service) resolveResource(res string) (string, bool) {
	res = strings.TrimSuffix(res, "/")
	for _, k := range knownResources {
		if strings.EqualFold(k, res) {
			return k, true
		}
	}
	id := strings.ToLower(strings.TrimPrefix(res, "api://"))
	return res, s.apps[id] != nil
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// tokenRequest is a parsed client-credentials token request.
type tokenRequest struct {
	clientID, resource string
	secret, assertion  string
}

// parseTokenRequest validates the form of a token request. v1 requests
// (/oauth2/token) name a resource, v2 requests a scope ending in /.default.
func parseTokenRequest(form url.Values, v1 bool) (tokenRequest, *aadError) {
	if gt := form.Get("grant_type"); gt == "" {
		return tokenRequest{}, errMissingParam("grant_type")
	} else if gt != "client_credentials" {
		return tokenRequest{}, &aadError{status: 400, err: "unsupported_grant_type", code: 70003,
			msg: fmt.Sprintf("The app requested an unsupported grant type '%s'. The emulator supports client_credentials only.", truncate(gt))}
	}
	r := tokenRequest{clientID: form.Get("client_id")}
	if r.clientID == "" {
		return r, errMissingParam("client_id")
	}
	if v1 {
		if r.resource = form.Get("resource"); r.resource == "" {
			return r, errMissingParam("resource")
		}
	} else {
		scope := form.Get("scope")
		for f := range strings.FieldsSeq(scope) {
			switch f {
			case "openid", "offline_access", "profile", "email":
				continue
			}
			if !strings.HasSuffix(f, "/.default") || r.resource != "" {
				return r, &aadError{status: 400, err: "invalid_scope", code: 1002012,
					msg: fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", truncate(scope))}
			}
			r.resource = strings.TrimSuffix(f, "/.default")
		}
		if r.resource == "" {
			return r, errMissingParam("scope")
		}
	}
	r.secret = form.Get("client_secret")
	if a := form.Get("client_assertion"); a != "" {
		if t := form.Get("client_assertion_type"); t != assertionType {
			return r, &aadError{status: 400, err: "invalid_request", code: 50027,
				msg: fmt.Sprintf("Invalid client_assertion_type %q; use %s.", truncate(t), assertionType)}
		}
		r.assertion = a
	}
	if r.secret == "" && r.assertion == "" {
		return r, &aadError{status: 401, err: "invalid_client", code: 7000218,
			msg: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	}
	return r, nil
}

func errMissingParam(name string) *aadError {
	return &aadError{status: 400, err: "invalid_request", code: 900144,
		msg: fmt.Sprintf("The request body must contain the following parameter: '%s'.", name)}
}

// truncate shortens untrusted input echoed in messages.
func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// grant runs a parsed token request for the tenant named tenantSeg; tokenURL
// is the URL the request was sent to (a client assertion's audience).
func (s *Service) grant(tenantSeg, tokenURL string, req tokenRequest) (principal, string, *aadError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookupTenant(tenantSeg)
	if t == nil {
		return principal{}, "", errUnknownTenant(tenantSeg)
	}
	p, resource, aerr := s.grantLocked(t, tenantSeg, tokenURL, req)
	s.count(t.ID, req.clientID, aerr == nil)
	return p, resource, aerr
}

func (s *Service) grantLocked(t *tenant, tenantSeg, tokenURL string, req tokenRequest) (principal, string, *aadError) {
	a := s.apps[strings.ToLower(req.clientID)]
	oid, consented := "", false
	if a != nil {
		oid, consented = t.sps[a.ClientID]
	}
	if !consented {
		return principal{}, "", &aadError{status: 400, err: "unauthorized_client", code: 700016,
			msg: fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", truncate(req.clientID), tenantSeg)}
	}
	resource, ok := s.resolveResource(req.resource)
	if !ok {
		return principal{}, "", &aadError{status: 400, err: "invalid_resource", code: 500011,
			msg: fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", truncate(req.resource), tenantSeg)}
	}
	p := principal{tenantID: t.ID, clientID: a.ClientID, objectID: oid, acr: "2"}
	var aerr *aadError
	if req.assertion != "" {
		// The assertion may name the tenant by id or by the name the
		// request used.
		urls := []string{tokenURL}
		if !strings.EqualFold(tenantSeg, t.ID) {
			urls = append(urls, strings.Replace(tokenURL, "/"+tenantSeg+"/", "/"+t.ID+"/", 1))
		}
		aerr = s.checkAssertion(a, urls, req.assertion)
	} else {
		p.acr = "1"
		aerr = s.checkSecret(a, req.secret)
	}
	return p, resource, aerr
}

// checkSecret compares secret with every secret of a in constant time.
func (s *Service) checkSecret(a *app, secret string) *aadError {
	now := s.now()
	for _, sec := range a.secrets {
		if subtle.ConstantTimeCompare([]byte(sec.Value), []byte(secret)) == 1 {
			if !sec.ExpiresAt.IsZero() && !now.Before(sec.ExpiresAt) {
				return &aadError{status: 401, err: "invalid_client", code: 7000222,
					msg: fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", a.ClientID)}
			}
			return nil
		}
	}
	return &aadError{status: 401, err: "invalid_client", code: 7000215,
		msg: fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", a.ClientID)}
}

func badAssertion(format string, args ...any) *aadError {
	return &aadError{status: 401, err: "invalid_client", code: 700027, msg: "Client assertion failed validation: " + fmt.Sprintf(format, args...)}
}

// checkAssertion authenticates a by a client assertion: a JWT signed by one
// of its certificates (iss = sub = client id, aud = one of tokenURLs, the
// token endpoint) or a token of a trusted federated issuer. The caller
// holds mu.
func (s *Service) checkAssertion(a *app, tokenURLs []string, raw string) *aadError {
	p, err := parseJWT(raw)
	if err != nil {
		return badAssertion("%v.", err)
	}
	if iss := p.str("iss"); !strings.EqualFold(iss, a.ClientID) {
		return s.checkFederated(a, p)
	}
	if sub := p.str("sub"); !strings.EqualFold(sub, a.ClientID) {
		return &aadError{status: 401, err: "invalid_client", code: 700021,
			msg: fmt.Sprintf("Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials; sub %q, client_id %q.", truncate(p.str("sub")), a.ClientID)}
	}
	cert, thumb := a.findCert(p.header)
	if cert == nil {
		return badAssertion("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '%s'. Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]", thumb, a.ClientID)
	}
	if err := p.verify(cert.PublicKey.(*rsa.PublicKey)); err != nil {
		return badAssertion("Client assertion contains an invalid signature. [Reason - %v, Thumbprint of key used by client: '%s'.]", err, thumb)
	}
	now := s.now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return badAssertion("The certificate with thumbprint '%s' used to sign the client assertion is not valid now (valid from %s to %s) on application '%s'.", thumb,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), a.ClientID)
	}
	if !slices.ContainsFunc(p.audiences(), func(aud string) bool {
		return slices.ContainsFunc(tokenURLs, func(u string) bool { return audienceMatches(aud, u) })
	}) {
		return badAssertion("The audience %q of the client assertion is not the token endpoint %s.", truncate(strings.Join(p.audiences(), ",")), tokenURLs[0])
	}
	if aerr := s.checkLifetime(p); aerr != nil {
		return aerr
	}
	return s.checkReplay(p)
}

// findCert finds the certificate an assertion header names by x5t#S256 or
// x5t, and returns it (or nil) with the thumbprint the client used.
func (a *app) findCert(h jwtHeader) (*x509.Certificate, string) {
	for _, c := range a.certs {
		s256 := sha256.Sum256(c.Raw)
		s1 := sha1.Sum(c.Raw)
		switch {
		case h.X5tS256 != "" && thumbEqual(h.X5tS256, s256[:]):
			return c, h.X5tS256
		case h.X5tS256 == "" && h.X5t != "" && thumbEqual(h.X5t, s1[:]):
			return c, h.X5t
		}
	}
	if h.X5tS256 != "" {
		return nil, h.X5tS256
	}
	return nil, h.X5t
}

// thumbEqual compares a base64 (std or url, padded or not) thumbprint with sum.
func thumbEqual(b64 string, sum []byte) bool {
	t := strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(b64), "=")
	return t == base64.RawURLEncoding.EncodeToString(sum)
}

// audienceMatches accepts the v2 or v1 token endpoint of the request's
// authority as an assertion audience, as Entra does.
func audienceMatches(aud, tokenURL string) bool {
	aud = strings.TrimSuffix(aud, "/")
	return strings.EqualFold(aud, tokenURL) ||
		strings.EqualFold(aud, strings.Replace(tokenURL, "/oauth2/v2.0/token", "/oauth2/token", 1)) ||
		strings.EqualFold(aud, strings.Replace(tokenURL, "/oauth2/token", "/oauth2/v2.0/token", 1))
}

// maxAssertionSkew is how far an assertion's nbf may be ahead of the clock.
const maxAssertionSkew = 5 * time.Minute

// checkLifetime checks an assertion's exp and nbf. The caller holds mu.
func (s *Service) checkLifetime(p *parsedJWT) *aadError {
	now := s.now()
	exp, okExp := p.num("exp")
	nbf, okNbf := p.num("nbf")
	if !okExp {
		return badAssertion("The client assertion has no exp claim.")
	}
	if !okNbf {
		nbf = now.Unix()
	}
	if now.Unix() >= exp || now.Add(maxAssertionSkew).Unix() < nbf {
		return &aadError{status: 401, err: "invalid_client", code: 700024,
			msg: fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s.",
				now.UTC().Format(time.RFC3339), time.Unix(nbf, 0).UTC().Format(time.RFC3339), time.Unix(exp, 0).UTC().Format(time.RFC3339))}
	}
	return nil
}

// checkReplay records a certificate assertion's jti and refuses one seen
// before while it is valid. Federated tokens are not checked: a workload's
// or managed identity's token is presented for every scope and tenant
// while it lives. The caller holds mu.
func (s *Service) checkReplay(p *parsedJWT) *aadError {
	now := s.now()
	exp, _ := p.num("exp")
	jti := p.str("jti")
	if jti == "" {
		return nil
	}
	for k, until := range s.jtis {
		if !now.Before(until) {
			delete(s.jtis, k)
		}
	}
	key := p.str("iss") + "\x00" + jti
	if _, used := s.jtis[key]; used {
		return badAssertion("The client assertion with jti '%s' has already been used; every assertion must carry a new jti.", truncate(jti))
	}
	s.jtis[key] = time.Unix(exp, 0)
	return nil
}

// wifDoc is the documentation link Entra appends to federated credential
// errors.
const wifDoc = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"

func noFederatedMatch(code int, what, value, extra string) *aadError {
	return &aadError{status: 401, err: "invalid_client", code: code,
		msg: fmt.Sprintf("No matching federated identity record found for presented assertion %s '%s'.%s Check your federated identity credential Subject, Audience and Issuer against the presented assertion. %s",
			what, truncate(value), extra, wifDoc)}
}

// checkFederated authenticates a by a federated token: one of a registered
// external issuer, or an Entra token of a's home tenant (a managed
// identity's token for [DefaultFederatedAudience]), which Entra trusts
// without registration. Issuer and subject match case-sensitively. The
// caller holds mu.
func (s *Service) checkFederated(a *app, p *parsedJWT) *aadError {
	iss, sub := p.str("iss"), p.str("sub")
	auds := strings.Join(p.audiences(), ",")
	if len(a.federated) == 0 {
		return &aadError{status: 400, err: "invalid_request", code: 70021,
			msg: fmt.Sprintf("No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. %s",
				truncate(iss), truncate(sub), truncate(auds), wifDoc)}
	}
	var fc *FederatedCredential
	issuerKnown, subjectFold := false, false
	for i := range a.federated {
		f := &a.federated[i]
		if f.Issuer != iss {
			continue
		}
		issuerKnown = true
		if f.Subject == sub {
			fc = f
		} else if strings.EqualFold(f.Subject, sub) {
			subjectFold = true
		}
	}
	switch {
	case !issuerKnown:
		return noFederatedMatch(700211, "issuer", iss, "")
	case fc == nil && subjectFold:
		return noFederatedMatch(7002138, "subject", sub, " The subject matches with case-insensitive comparison, but not with case-sensitive comparison.")
	case fc == nil:
		return noFederatedMatch(700213, "subject", sub, "")
	}
	if !slices.ContainsFunc(p.audiences(), func(aud string) bool { return slices.Contains(fc.Audiences, aud) }) {
		return noFederatedMatch(700212, "audience", auds, "")
	}
	var pub *rsa.PublicKey
	if tid, own := s.issuerTenant(iss); own {
		if tid != a.TenantID {
			return &aadError{status: 400, err: "invalid_request", code: 700236,
				msg: fmt.Sprintf("Entra ID tokens issued by issuer '%s' may not be used for federated identity credential flows for applications or managed identities registered in this tenant.", truncate(iss))}
		}
		pub = &s.signingKey.PublicKey
		if p.header.Kid != s.keyID {
			return badAssertion("The federated token of issuer '%s' is not signed by a key of the issuer (kid '%s').", iss, truncate(p.header.Kid))
		}
	} else if key := s.issuers[iss]; key != nil {
		pub = &key.PublicKey
	} else {
		return badAssertion("The signing keys of the federated token's issuer '%s' could not be retrieved from its OpenID configuration. (kvemu: register the issuer with AddFederatedIssuer.)", truncate(iss))
	}
	if err := p.verify(pub); err != nil {
		return badAssertion("The federated token of issuer '%s' has an invalid signature.", iss)
	}
	return s.checkLifetime(p)
}

func errUnknownTenant(t string) *aadError {
	return &aadError{status: 400, err: "invalid_tenant", code: 90002,
		msg: fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", truncate(t))}
}
