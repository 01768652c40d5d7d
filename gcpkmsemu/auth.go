package gcpkmsemu

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Scopes and audience that Cloud KMS accepts in a self-signed JWT.
const (
	ScopeCloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
	ScopeCloudKMS      = "https://www.googleapis.com/auth/cloudkms"
	// Audience is the audience of a self-signed JWT for Cloud KMS
	// (the client's default audience).
	Audience = "https://cloudkms.googleapis.com/"
	// maxJWTLifetime is the longest exp - iat Google takes.
	maxJWTLifetime = time.Hour
	// clockSkew is the leeway on iat and exp.
	clockSkew = 5 * time.Minute
)

// principal is the authenticated caller of a call: a service account
// (id its email) or a federated identity (id its principal:// name).
type principal struct{ id, iamMember string }

func accountPrincipal(email string) principal {
	return principal{id: email, iamMember: "serviceAccount:" + email}
}

// member is the principal as an IAM member.
func (p principal) member() string { return p.iamMember }

type principalKey struct{}

// principalFrom returns the caller authenticated by [Emulator.authenticate].
func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// issuedToken is an access token the emulator issued (token endpoint,
// STS or generateAccessToken); email is set for a service account's.
type issuedToken struct {
	p       principal
	email   string
	expires time.Time
}

// authenticate is the interceptor that verifies the bearer token: a
// self-signed JWT of a service account (what the official client sends for
// a key file) or an access token issued by the token endpoint. It
// answers UNAUTHENTICATED as Google does.
func (e *Emulator) authenticate(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var raw string
	for _, v := range md.Get("authorization") {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			raw = strings.TrimSpace(v[7:])
		}
	}
	method := strings.TrimPrefix(strings.ReplaceAll(info.FullMethod, "/", "."), ".")
	if raw == "" {
		return nil, unauthenticated("CREDENTIALS_MISSING", method, nil)
	}
	p, reason, email := e.verifyBearer(raw)
	if reason != "" {
		var extra map[string]string
		if email != "" {
			extra = map[string]string{"email": email}
		}
		return nil, unauthenticated(reason, method, extra)
	}
	if c, ok := ctx.Value(callKey{}).(*callInfo); ok {
		c.principal = p.id
	}
	return handler(context.WithValue(ctx, principalKey{}, p), req)
}

// verifyBearer checks a bearer token; on failure it returns the ErrorInfo
// reason and, for a disabled account, its email.
func (e *Emulator) verifyBearer(raw string) (p principal, reason, email string) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.tokens[raw]; ok {
		if !now.Before(t.expires) {
			return principal{}, "ACCESS_TOKEN_EXPIRED", ""
		}
		if sa := e.accounts[t.email]; t.email != "" && (sa == nil || sa.disabled) {
			return principal{}, "ACCOUNT_STATE_INVALID", t.email
		}
		return t.p, "", ""
	}
	if v, ok := e.jwtCache[raw]; ok {
		if sa := e.accounts[v.email]; sa != nil && sa.key(v.keyID) != nil && !sa.key(v.keyID).disabled {
			switch {
			case !inWindow(now, v.iat, v.exp):
				return principal{}, "ACCESS_TOKEN_EXPIRED", ""
			case sa.disabled:
				return principal{}, "ACCOUNT_STATE_INVALID", sa.email
			}
			return accountPrincipal(sa.email), "", ""
		}
	}
	c, sa, keyID, err := e.verifyJWT(raw, now)
	switch {
	case errors.Is(err, errExpired):
		return principal{}, "ACCESS_TOKEN_EXPIRED", ""
	case err != nil:
		return principal{}, "ACCESS_TOKEN_TYPE_UNSUPPORTED", ""
	}
	e.log.Debug("bearer token", "kind", "self-signed JWT", "iss", c.Iss, "aud", c.Aud, "scope", c.Scope)
	if c.Sub != "" && c.Sub != c.Iss {
		return principal{}, "ACCESS_TOKEN_TYPE_UNSUPPORTED", "" // domain-wide delegation is not for Cloud KMS
	}
	if !audienceOK(c.Aud, c.Scope) {
		return principal{}, "ACCESS_TOKEN_TYPE_UNSUPPORTED", ""
	}
	if len(e.jwtCache) >= maxJWTCache {
		clear(e.jwtCache)
	}
	e.jwtCache[raw] = verifiedJWT{email: sa.email, keyID: keyID, iat: time.Unix(c.Iat, 0), exp: time.Unix(c.Exp, 0)}
	if sa.disabled {
		return principal{}, "ACCOUNT_STATE_INVALID", sa.email
	}
	return accountPrincipal(sa.email), "", ""
}

