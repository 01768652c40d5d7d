package byok

import (
	"context"
	"time"

	"github.com/openbyok/byok/kms"
)

// KeyKind says who controls a tenant key's customer share.
type KeyKind uint8

const (
	// PlatformManaged tenant keys have their customer share wrapped by the
	// platform root key: the tenant has no key of its own (yet).
	PlatformManaged KeyKind = 1
	// CustomerManaged tenant keys have their customer share wrapped by the
	// tenant's own key in its vault (BYOK).
	CustomerManaged KeyKind = 2
)

func (k KeyKind) String() string {
	switch k {
	case PlatformManaged:
		return "platform-managed"
	case CustomerManaged:
		return "customer-managed"
	}
	return "unknown"
}

// Policy says what a tenant's data does when the customer's key cannot be
// reached for a transient reason.
type Policy uint8

const (
	// Grace keeps serving from cache up to the keyring's max staleness.
	Grace Policy = 1
	// Strict fails closed on the first failed check.
	Strict Policy = 2
)

func (p Policy) String() string {
	switch p {
	case Grace:
		return "grace"
	case Strict:
		return "strict"
	}
	return "unknown"
}

// TenantRecord is a tenant as the store keeps it.
type TenantRecord struct {
	ID      string
	Policy  Policy
	Created time.Time
}

// TenantKeyRecord is one tenant key: a kind and an epoch of a tenant, and
// the two shares its key is derived from.
type TenantKeyRecord struct {
	Tenant string
	Kind   KeyKind
	Epoch  uint32 // starts at 1; a re-key adds the next epoch
	// CustomerShare is wrapped by the customer's key (CustomerManaged) or by
	// the platform root key (PlatformManaged).
	CustomerShare kms.Wrapped
	// PlatformShare is always wrapped by the platform root key.
	PlatformShare kms.Wrapped
	Created       time.Time
}

// ScopeRecord says which kind of tenant key protects a scope of a tenant.
type ScopeRecord struct {
	Tenant string
	Scope  string
	Kind   KeyKind
}

// DEKID identifies a data encryption key; it is random and appears in every
// ciphertext.
type DEKID [16]byte

// DEKRecord is a data encryption key wrapped under a tenant key.
type DEKRecord struct {
	ID      DEKID
	Tenant  string
	Scope   string
	Kind    KeyKind // the tenant key that wraps it: kind ...
	Epoch   uint32  // ... and epoch
	Wrapped []byte  // AES-256-GCM under the tenant key, see docs/format.md
	Created time.Time
}

// Store is the metadata persistence the keyring needs. Implementations are
// in package store and its subpackages; they must be safe for concurrent
// use, and every method that writes more than one row does so in one
// transaction: on error nothing is written.
//
// Lookups of something that does not exist return an error wrapping
// [ErrNotFound]; inserts of something that exists return an error wrapping
// [ErrExists].
type Store interface {
	// CreateTenant inserts the tenant and its first tenant keys, all or
	// nothing.
	CreateTenant(ctx context.Context, t TenantRecord, keys []TenantKeyRecord) error
	// Tenant returns a tenant.
	Tenant(ctx context.Context, id string) (TenantRecord, error)
	// SetTenantPolicy changes a tenant's policy.
	SetTenantPolicy(ctx context.Context, id string, p Policy) error

	// TenantKey returns the tenant key of the given kind with the highest
	// epoch.
	TenantKey(ctx context.Context, tenant string, kind KeyKind) (TenantKeyRecord, error)
	// TenantKeyEpoch returns one epoch of a tenant key.
	TenantKeyEpoch(ctx context.Context, tenant string, kind KeyKind, epoch uint32) (TenantKeyRecord, error)
	// PutTenantKey inserts a tenant key (a new kind or the next epoch).
	PutTenantKey(ctx context.Context, k TenantKeyRecord) error

	// Scope returns a scope; ErrNotFound if it was never set.
	Scope(ctx context.Context, tenant, scope string) (ScopeRecord, error)
	// PutScope inserts or updates a scope.
	PutScope(ctx context.Context, s ScopeRecord) error

	// PutDEK inserts a data encryption key.
	PutDEK(ctx context.Context, d DEKRecord) error
	// DEK returns a data encryption key by id.
	DEK(ctx context.Context, id DEKID) (DEKRecord, error)
}
