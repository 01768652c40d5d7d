package byok

import (
	"context"
	"crypto/cipher"
	"sync/atomic"

	"github.com/openbyok/byok/internal/envelope"
)

// ScopeHandle encrypts and decrypts one scope of one tenant, like
// [Keyring.Encrypt] and [Keyring.Decrypt] with that tenant and scope, but
// without looking the scope's keys up on each call: it holds the scope's
// active DEK and the DEK of its last Decrypt. Every rule of the keyring
// still holds, at once: a handle's keys are valid only while the
// keyring's cache holds them, so a revocation, an outage past the
// tenant's policy, a due check, the retirement of a DEK, an eviction and
// [Keyring.Forget] send its next call through the keyring's lookups as if
// it had no handle.
//
// A ScopeHandle is safe for concurrent use and costs nothing when unused;
// create one per (tenant, scope) a service writes to often, with
// [Keyring.Scope].
type ScopeHandle struct {
	k      *Keyring
	env    envelope.Context // the tenant and scope, checked once
	active atomic.Pointer[handleDEK]
	last   atomic.Pointer[dek]
}

// handleDEK is a handle's active DEK with what Encrypt reads of it at hand:
// its fields are a's, which never change, copied so that the warm path
// reaches each of them through one pointer instead of a chain.
type handleDEK struct {
	a    *activeDEK
	dek  *dek       // a.dek
	tk   *tenantKey // a.dek.tk
	aead cipher.AEAD
	id   envelope.KeyID
}

// Scope returns a handle on a tenant's scope. It checks the ids and makes
// no other call: an unknown tenant fails on first use.
func (k *Keyring) Scope(tenant, scope string) (*ScopeHandle, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	if err := checkID("scope", scope); err != nil {
		return nil, err
	}
	env, err := envelope.NewContext(tenant, scope)
	if err != nil {
		return nil, err
	}
	return &ScopeHandle{k: k, env: env}, nil
}

// Tenant returns the handle's tenant id.
func (h *ScopeHandle) Tenant() string { return h.env.Tenant() }

// Scope returns the handle's scope id.
func (h *ScopeHandle) Scope() string { return h.env.Scope() }

// Encrypt is [Keyring.Encrypt] for the handle's tenant and scope.
func (h *ScopeHandle) Encrypt(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	k := h.k
	// validateData's conditions, tested here so that the warm path makes
	// no call for them.
	if ctx.Err() != nil || len(plaintext) > MaxPlaintext || len(aad) > MaxAAD {
		if err := validateData(ctx, len(plaintext), aad); err != nil {
			return nil, err
		}
	}
	s := h.active.Load()
	// The active DEK's expiry is closed when it leaves the cache for any
	// reason, and its tenant key's deadline when that key may not be used
	// without a check: both are what Keyring.Encrypt reads too.
	if s == nil || !k.usable(s.tk) || s.a.expires.passed(k) || s.a.used.Add(1) > k.cfg.DEKMaxMessages {
		a, err := k.activeDEK(ctx, h.env.Tenant(), h.env.Scope())
		if err != nil {
			return nil, err
		}
		if s == nil || s.a != a {
			s = &handleDEK{a: a, dek: a.dek, tk: a.dek.tk, aead: a.dek.aead, id: envelope.KeyID(a.dek.id)}
			h.active.Store(s)
		}
	} else {
		s.dek.ce.touch()
		s.tk.ce.touch()
	}
	return h.env.Seal(s.aead, s.id, plaintext, aad), nil
}

// Decrypt is [Keyring.Decrypt] for the handle's tenant and scope.
func (h *ScopeHandle) Decrypt(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	k := h.k
	if err := validateData(ctx, len(ciphertext)-envelope.Overhead, aad); err != nil {
		return nil, err
	}
	id, err := envelope.ParseID(ciphertext)
	if err != nil {
		return nil, formatError(err)
	}
	d := h.last.Load()
	// gone is set when the DEK leaves the cache (revocation, Forget,
	// eviction, its tenant key's shares changing).
	if d == nil || d.id != DEKID(id) || d.gone.Load() || !k.usable(d.tk) {
		if d, err = k.dekByID(ctx, h.env.Tenant(), h.env.Scope(), DEKID(id)); err != nil {
			return nil, err
		}
		h.last.Store(d)
	} else {
		d.ce.touch()
		d.tk.ce.touch()
		d.hits.Add(1)
	}
	pt, err := h.env.Open(d.aead, ciphertext, aad)
	if err != nil {
		return nil, openError(err)
	}
	return pt, nil
}