// verifiedJWT is a self-signed JWT whose signature, audience and subject
// were checked: the client sends the same JWT for an hour, and later calls
// skip the RSA verification but still check the time, the account and the
// key.
type verifiedJWT struct {
	email, keyID string
	iat, exp     time.Time
}

// maxJWTCache bounds the cache of verified JWTs (it is emptied when full).
const maxJWTCache = 4096

// inWindow reports whether now is within a token's lifetime, with skew.
func inWindow(now, iat, exp time.Time) bool {
	return !now.Add(clockSkew).Before(iat) && now.Add(-clockSkew).Before(exp)
}

// audienceOK reports whether a self-signed JWT is meant for Cloud KMS:
// its aud is the service's audience, or it has none and its scope names
// cloud-platform or cloudkms (the client's default, "JWT with scope").
func audienceOK(aud, scope string) bool {
	if aud != "" {
		return strings.TrimSuffix(aud, "/") == strings.TrimSuffix(Audience, "/")
	}
	for _, s := range strings.Fields(scope) {
		if s == ScopeCloudPlatform || s == ScopeCloudKMS {
			return true
		}
	}
	return false
}

// jwtClaims are the claims the Google auth library signs.
type jwtClaims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Aud   string `json:"aud"`
	Scope string `json:"scope"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

var (
	errExpired  = errors.New("token expired or not yet valid")
	errBadToken = errors.New("malformed token")
	errAccount  = errors.New("account not found")
	errSig      = errors.New("invalid signature")
	errLifetime = errors.New("lifetime too long")
)

// verifyJWT checks an RS256 JWT signed by a service account key: the
// header's kid names the key (no kid: any enabled key of the account);
// iss is the account; the signature verifies; iat and exp are in range
// (5 minutes of skew, at most one hour apart). It does not check the
// audience or the account's state. It returns the id of the key that
// verified. e.mu is held.
func (e *Emulator) verifyJWT(raw string, now time.Time) (c jwtClaims, sa *serviceAccount, keyID string, err error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return c, nil, "", errBadToken
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &h); err != nil || h.Alg != "RS256" {
		return c, nil, "", errBadToken
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return c, nil, "", errBadToken
	}
	sa = e.accounts[strings.ToLower(c.Iss)]
	if sa == nil {
		return c, nil, "", errAccount
	}
	sig, derr := base64.RawURLEncoding.DecodeString(parts[2])
	if derr != nil {
		return c, sa, "", errBadToken
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	for _, k := range sa.keys {
		if k.disabled || (h.Kid != "" && k.id != h.Kid) {
			continue
		}
		if rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, digest[:], sig) == nil {
			keyID = k.id
			break
		}
	}
	if keyID == "" {
		return c, sa, "", errSig
	}
	iat, exp := time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
	if c.Exp == 0 || exp.Sub(iat) > maxJWTLifetime+time.Minute {
		return c, sa, "", errLifetime
	}
	if !inWindow(now, iat, exp) {
		return c, sa, "", errExpired
	}
	return c, sa, keyID, nil
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// newTokenValue returns an opaque access token in Google's form.
func newTokenValue() string {
	b := make([]byte, 24)
	rand.Read(b) // crypto/rand never fails
	return "ya29.emu-" + hex.EncodeToString(b)
}
