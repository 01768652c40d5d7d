package gcpkmsemu

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// ErrNotFound is returned (wrapped) by control methods for an unknown
// project, account, key or resource.
var ErrNotFound = errors.New("gcpkmsemu: not found")

// serviceAccount is a service account with its public keys.
type serviceAccount struct {
	email, project, uniqueID string
	disabled                 bool
	keys                     []*accountKey
	impersonators            []string // members that may get its tokens
}

// accountKey is a public key of a service account; id is the key file's
// private_key_id and the JWT header's kid.
type accountKey struct {
	id       string
	pub      *rsa.PublicKey
	disabled bool
}

// key returns the account's key id, or nil.
func (sa *serviceAccount) key(id string) *accountKey {
	for _, k := range sa.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// ServiceAccount describes a service account ([Emulator.ServiceAccounts]).
type ServiceAccount struct {
	Email, Project, UniqueID string
	Disabled                 bool
	// KeyIDs are the ids of its keys; DisabledKeyIDs those disabled.
	KeyIDs, DisabledKeyIDs []string
}

var accountIDPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)

// CreateServiceAccount creates accountID@project.iam.gserviceaccount.com
// (creating the project if needed) and returns its email. accountID is
// 6–30 characters as Google requires.
func (e *Emulator) CreateServiceAccount(projectID, accountID string) (string, error) {
	if !accountIDPattern.MatchString(accountID) {
		return "", fmt.Errorf("gcpkmsemu: account id %q must be 6-30 lowercase letters, digits or hyphens, starting with a letter", accountID)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.ensureProject(projectID, 0); err != nil {
		return "", err
	}
	email := accountID + "@" + projectID + ".iam.gserviceaccount.com"
	if e.accounts[email] != nil {
		return "", fmt.Errorf("gcpkmsemu: service account %s already exists", email)
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(9e17)) // crypto/rand never fails
	e.accounts[email] = &serviceAccount{email: email, project: projectID, uniqueID: fmt.Sprintf("1%020d", n)}
	return email, nil
}

// CreateServiceAccountKey makes an RSA 2048 key for the account, keeps its
// public part, and returns the key file (JSON, as the IAM API and the
// console give it) whose token_uri is [Emulator.TokenURI]. The emulator
// does not keep the private key.
func (e *Emulator) CreateServiceAccountKey(email string) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	id, err := e.addKey(email, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	sa := e.accounts[email]
	e.mu.Unlock()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  sa.project,
		"private_key_id":              id,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                email,
		"client_id":                   sa.uniqueID,
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   e.TokenURI(),
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/" + strings.ReplaceAll(email, "@", "%40"),
		"universe_domain":             "googleapis.com",
	}, "", "  ")
}

