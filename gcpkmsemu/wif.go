package gcpkmsemu

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// Workload identity federation: an external workload's OIDC token is
// exchanged at the emulator's STS for a federated token (RFC 8693, what
// the auth library does for an "external_account" credential file), which
// is used directly on Cloud KMS (IAM member principal://…) or exchanged
// again, at generateAccessToken, for a service account's token.

// STSMethod and ImpersonationMethod are the Method of [Call] counters for
// the STS token exchange and generateAccessToken.
const (
	STSMethod           = "sts/token"
	ImpersonationMethod = "iamcredentials/generateAccessToken"
)

// WorkloadIdentityProvider is an OIDC provider of a workload identity pool:
// tokens of Issuer, signed by one of PublicKeys (PEM, RSA; the issuer's
// JWKS), whose aud is one of Audiences (default: the provider's
// https://iam.googleapis.com/… name), map to the federated principal of
// their sub (google.subject = assertion.sub).
type WorkloadIdentityProvider struct {
	Project    string   `yaml:"project"`
	Pool       string   `yaml:"pool"`
	Provider   string   `yaml:"provider"`
	Issuer     string   `yaml:"issuer"`
	PublicKeys []string `yaml:"publicKeys"`
	Audiences  []string `yaml:"audiences"`
}

type wifProvider struct {
	resource  string // projects/N/locations/global/workloadIdentityPools/P/providers/X
	pool      string // projects/N/locations/global/workloadIdentityPools/P
	issuer    string
	keys      []*rsa.PublicKey
	audiences []string
}

// AddWorkloadIdentityProvider registers a provider (creating the project
// if needed) and returns its audience, the "audience" of credential files:
// //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER.
func (e *Emulator) AddWorkloadIdentityProvider(p WorkloadIdentityProvider) (string, error) {
	if !segPattern.MatchString(p.Pool) || !segPattern.MatchString(p.Provider) || p.Issuer == "" || len(p.PublicKeys) == 0 {
		return "", errors.New("gcpkmsemu: a workload identity provider needs a pool, a provider id, an issuer and public keys")
	}
	wp := &wifProvider{issuer: p.Issuer, audiences: p.Audiences}
	for i, k := range p.PublicKeys {
		pub, err := parseRSAPublicKey([]byte(k))
		if err != nil {
			return "", fmt.Errorf("public key %d: %w", i+1, err)
		}
		wp.keys = append(wp.keys, pub)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	proj, err := e.ensureProject(p.Project, 0)
	if err != nil {
		return "", err
	}
	wp.pool = fmt.Sprintf("projects/%d/locations/global/workloadIdentityPools/%s", proj.number, p.Pool)
	wp.resource = wp.pool + "/providers/" + p.Provider
	if len(wp.audiences) == 0 {
		wp.audiences = []string{"https://iam.googleapis.com/" + wp.resource}
	}
	if e.wif == nil {
		e.wif = map[string]*wifProvider{}
	}
	e.wif["//iam.googleapis.com/"+wp.resource] = wp
	return "//iam.googleapis.com/" + wp.resource, nil
}

// FederatedPrincipal is the IAM member of subject in the pool of the
// provider whose audience is given: principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/subject/SUBJECT.
func FederatedPrincipal(audience, subject string) string {
	pool, _, _ := strings.Cut(strings.TrimPrefix(audience, "//iam.googleapis.com/"), "/providers/")
	return "principal://iam.googleapis.com/" + pool + "/subject/" + subject
}

// AllowImpersonation lets member (principal://…, principalSet://…/*,
// serviceAccount:…) get tokens of the account at generateAccessToken, as
// roles/iam.workloadIdentityUser on the account does.
func (e *Emulator) AllowImpersonation(email, member string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	sa := e.accounts[strings.ToLower(email)]
	if sa == nil {
		return fmt.Errorf("%w: service account %s", ErrNotFound, email)
	}
	sa.impersonators = append(sa.impersonators, member)
	return nil
}

// ExternalAccountConfig returns a credential configuration file such as
// `gcloud iam workload-identity-pools create-cred-config` writes: the
// subject token read from subjectTokenFile, the emulator's STS, and, when
// impersonate is set, that account's generateAccessToken URL.
func (e *Emulator) ExternalAccountConfig(audience, subjectTokenFile, impersonate string) []byte {
	c := map[string]any{
		"type":               "external_account",
		"audience":           audience,
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"token_url":          e.STSURI(),
		"credential_source":  map[string]any{"file": subjectTokenFile},
		"universe_domain":    "googleapis.com",
	}
	if impersonate != "" {
		c["service_account_impersonation_url"] = e.ImpersonationURL(impersonate)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return b
}

// STSURI is the emulator's Security Token Service endpoint.
func (e *Emulator) STSURI() string { return "https://" + e.tokenLn.Addr().String() + "/v1/token" }

// ImpersonationURL is the generateAccessToken URL of an account.
func (e *Emulator) ImpersonationURL(email string) string {
	return "https://" + e.tokenLn.Addr().String() + "/v1/projects/-/serviceAccounts/" + email + ":generateAccessToken"
}

// serveSTS is the token exchange of a subject token for a federated
// access token. Errors are OAuth JSON (texts inferred, RFC 8693 codes).
func (e *Emulator) serveSTS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	p, code, desc := e.exchange(r)
	if code != "" {
		e.count(Call{Method: STSMethod, Code: codes.Unauthenticated})
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
		return
	}
	tok := newTokenValue()
	e.mu.Lock()
	e.tokens[tok] = issuedToken{p: p, expires: e.now().Add(time.Hour)}
	e.calls[Call{Method: STSMethod, Principal: p.id}]++
	e.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type": "Bearer", "expires_in": 3600})
}

func (e *Emulator) exchange(r *http.Request) (principal, string, string) {
	if err := r.ParseForm(); err != nil {
		return principal{}, "invalid_request", "Could not parse the request body."
	}
	f := r.PostForm
	if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
		return principal{}, "unsupported_grant_type", "Invalid grant_type: " + f.Get("grant_type")
	}
	if t := f.Get("subject_token_type"); t != "urn:ietf:params:oauth:token-type:jwt" && t != "urn:ietf:params:oauth:token-type:id_token" {
		return principal{}, "invalid_request", "gcpkmsemu: only OIDC subject tokens (urn:ietf:params:oauth:token-type:jwt, id_token) are emulated."
	}
	e.mu.Lock()
	wp := e.wif[f.Get("audience")]
	e.mu.Unlock()
	if wp == nil {
		return principal{}, "invalid_target", `The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.`
	}
	sub, err := wp.verify(f.Get("subject_token"), e.now())
	if err != nil {
		return principal{}, "invalid_grant", err.Error()
	}
	m := "principal://iam.googleapis.com/" + wp.pool + "/subject/" + sub
	return principal{id: m, iamMember: m}, "", ""
}

