package entra

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// maxJWT bounds the size of any JWT the emulator parses (an assertion or an
// access token); real ones are a few kilobytes.
const maxJWT = 16 << 10

// jwtHeader is the JOSE header of the tokens and assertions handled here.
type jwtHeader struct {
	Alg     string   `json:"alg"`
	Typ     string   `json:"typ,omitempty"`
	Kid     string   `json:"kid,omitempty"`
	X5t     string   `json:"x5t,omitempty"`
	X5tS256 string   `json:"x5t#S256,omitempty"`
	X5c     []string `json:"x5c,omitempty"`
}

// parsedJWT is a compact JWS split into its parts; nothing in it is verified.
type parsedJWT struct {
	header    jwtHeader
	claims    map[string]any
	signed    string // header.payload, the signing input
	signature []byte
}

// parseJWT splits and decodes a compact JWS without verifying it. It rejects
// anything that is not three base64url parts holding JSON objects.
func parseJWT(raw string) (*parsedJWT, error) {
	if len(raw) > maxJWT {
		return nil, fmt.Errorf("token is %d bytes, more than the %d allowed", len(raw), maxJWT)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS: want three dot-separated parts")
	}
	hb, err := b64decode(parts[0])
	if err != nil {
		return nil, fmt.Errorf("header is not base64url: %w", err)
	}
	pb, err := b64decode(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload is not base64url: %w", err)
	}
	sig, err := b64decode(parts[2])
	if err != nil {
		return nil, fmt.Errorf("signature is not base64url: %w", err)
	}
	p := &parsedJWT{signed: parts[0] + "." + parts[1], signature: sig}
	if err := json.Unmarshal(hb, &p.header); err != nil {
		return nil, fmt.Errorf("header is not a JSON object: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(pb)))
	dec.UseNumber()
	if err := dec.Decode(&p.claims); err != nil || p.claims == nil {
		return nil, errors.New("payload is not a JSON object")
	}
	return p, nil
}

// b64decode accepts base64url with or without padding.
func b64decode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// verify checks the signature with pub under the header's algorithm, which
// must be RS256 or PS256.
func (p *parsedJWT) verify(pub *rsa.PublicKey) error {
	h := sha256.Sum256([]byte(p.signed))
	switch p.header.Alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], p.signature)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, h[:], p.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	default:
		return fmt.Errorf("algorithm %q is not supported; use RS256 or PS256", p.header.Alg)
	}
}

// str returns the string claim name, or "" if it is absent or not a string.
func (p *parsedJWT) str(name string) string {
	s, _ := p.claims[name].(string)
	return s
}

// num returns the numeric claim name as whole seconds.
func (p *parsedJWT) num(name string) (int64, bool) {
	n, ok := p.claims[name].(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil {
		return 0, false
	}
	return int64(f), true
}

// audiences returns the aud claim, which may be a string or an array.
func (p *parsedJWT) audiences() []string {
	switch v := p.claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// signJWT makes an RS256 compact JWS of claims under key.
func signJWT(key *rsa.PrivateKey, h jwtHeader, claims any) (string, error) {
	h.Alg = "RS256"
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	d := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		return "", err
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
