package postgres

import (
	"testing"

	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/store/storetest"
)

func TestTokenConformance(t *testing.T) {
	storetest.RunTokens(t, func(t *testing.T) storetest.TokenStore { return open(t, pgtest.NewDatabase(t)) })
}
