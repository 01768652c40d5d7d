// Package store defines the metadata persistence of byok: the
// [byok.Store] the keyring needs, plus what the lifecycle jobs need on top
// (listing, rotation, re-key, moving scopes, key-version inventory).
//
// Backends live in subpackages, [sqlite] and [postgres], which share the
// SQL of [sqlstore], and all run the conformance suite in [storetest].
//
// # Errors
//
// Every error a backend returns for a failed call wraps exactly one of:
//
//   - [byok.ErrNotFound]: the row the call names (tenant, tenant key,
//     scope, DEK) does not exist.
//   - [byok.ErrExists]: an insert names a row that exists.
//   - [ErrConflict]: a compare-and-swap found another value than expected.
//   - [byok.ErrInvalidInput]: an argument is out of range (see [CheckTenant]
//     and friends); nothing was sent to the database.
//   - anything else: the database failed (I/O, closed, ctx done).
//
// Errors name the tenant, scope, kind, epoch, DEK id or key id involved and
// never contain wrapped or unwrapped key material.
//
// [sqlite]: github.com/openbyok/byok/store/sqlite
// [postgres]: github.com/openbyok/byok/store/postgres
// [sqlstore]: github.com/openbyok/byok/store/sqlstore
// [storetest]: github.com/openbyok/byok/store/storetest
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
)

// ErrConflict is wrapped by the error of a compare-and-swap ([Store.ReplaceShare])
// whose expected value no longer matches: someone else changed the row first.
// Re-read the row and decide again.
var ErrConflict = errors.New("store: conflicting concurrent change")

// Store is a [byok.Store] plus the operations of the lifecycle jobs.
//
// Implementations are safe for concurrent use. Each method is one
// transaction: on error nothing it would have written is written.
//
// Lists are ordered by their cursor (tenant ids and scope ids bytewise,
// DEK ids bytewise), start after the exclusive cursor `after` (the zero
// value starts at the beginning), return at most limit records (limit must
// be positive), and return an empty list, not an error, when nothing
// matches, including for an unknown tenant. A caller pages by passing the
// last record's id as the next `after` until a page is shorter than limit.
type Store interface {
	byok.Store

	// ListTenants lists tenants ordered by id.
	ListTenants(ctx context.Context, after string, limit int) ([]byok.TenantRecord, error)

	// TenantKeys lists every tenant key of a tenant, ordered by kind then
	// epoch. An unknown tenant has none.
	TenantKeys(ctx context.Context, tenant string) ([]byok.TenantKeyRecord, error)

	// ListScopes lists the scopes of a tenant that were ever set, ordered
	// by scope id.
	ListScopes(ctx context.Context, tenant, after string, limit int) ([]byok.ScopeRecord, error)

	// ListDEKs lists the DEKs of a tenant wrapped under its tenant keys of
	// kind with an epoch below belowEpoch, ordered by id: the work list of
	// a resumable re-key job, which walks every older epoch at once and
	// resumes from the last id it rewrapped.
	ListDEKs(ctx context.Context, tenant string, kind byok.KeyKind, belowEpoch uint32, after byok.DEKID, limit int) ([]byok.DEKRecord, error)

	// ListScopeDEKs lists the DEKs of one scope of a tenant, whatever wraps
	// them, ordered by id.
	ListScopeDEKs(ctx context.Context, tenant, scope string, after byok.DEKID, limit int) ([]byok.DEKRecord, error)

	// RewrapDEKs sets Kind, Epoch and Wrapped of existing DEKs, found by
	// ID, all in one transaction. Tenant and Scope of each record must be
	// those of the stored DEK (they are bound into its wrapping and never
	// change); Created is ignored and kept. If any record names no stored
	// DEK of that tenant and scope, the whole batch fails with an error
	// wrapping [byok.ErrNotFound] that names the id; if a record names a
	// tenant key (tenant, kind, epoch) that does not exist, likewise. A
	// record that appears twice in recs is applied in order (the last
	// wins). An empty batch does nothing.
	RewrapDEKs(ctx context.Context, recs []byok.DEKRecord) error

	// MoveScope sets the kind of scope s (inserting it if it was never
	// set, like PutScope) and rewraps the given DEKs of that scope, as
	// RewrapDEKs does, in one transaction. Every record in rewrapped must
	// belong to s.Tenant and s.Scope and have Kind s.Kind, or the call
	// fails with [byok.ErrInvalidInput] and writes nothing. An unknown
	// tenant or DEK fails with [byok.ErrNotFound] and writes nothing.
	MoveScope(ctx context.Context, s byok.ScopeRecord, rewrapped []byok.DEKRecord) error

	// ReplaceShare sets the customer share of one tenant key (rotation of
	// the customer's key, or of the platform root key for a
	// platform-managed key) if and only if the stored customer share is
	// wrapped under exactly oldKeyID. Otherwise it fails with an error
	// wrapping [ErrConflict] that names the stored key id, or with
	// [byok.ErrNotFound] if the tenant key does not exist.
	ReplaceShare(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32, oldKeyID string, customer kms.Wrapped) error

	// ReplacePlatformShare is ReplaceShare for the platform share of a
	// tenant key (rotation of the platform root key).
	ReplacePlatformShare(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32, oldKeyID string, platform kms.Wrapped) error

	// ShareInventory counts the wrapped shares (customer and platform
	// shares of every tenant key of every tenant) under each exact,
	// versioned key id, ordered by key id. A key id that is not listed has
	// no share under it: that version is safe to retire.
	ShareInventory(ctx context.Context) ([]ShareCount, error)

	// TenantShareInventory is ShareInventory for the tenant keys of one
	// tenant. It fails with [byok.ErrNotFound] if the tenant does not
	// exist.
	TenantShareInventory(ctx context.Context, tenant string) ([]ShareCount, error)

	// Close releases the store's resources. Calls after Close fail.
	Close() error
}