// WriteServiceAccountKeyFile creates a key for the account (see
// [Emulator.CreateServiceAccountKey]) and writes its key file to path,
// mode 0600.
func (e *Emulator) WriteServiceAccountKeyFile(email, path string) error {
	b, err := e.CreateServiceAccountKey(email)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// UploadServiceAccountKey adds a public key (PEM: PUBLIC KEY, RSA PUBLIC
// KEY or CERTIFICATE, RSA) to the account, as `gcloud iam service-accounts
// keys upload` does, and returns its key id.
func (e *Emulator) UploadServiceAccountKey(email string, publicPEM []byte) (string, error) {
	pub, err := parseRSAPublicKey(publicPEM)
	if err != nil {
		return "", err
	}
	return e.addKey(email, pub)
}

func (e *Emulator) addKey(email string, pub *rsa.PublicKey) (string, error) {
	b := make([]byte, 20)
	rand.Read(b) // crypto/rand never fails
	id := hex.EncodeToString(b)
	e.mu.Lock()
	defer e.mu.Unlock()
	sa := e.accounts[strings.ToLower(email)]
	if sa == nil {
		return "", fmt.Errorf("%w: service account %s", ErrNotFound, email)
	}
	sa.keys = append(sa.keys, &accountKey{id: id, pub: pub})
	return id, nil
}

func parseRSAPublicKey(b []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("gcpkmsemu: public key: no PEM block")
	}
	var pub any
	var err error
	switch block.Type {
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("gcpkmsemu: public key: %w", err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("gcpkmsemu: public key is %T; service account keys are RSA", pub)
	}
	return rsaPub, nil
}

// SetServiceAccountDisabled disables or enables an account, as `gcloud iam
// service-accounts disable|enable`: a disabled account's tokens are refused
// (UNAUTHENTICATED, reason ACCOUNT_STATE_INVALID) and it gets no new ones.
func (e *Emulator) SetServiceAccountDisabled(email string, disabled bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	sa := e.accounts[strings.ToLower(email)]
	if sa == nil {
		return fmt.Errorf("%w: service account %s", ErrNotFound, email)
	}
	sa.disabled = disabled
	return nil
}

// SetServiceAccountKeyDisabled disables or enables one key of an account:
// JWTs signed with a disabled key are refused.
func (e *Emulator) SetServiceAccountKeyDisabled(email, keyID string, disabled bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if sa := e.accounts[strings.ToLower(email)]; sa != nil {
		for _, k := range sa.keys {
			if k.id == keyID {
				k.disabled = disabled
				return nil
			}
		}
	}
	return fmt.Errorf("%w: key %s of service account %s", ErrNotFound, keyID, email)
}

// ServiceAccounts lists the accounts, by email.
func (e *Emulator) ServiceAccounts() []ServiceAccount {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ServiceAccount
	for _, email := range sortedKeys(e.accounts) {
		sa := e.accounts[email]
		v := ServiceAccount{Email: sa.email, Project: sa.project, UniqueID: sa.uniqueID, Disabled: sa.disabled}
		for _, k := range sa.keys {
			v.KeyIDs = append(v.KeyIDs, k.id)
			if k.disabled {
				v.DisabledKeyIDs = append(v.DisabledKeyIDs, k.id)
			}
		}
		out = append(out, v)
	}
	return out
}

// TokenMethod is the Method of [Call] counters for the token endpoint:
// Code OK for a token issued, Unauthenticated for a refusal.
const TokenMethod = "oauth2/token"

// serveToken is the OAuth token endpoint (token_uri): the JWT bearer grant
// (RFC 7523) the auth library uses for a service account key when it does
// not sign its own JWT for the API. Errors are Google's JSON.
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	tok, email, code, desc := e.grant(r)
	if code != "" {
		e.count(Call{Method: TokenMethod, Code: codes.Unauthenticated})
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
		return
	}
	e.count(Call{Method: TokenMethod, Principal: email})
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(e.opts.TokenLifetime / time.Second),
	})
}

// grant checks a token request and issues an access token, or returns
// Google's error code and description.
func (e *Emulator) grant(r *http.Request) (tok, email, code, desc string) {
	if err := r.ParseForm(); err != nil {
		return "", "", "invalid_request", "Could not parse the request body."
	}
	if gt := r.PostForm.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return "", "", "unsupported_grant_type", "Invalid grant_type: " + gt
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	c, sa, _, err := e.verifyJWT(r.PostForm.Get("assertion"), now)
	switch {
	case errors.Is(err, errAccount):
		return "", "", "invalid_grant", "Invalid grant: account not found"
	case errors.Is(err, errExpired), errors.Is(err, errLifetime):
		return "", "", "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	case err != nil:
		return "", "", "invalid_grant", "Invalid JWT Signature."
	case c.Aud != e.TokenURI() && c.Aud != "https://oauth2.googleapis.com/token":
		return "", "", "invalid_grant", "Invalid JWT: Failed audience check. The right audience is " + e.TokenURI()
	case sa.disabled:
		return "", "", "invalid_grant", "Invalid grant: account not found"
	case strings.TrimSpace(c.Scope) == "":
		return "", "", "invalid_scope", "Invalid OAuth scope or ID token audience provided."
	}
	e.log.Debug("token request", "kind", "JWT bearer grant", "iss", c.Iss, "aud", c.Aud, "scope", c.Scope)
	tok = newTokenValue()
	e.tokens[tok] = issuedToken{p: accountPrincipal(sa.email), email: sa.email, expires: now.Add(e.opts.TokenLifetime)}
	return tok, sa.email, "", ""
}
