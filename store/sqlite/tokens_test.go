package sqlite

import (
	"testing"

	"github.com/openbyok/byok/store/storetest"
)

func TestTokensConformance(t *testing.T) {
	storetest.RunTokens(t, func(t *testing.T) storetest.TokenStore {
		return openTemp(t, false)
	})
}