// verify checks an OIDC token of the provider and returns its subject.
func (wp *wifProvider) verify(raw string, now time.Time) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("The subject token is not a JWT.")
	}
	var h struct {
		Alg string `json:"alg"`
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Iat int64           `json:"iat"`
		Exp int64           `json:"exp"`
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if decodeSegment(parts[0], &h) != nil || decodeSegment(parts[1], &c) != nil || err != nil || h.Alg != "RS256" {
		return "", errors.New("The subject token is not an RS256 JWT.")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !slices.ContainsFunc(wp.keys, func(k *rsa.PublicKey) bool { return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil }) {
		return "", errors.New("Invalid JWT signature.")
	}
	if c.Iss != wp.issuer {
		return "", fmt.Errorf("The issuer in ID Token %s does not match the expected ones: %s.", c.Iss, wp.issuer)
	}
	var auds []string
	if json.Unmarshal(c.Aud, &auds) != nil {
		var one string
		json.Unmarshal(c.Aud, &one)
		auds = []string{one}
	}
	if !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(wp.audiences, a) }) {
		return "", fmt.Errorf("The audience in ID Token %v does not match the expected audience.", auds)
	}
	if c.Exp == 0 || !now.Before(time.Unix(c.Exp, 0).Add(clockSkew)) || now.Add(clockSkew).Before(time.Unix(c.Iat, 0)) {
		return "", errors.New("ID Token issued at " + time.Unix(c.Iat, 0).UTC().Format(time.RFC3339) + " is stale to sign-in.")
	}
	if c.Sub == "" {
		return "", errors.New("The subject token has no sub claim.")
	}
	return c.Sub, nil
}

// serveGenerateAccessToken is iamcredentials' generateAccessToken: the
// bearer (a federated or service account token) gets a token of the
// account if it may impersonate it.
func (e *Emulator) serveGenerateAccessToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	email, ok := strings.CutSuffix(r.PathValue("account"), ":generateAccessToken")
	raw := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	t, known := e.tokens[raw]
	if !known || !now.Before(t.expires) {
		e.calls[Call{Method: ImpersonationMethod, Code: codes.Unauthenticated}]++
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 401, "status": "UNAUTHENTICATED", "message": msgInvalidCredential}})
		return
	}
	sa := e.accounts[strings.ToLower(email)]
	if !ok || sa == nil || sa.disabled || !slices.ContainsFunc(sa.impersonators, func(m string) bool { return memberMatches(m, t.p.member()) }) {
		e.calls[Call{Method: ImpersonationMethod, Principal: t.p.id, Code: codes.PermissionDenied}]++
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 403, "status": "PERMISSION_DENIED",
			"message": "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."}})
		return
	}
	tok := newTokenValue()
	exp := now.Add(time.Hour)
	e.tokens[tok] = issuedToken{p: accountPrincipal(sa.email), email: sa.email, expires: exp}
	e.calls[Call{Method: ImpersonationMethod, Principal: t.p.id}]++
	json.NewEncoder(w).Encode(map[string]string{"accessToken": tok, "expireTime": exp.UTC().Format(time.RFC3339)})
}
