package storetest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/store"
)

// SessionStore is a [store.SessionStore] that can be closed: a backend's
// store, or the console's in-memory one.
type SessionStore interface {
	store.SessionStore
	Close() error
}

// RunSessions runs the conformance suite of [store.SessionStore]. open
// must return a new, empty store each time it is called; RunSessions
// closes every store it gets. The console's own tests add what needs two
// replicas (two console handlers over one store).
func RunSessions(t *testing.T, open func(t *testing.T) SessionStore) {
	s := sessionSuite{open: open}
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"RoundTrip", s.testRoundTrip},
		{"CreateErrors", s.testCreateErrors},
		{"Unknown", s.testUnknown},
		{"Touch", s.testTouch},
		{"SetData", s.testSetData},
		{"Delete", s.testDelete},
		{"DeleteEnded", s.testDeleteEnded},
		{"ConcurrentUse", s.testConcurrentUse},
		{"ErrorsHoldNoSecret", s.testErrorsHoldNoSecret},
	} {
		t.Run(tc.name, tc.f)
	}
}

type sessionSuite struct {
	open func(t *testing.T) SessionStore
}

func (s sessionSuite) store(t *testing.T) SessionStore {
	t.Helper()
	st := s.open(t)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// newSession returns a tenant admin's session whose id is id: its hash is
// the SHA-256 of id, as the console stores it.
func newSession(id, tenant string) store.Session {
	return store.Session{
		Hash: sha256.Sum256([]byte(id)), Kind: "tenant-admin", Tenant: tenant,
		Subject: "oidc:https://login.example/v2.0#" + id, Name: "Ada Lovelace",
		Created: created, LastSeen: created, Expires: created.Add(8 * time.Hour),
		Data: []byte("sealed " + id),
	}
}

// sessionUTC returns s with its times in UTC, as a store gives them back.
func sessionUTC(s store.Session) store.Session {
	for _, t := range []*time.Time{&s.Created, &s.Expires, &s.LastSeen} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	return s
}

func (s sessionSuite) testRoundTrip(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	op := store.Session{Hash: sha256.Sum256([]byte("op")), Kind: "operator", TokenID: strings.Repeat("0", 32),
		Subject: "token:" + strings.Repeat("0", 32), Expires: created.Add(time.Hour)} // zero created and last seen, no data
	for _, want := range []store.Session{newSession("a", "acme"), op} {
		must(t, st.CreateSession(ctx, want))
		got, err := st.Session(ctx, want.Hash)
		if err != nil {
			t.Fatalf("Session: %v", err)
		}
		if !reflect.DeepEqual(got, sessionUTC(want)) {
			t.Errorf("Session returned\n%+v\nwant\n%+v", got, sessionUTC(want))
		}
	}
}

func (s sessionSuite) testCreateErrors(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	ok := newSession("a", "acme")
	must(t, st.CreateSession(ctx, ok))
	dup := newSession("a", "globex")
	wantErr(t, "a second session with the same hash", st.CreateSession(ctx, dup), byok.ErrExists)
	if got, _ := st.Session(ctx, ok.Hash); got.Tenant != "acme" {
		t.Errorf("a refused duplicate changed the session: tenant %q", got.Tenant)
	}
	for name, mod := range map[string]func(*store.Session){
		"zero hash":               func(s *store.Session) { s.Hash = [32]byte{} },
		"unknown kind":            func(s *store.Session) { s.Kind = "service" },
		"tenant admin, no tenant": func(s *store.Session) { s.Tenant = "" },
		"operator with a tenant":  func(s *store.Session) { s.Kind = "operator" },
		"no subject":              func(s *store.Session) { s.Subject = "" },
		"no expiry":               func(s *store.Session) { s.Expires = time.Time{} },
		"too much data":           func(s *store.Session) { s.Data = make([]byte, store.MaxSessionData+1) },
		"time out of range":       func(s *store.Session) { s.Created = store.MaxTime.Add(time.Hour) },
	} {
		bad := newSession("bad "+name, "acme")
		mod(&bad)
		wantErr(t, name, st.CreateSession(ctx, bad), byok.ErrInvalidInput)
		if bad.Hash != ([32]byte{}) {
			if _, err := st.Session(ctx, bad.Hash); !errors.Is(err, byok.ErrNotFound) {
				t.Errorf("%s: the refused session was stored (%v)", name, err)
			}
		}
	}
}

func (s sessionSuite) testUnknown(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	h := sha256.Sum256([]byte("nobody"))
	_, err := st.Session(ctx, h)
	wantErr(t, "Session of an unknown hash", err, byok.ErrNotFound)
	wantErr(t, "TouchSession of an unknown hash", st.TouchSession(ctx, h, created), byok.ErrNotFound)
	wantErr(t, "SetSessionData of an unknown hash", st.SetSessionData(ctx, h, []byte("x")), byok.ErrNotFound)
	if err := st.DeleteSession(ctx, h); err != nil {
		t.Errorf("DeleteSession of an unknown hash (sign-out twice): %v, want nil", err)
	}
}

func (s sessionSuite) testTouch(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	a := newSession("a", "acme")
	must(t, st.CreateSession(ctx, a))
	later := created.Add(time.Minute)
	must(t, st.TouchSession(ctx, a.Hash, later))
	must(t, st.TouchSession(ctx, a.Hash, created)) // never back
	got, err := st.Session(ctx, a.Hash)
	must(t, err)
	if !got.LastSeen.Equal(later) {
		t.Errorf("LastSeen after touches at +1m then +0: %v, want %v", got.LastSeen, later)
	}
	// A session created without LastSeen gets one.
	b := newSession("b", "acme")
	b.LastSeen = time.Time{}
	must(t, st.CreateSession(ctx, b))
	must(t, st.TouchSession(ctx, b.Hash, later))
	if got, _ := st.Session(ctx, b.Hash); !got.LastSeen.Equal(later) {
		t.Errorf("LastSeen of a never-seen session after a touch: %v, want %v", got.LastSeen, later)
	}
}

func (s sessionSuite) testSetData(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	a := newSession("a", "acme")
	must(t, st.CreateSession(ctx, a))
	must(t, st.SetSessionData(ctx, a.Hash, []byte("flash")))
	if got, _ := st.Session(ctx, a.Hash); string(got.Data) != "flash" {
		t.Errorf("Data after SetSessionData: %q", got.Data)
	}
	must(t, st.SetSessionData(ctx, a.Hash, nil))
	if got, _ := st.Session(ctx, a.Hash); got.Data != nil {
		t.Errorf("Data after clearing: %q, want nil", got.Data)
	}
	wantErr(t, "data over the bound", st.SetSessionData(ctx, a.Hash, make([]byte, store.MaxSessionData+1)), byok.ErrInvalidInput)
}

func (s sessionSuite) testDelete(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	a, b := newSession("a", "acme"), newSession("b", "acme")
	must(t, st.CreateSession(ctx, a))
	must(t, st.CreateSession(ctx, b))
	must(t, st.DeleteSession(ctx, a.Hash))
	_, err := st.Session(ctx, a.Hash)
	wantErr(t, "a deleted session", err, byok.ErrNotFound)
	wantErr(t, "touching a deleted session", st.TouchSession(ctx, a.Hash, created.Add(time.Second)), byok.ErrNotFound)
	if _, err := st.Session(ctx, b.Hash); err != nil {
		t.Errorf("deleting one session ended another: %v", err)
	}
}

func (s sessionSuite) testDeleteEnded(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	now := created.Add(time.Hour)
	expired := newSession("expired", "acme")
	expired.Expires = now // not after now: ended
	idle := newSession("idle", "acme")
	idle.LastSeen = now.Add(-31 * time.Minute)
	neverSeen := newSession("never seen", "acme") // idle since its creation
	neverSeen.LastSeen, neverSeen.Created = time.Time{}, now.Add(-40*time.Minute)
	live := newSession("live", "acme")
	live.LastSeen = now.Add(-time.Minute)
	for _, x := range []store.Session{expired, idle, neverSeen, live} {
		must(t, st.CreateSession(ctx, x))
	}
	// Without an idle cutoff only the expired one goes.
	n, err := st.DeleteEndedSessions(ctx, now, time.Time{})
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteEndedSessions without idle cutoff deleted %d, want 1", n)
	}
	if _, err := st.Session(ctx, idle.Hash); err != nil {
		t.Errorf("an idle session went without an idle cutoff: %v", err)
	}
	n, err = st.DeleteEndedSessions(ctx, now, now.Add(-30*time.Minute))
	must(t, err)
	if n != 2 {
		t.Errorf("DeleteEndedSessions with a 30m idle cutoff deleted %d, want 2", n)
	}
	for _, gone := range []store.Session{expired, idle, neverSeen} {
		if _, err := st.Session(ctx, gone.Hash); !errors.Is(err, byok.ErrNotFound) {
			t.Errorf("ended session %s is still there (%v)", gone.Subject, err)
		}
	}
	if _, err := st.Session(ctx, live.Hash); err != nil {
		t.Errorf("a live session was deleted: %v", err)
	}
}

