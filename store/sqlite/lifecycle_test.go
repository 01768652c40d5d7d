package sqlite

import (
	"testing"

	"github.com/openbyok/byok/lifecycle/record"
	"github.com/openbyok/byok/store/storetest"
)

func TestLifecycleConformance(t *testing.T) {
	storetest.RunLifecycle(t, func(t *testing.T) record.Store {
		return openTemp(t, false)
	})
}
