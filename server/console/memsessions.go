package console

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/store"
)

// memSessions is the session store of a console given none
// (Config.Sessions nil): one process's memory, for embedding and tests.
// Replicas do not share it.
type memSessions struct {
	mu sync.Mutex
	m  map[[32]byte]store.Session
}

var _ store.SessionStore = (*memSessions)(nil)

func newMemSessions() *memSessions { return &memSessions{m: map[[32]byte]store.Session{}} }

func (m *memSessions) CreateSession(_ context.Context, s store.Session) error {
	if err := store.CheckSession(s); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[s.Hash]; ok {
		return fmt.Errorf("console: a session with that hash exists: %w", byok.ErrExists)
	}
	m.m[s.Hash] = normal(s)
	return nil
}

// normal gives s as the database backends give it back: times in UTC,
// empty data as nil, nothing shared with the caller.
func normal(s store.Session) store.Session {
	for _, t := range []*time.Time{&s.Created, &s.Expires, &s.LastSeen} {
		if !t.IsZero() {
			*t = t.UTC().Round(0)
		}
	}
	s.Data = slices.Clone(s.Data)
	if len(s.Data) == 0 {
		s.Data = nil
	}
	return s
}

func (m *memSessions) Session(_ context.Context, h [32]byte) (store.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[h]
	if !ok {
		return store.Session{}, fmt.Errorf("console: no such session: %w", byok.ErrNotFound)
	}
	return normal(s), nil
}

func (m *memSessions) update(h [32]byte, f func(*store.Session)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[h]
	if !ok {
		return fmt.Errorf("console: no such session: %w", byok.ErrNotFound)
	}
	f(&s)
	m.m[h] = normal(s)
	return nil
}

func (m *memSessions) TouchSession(_ context.Context, h [32]byte, at time.Time) error {
	return m.update(h, func(s *store.Session) {
		if at.After(s.LastSeen) {
			s.LastSeen = at
		}
	})
}

func (m *memSessions) SetSessionData(_ context.Context, h [32]byte, data []byte) error {
	if len(data) > store.MaxSessionData {
		return &byok.InputError{Arg: "session data", Reason: fmt.Sprintf("is %d bytes; at most %d", len(data), store.MaxSessionData)}
	}
	return m.update(h, func(s *store.Session) { s.Data = slices.Clone(data) })
}

func (m *memSessions) DeleteSession(_ context.Context, h [32]byte) error {
	m.mu.Lock()
	delete(m.m, h)
	m.mu.Unlock()
	return nil
}

func (m *memSessions) DeleteEndedSessions(_ context.Context, now, idleSince time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for h, s := range m.m {
		seen := s.LastSeen
		if seen.IsZero() {
			seen = s.Created
		}
		if !now.Before(s.Expires) || !idleSince.IsZero() && seen.Before(idleSince) {
			delete(m.m, h)
			n++
		}
	}
	return n, nil
}
