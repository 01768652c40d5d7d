// Package byok encrypts a multi-tenant platform's data under keys its
// tenants control.
//
// A [Keyring] encrypts and decrypts for a tenant and a scope (an app, a bot,
// a workspace). It derives each tenant key from two shares: a customer share
// that only the tenant's key can unwrap — its own key in its own Azure Key
// Vault (customer-managed, BYOK) or, until it brings one, the platform root
// key (platform-managed) — and a platform share that only the platform root
// key can unwrap. Neither the tenant's vault nor the platform's database
// alone can decrypt anything.
//
// Data is sealed under data encryption keys (DEKs) that are wrapped under
// the tenant key and cached in memory, so steady-state Encrypt and Decrypt
// make no remote call: the key provider sees one unwrap per tenant key per
// check interval.
//
// # Revocation and caching
//
// Every cached tenant key is checked against its provider every
// CheckInterval by a real unwrap of its customer share:
//
//   - an authoritative answer (access removed, key disabled, deleted,
//     expired) revokes at once: the tenant key and every DEK under it leave
//     memory and every call fails with an error wrapping [ErrKeyRevoked];
//   - a transient failure (timeout, 5xx, 429) keeps serving from cache up
//     to MaxStaleness under the [Grace] policy, or fails at once under
//     [Strict], with [ErrKeyUnavailable];
//   - when the provider answers again, the next check restores service by
//     itself.
//
// # Ciphertexts
//
// The byte formats are specified in docs/format.md. A ciphertext names its
// DEK and is bound to its tenant, its scope and the caller's associated
// data: presented under any other tenant, scope or associated data it fails
// with [ErrDecrypt], the one error for every authentication failure.
package byok