// ShareCount is how many wrapped shares sit under one versioned key id.
type ShareCount struct {
	KeyID  string // exact, versioned key id as the provider returned it
	Shares int    // > 0
}

// Timestamps of records must lie in this range, or be zero: it is what a
// signed 64-bit count of nanoseconds since 1970 holds, and so what every
// backend can store exactly. The zero time.Time is stored as "no time" and
// read back as the zero time.Time.
var (
	MinTime = time.Unix(0, -1<<63).UTC()
	MaxTime = time.Unix(0, 1<<63-1).UTC()
)

// CheckTenant reports, as an error wrapping [byok.ErrInvalidInput], why t
// cannot be stored. Backends call the Check functions before they write, so
// that every backend rejects the same input with the same error.
func CheckTenant(t byok.TenantRecord) error {
	if t.ID == "" {
		return invalid("tenant id", "is empty")
	}
	if err := CheckPolicy(t.Policy); err != nil {
		return err
	}
	return checkTime("created", t.Created)
}

// CheckPolicy reports whether p is a known [byok.Policy].
func CheckPolicy(p byok.Policy) error {
	if p != byok.Grace && p != byok.Strict {
		return invalid("policy", fmt.Sprintf("is %d; it must be %d (grace) or %d (strict)", p, byok.Grace, byok.Strict))
	}
	return nil
}

// CheckKind reports whether k is a known [byok.KeyKind].
func CheckKind(k byok.KeyKind) error {
	if k != byok.PlatformManaged && k != byok.CustomerManaged {
		return invalid("key kind", fmt.Sprintf("is %d; it must be %d (platform-managed) or %d (customer-managed)",
			k, byok.PlatformManaged, byok.CustomerManaged))
	}
	return nil
}

// CheckTenantKey reports why k cannot be stored.
func CheckTenantKey(k byok.TenantKeyRecord) error {
	if err := CheckKeyRef(k.Tenant, k.Kind, k.Epoch); err != nil {
		return err
	}
	return checkTime("created", k.Created)
}

// CheckKeyRef reports why (tenant, kind, epoch) cannot name a tenant key.
func CheckKeyRef(tenant string, kind byok.KeyKind, epoch uint32) error {
	if tenant == "" {
		return invalid("tenant id", "is empty")
	}
	if err := CheckKind(kind); err != nil {
		return err
	}
	if epoch == 0 {
		return invalid("epoch", "is 0; epochs start at 1")
	}
	return nil
}

// CheckScope reports why s cannot be stored.
func CheckScope(s byok.ScopeRecord) error {
	if s.Tenant == "" {
		return invalid("tenant id", "is empty")
	}
	if s.Scope == "" {
		return invalid("scope id", "is empty")
	}
	return CheckKind(s.Kind)
}

// CheckDEK reports why d cannot be stored. The zero [byok.DEKID] is
// reserved: it is the cursor that starts a list.
func CheckDEK(d byok.DEKRecord) error {
	if err := CheckRewrap(d); err != nil {
		return err
	}
	return checkTime("created", d.Created)
}

// CheckRewrap reports why d cannot be a record of [Store.RewrapDEKs]: as
// [CheckDEK], but Created, which a rewrap keeps, is not looked at.
func CheckRewrap(d byok.DEKRecord) error {
	if d.ID == (byok.DEKID{}) {
		return invalid("DEK id", "is all zero; DEK ids are random and the zero id is reserved")
	}
	if d.Scope == "" {
		return invalid("scope id", "is empty")
	}
	return CheckKeyRef(d.Tenant, d.Kind, d.Epoch)
}

// CheckLimit reports whether limit is a valid page size.
func CheckLimit(limit int) error {
	if limit <= 0 {
		return invalid("limit", fmt.Sprintf("is %d; it must be positive", limit))
	}
	return nil
}

func checkTime(what string, t time.Time) error {
	if t.IsZero() || (!t.Before(MinTime) && !t.After(MaxTime)) {
		return nil
	}
	return invalid(what, fmt.Sprintf("is %s; it must be zero or between %s and %s",
		t.UTC().Format(time.RFC3339), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339)))
}

func invalid(arg, reason string) error {
	return &byok.InputError{Arg: arg, Reason: reason}
}
