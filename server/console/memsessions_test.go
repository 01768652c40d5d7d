package console

import (
	"testing"

	"github.com/openbyok/byok/store/storetest"
)

// closableMem is the in-memory session store with the Close the suite
// calls.
type closableMem struct{ *memSessions }

func (closableMem) Close() error { return nil }

// TestMemSessionsConformance: the store a console given no
// Config.Sessions uses keeps the same contract as SQLite and PostgreSQL.
func TestMemSessionsConformance(t *testing.T) {
	storetest.RunSessions(t, func(*testing.T) storetest.SessionStore { return closableMem{newMemSessions()} })
}
