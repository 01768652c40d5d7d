package postgres

import (
	"testing"

	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/store/storetest"
)

func TestLifecycleConformance(t *testing.T) {
	storetest.RunLifecycle(t, func(t *testing.T) lifecycle.Store {
		return open(t, pgtest.NewDatabase(t))
	})
}
