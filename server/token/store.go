package token

import (
	"context"
	"time"
)

// Store keeps token records. Implementations are safe for concurrent use;
// each method is one transaction. Errors wrap:
//
//   - [byok.ErrInvalidInput] for a record that fails [Check] or a limit
//     that is not positive; nothing is written;
//   - [byok.ErrExists] when CreateToken names an id that exists;
//   - [byok.ErrNotFound] when a token id, or a tenant a new token names,
//     does not exist;
//   - anything else when the database fails.
//
// Errors name token ids and tenants, never hashes.
//
// [byok.ErrInvalidInput]: github.com/openbyok/byok.ErrInvalidInput
// [byok.ErrExists]: github.com/openbyok/byok.ErrExists
// [byok.ErrNotFound]: github.com/openbyok/byok.ErrNotFound
type Store interface {
	// CreateToken stores a new token with its tenants. Every tenant it
	// names must exist.
	CreateToken(ctx context.Context, r Record) error
	// Token returns the token with that id.
	Token(ctx context.Context, id string) (Record, error)
	// ListTokens lists tokens ordered by id, starting after the exclusive
	// cursor after ("" starts at the beginning), at most limit of them.
	ListTokens(ctx context.Context, after string, limit int) ([]Record, error)
	// RevokeToken marks a token revoked at at. Revoking a revoked token
	// keeps its first revocation time and succeeds.
	RevokeToken(ctx context.Context, id string, at time.Time) error
}
