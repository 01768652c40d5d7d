// Package token defines the bearer tokens of the byok HTTP API: their
// three kinds, their text form, the record a store keeps of each, and how a
// presented token is checked against that record.
//
// It also defines [Store], the storage the server needs for tokens. The
// package imports only the standard library, so that storage backends can
// implement [Store] without depending on the server.
//
// # Text form
//
// A token reads
//
//	byok_<kind>_<id>_<secret>
//
// where kind is "operator", "tenant-admin" or "service"; id is 32
// lowercase hex digits (16 random bytes) that name the record; and secret
// is 43 characters of unpadded base64url (32 random bytes, 256 bits). The
// prefix lets secret scanners recognise a leaked token and lets the server
// look the record up by id without ever keying a lookup on the secret.
//
// # What is stored
//
// Only the SHA-256 digest of the 32 secret bytes is stored. A fast,
// unsalted hash is enough here, unlike for passwords: the secret is 256
// bits from crypto/rand, so the digest cannot be brute-forced, and a
// database leak yields no usable token. [Record.Verify] compares digests in
// constant time.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind is the kind of a token: what it may do.
type Kind string

const (
	// Operator tokens administer the platform: tenants, tokens, the
	// platform key. They carry no tenant.
	Operator Kind = "operator"
	// TenantAdmin tokens administer the key configuration of exactly one
	// tenant.
	TenantAdmin Kind = "tenant-admin"
	// Service tokens make data calls (encrypt, decrypt, reencrypt) for
	// the tenants they list, and nothing else.
	Service Kind = "service"
)

// Valid reports whether k is one of the three kinds.
func (k Kind) Valid() bool {
	return k == Operator || k == TenantAdmin || k == Service
}

// Lengths of the parts of a token's text form.
const (
	IDLen     = 32 // hex digits
	SecretLen = 43 // unpadded base64url characters of 32 bytes
)

// Record is what a store keeps of a token. It holds no secret: Hash is the
// SHA-256 digest of the token's secret bytes.
type Record struct {
	ID      string   // 32 lowercase hex digits
	Kind    Kind     //
	Tenants []string // TenantAdmin: exactly one; Service: one or more, sorted, no duplicates; Operator: none
	Hash    [32]byte // SHA-256 of the 32 secret bytes
	Name    string   // a label for people ("ci-deployer"); may be empty
	Created time.Time
	Expires time.Time // zero: never expires
	Revoked time.Time // zero: not revoked
}

// Active reports whether r may be used at now: not revoked and not
// expired. A token expires at Expires exactly.
func (r Record) Active(now time.Time) bool {
	return r.Revoked.IsZero() && (r.Expires.IsZero() || now.Before(r.Expires))
}

// Verify reports, in constant time, whether secret is the secret whose
// digest r holds.
func (r Record) Verify(secret []byte) bool {
	sum := sha256.Sum256(secret)
	return subtle.ConstantTimeCompare(sum[:], r.Hash[:]) == 1
}

// HasTenant reports whether r lists tenant.
func (r Record) HasTenant(tenant string) bool {
	return slices.Contains(r.Tenants, tenant)
}

// Check reports why r cannot be stored: an id that is not 32 lowercase hex
// digits, an unknown kind, or a tenant list that does not fit the kind.
// The error says what to change.
func Check(r Record) error {
	if !ValidID(r.ID) {
		return fmt.Errorf("token id %q is not %d lowercase hex digits", r.ID, IDLen)
	}
	if !r.Kind.Valid() {
		return fmt.Errorf("token kind %q is unknown; use %q, %q or %q", r.Kind, Operator, TenantAdmin, Service)
	}
	return CheckTenants(r.Kind, r.Tenants)
}

// CheckTenants reports why tenants cannot be the tenant list of a token of
// kind k.
func CheckTenants(k Kind, tenants []string) error {
	switch k {
	case Operator:
		if len(tenants) != 0 {
			return errors.New("an operator token carries no tenants; remove them, or issue a tenant-admin or service token")
		}
	case TenantAdmin:
		if len(tenants) != 1 {
			return fmt.Errorf("a tenant-admin token names exactly one tenant, not %d; issue one token per tenant", len(tenants))
		}
	case Service:
		if len(tenants) == 0 {
			return errors.New("a service token names at least one tenant; list the tenants whose data it may encrypt and decrypt")
		}
	}
	for i, t := range tenants {
		if t == "" {
			return fmt.Errorf("tenant %d of the token is empty", i+1)
		}
		if i > 0 && tenants[i-1] >= t {
			return fmt.Errorf("the token's tenants must be sorted and distinct; %q comes after %q", t, tenants[i-1])
		}
	}
	return nil
}

// New makes a token of kind k for tenants (which it sorts and
// de-duplicates), named name, created at now and expiring after ttl (never,
// if ttl is 0). It returns the token's text, to hand to its holder once,
// and the record to store. It fails, with an error saying why, if the
// tenants do not fit the kind or ttl is negative.
func New(k Kind, tenants []string, name string, now time.Time, ttl time.Duration) (text string, r Record, err error) {
	if !k.Valid() {
		return "", Record{}, fmt.Errorf("token kind %q is unknown; use %q, %q or %q", k, Operator, TenantAdmin, Service)
	}
	if ttl < 0 {
		return "", Record{}, fmt.Errorf("token lifetime %s is negative; give a positive duration, or 0 for a token that never expires", ttl)
	}
	ts := normalize(tenants)
	if err := CheckTenants(k, ts); err != nil {
		return "", Record{}, err
	}
	var id [16]byte
	var secret [32]byte
	rand.Read(id[:])
	rand.Read(secret[:])
	r = Record{
		ID:      hex.EncodeToString(id[:]),
		Kind:    k,
		Tenants: ts,
		Hash:    sha256.Sum256(secret[:]),
		Name:    name,
		Created: now.UTC(),
	}
	if ttl > 0 {
		r.Expires = r.Created.Add(ttl)
	}
	text = "byok_" + string(k) + "_" + r.ID + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	clear(secret[:])
	return text, r, nil
}

// normalize returns tenants sorted, without duplicates, in a new slice.
func normalize(tenants []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(tenants)))
}

// ErrMalformed is wrapped by the error of [Parse] for text that is not a
// byok token.
var ErrMalformed = errors.New("token: malformed")

// Parse splits a token's text into its kind, id and secret bytes. It checks
// the form only; whether the token exists, is active and matches is for the
// caller ([Record.Verify]). Its errors never contain the text.
func Parse(text string) (Kind, string, []byte, error) {
	rest, ok := strings.CutPrefix(text, "byok_")
	if !ok {
		return "", "", nil, fmt.Errorf("%w: a byok token starts with \"byok_\"", ErrMalformed)
	}
	kind, rest, ok := strings.Cut(rest, "_")
	if !ok || !Kind(kind).Valid() {
		return "", "", nil, fmt.Errorf("%w: the kind after \"byok_\" must be %q, %q or %q", ErrMalformed, Operator, TenantAdmin, Service)
	}
	id, enc, ok := strings.Cut(rest, "_")
	if !ok || !ValidID(id) {
		return "", "", nil, fmt.Errorf("%w: the id must be %d lowercase hex digits", ErrMalformed, IDLen)
	}
	secret, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(enc) != SecretLen || len(secret) != 32 {
		return "", "", nil, fmt.Errorf("%w: the secret must be %d characters of unpadded base64url", ErrMalformed, SecretLen)
	}
	return Kind(kind), id, secret, nil
}

// ValidID reports whether id has the form of a token id.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
