package postgres

import (
	"testing"

	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/store/storetest"
)

func TestSessionsConformance(t *testing.T) {
	storetest.RunSessions(t, func(t *testing.T) storetest.SessionStore { return open(t, pgtest.NewDatabase(t)) })
}