// testConcurrentUse: many sessions created, touched and deleted at once
// (as replicas do) each end as their own calls left them.
func (s sessionSuite) testConcurrentUse(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			x := newSession(strings.Repeat("x", i+1), "acme")
			for _, err := range []error{st.CreateSession(ctx, x), st.TouchSession(ctx, x.Hash, created.Add(time.Minute)),
				st.SetSessionData(ctx, x.Hash, []byte{byte(i)})} {
				if err != nil {
					errs <- err
				}
			}
			if i%2 == 0 {
				if err := st.DeleteSession(ctx, x.Hash); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range 16 {
		got, err := st.Session(ctx, sha256.Sum256([]byte(strings.Repeat("x", i+1))))
		switch {
		case i%2 == 0 && !errors.Is(err, byok.ErrNotFound):
			t.Errorf("session %d was deleted but reads %v", i, err)
		case i%2 == 1 && (err != nil || len(got.Data) != 1 || got.Data[0] != byte(i)):
			t.Errorf("session %d: %v, data %v", i, err, got.Data)
		}
	}
}

// testErrorsHoldNoSecret: no error quotes a session's hash (in hex or
// base64) or its data.
func (s sessionSuite) testErrorsHoldNoSecret(t *testing.T) {
	st, ctx := s.store(t), t.Context()
	a := newSession("a", "acme")
	a.Data = []byte("SEALED-DATA")
	must(t, st.CreateSession(ctx, a))
	h := sha256.Sum256([]byte("gone"))
	_, errRead := st.Session(ctx, h)
	big := make([]byte, store.MaxSessionData+1)
	copy(big, "SEALED-DATA")
	for _, err := range []error{st.CreateSession(ctx, a), errRead, st.TouchSession(ctx, h, created),
		st.SetSessionData(ctx, h, []byte("SEALED-DATA")), st.SetSessionData(ctx, a.Hash, big)} {
		if err == nil {
			t.Fatal("a call that must fail succeeded")
		}
		for _, secret := range []string{hex.EncodeToString(a.Hash[:]), hex.EncodeToString(h[:]),
			base64.StdEncoding.EncodeToString(a.Hash[:]), base64.StdEncoding.EncodeToString(h[:]), "SEALED-DATA"} {
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(secret)) {
				t.Errorf("error %q quotes a hash or the data", err)
			}
		}
	}
}
