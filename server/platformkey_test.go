package server

import (
	"context"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
)

// TestPlatformRekeyRoute rotates the platform root key, starts the
// platform re-key through the API and reads its progress until nothing is
// left under the old version, which the inventory then shows safe to
// retire.
func TestPlatformRekeyRoute(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "acme")
	e.tenant(t, "globex")
	var before platformRekeyView
	e.do(t, "GET", "/v1/platform-key/rekey", e.operator, nil).decode(t, &before)
	if before.Run != nil || before.Remaining != 0 || before.Current != "fake:prk/v1" {
		t.Fatalf("before any rotation: %+v", before)
	}
	v2 := e.platform.Rotate("fake:prk")
	r := e.do(t, "POST", "/v1/platform-key/rekey", e.operator, nil)
	if r.status != 202 {
		t.Fatalf("POST rekey = %d %s", r.status, r.body)
	}
	var started platformRekeyView
	r.decode(t, &started)
	if started.Run == nil || started.Run.Target != v2 || started.Run.Total != 4 || started.Current != v2 {
		t.Fatalf("started: %+v", started)
	}
	var st platformRekeyView
	for {
		e.do(t, "GET", "/v1/platform-key/rekey", e.operator, nil).decode(t, &st)
		if st.Run.State != "running" {
			break
		}
		runtime.Gosched() // the run goes on in its goroutine
	}
	if st.Run.State != "done" || st.Run.Done != 4 || st.Remaining != 0 || st.Run.ID != started.Run.ID {
		t.Fatalf("after the run: %+v %+v", st, st.Run)
	}
	var inv inventoryView
	e.do(t, "GET", "/v1/platform-key/inventory", e.operator, nil).decode(t, &inv)
	for _, v := range inv.Versions {
		if v.KeyID == v2 && (!v.Current || v.Shares != 4) {
			t.Fatalf("inventory: %+v", inv)
		}
	}
	if r := e.do(t, "POST", "/v1/platform-key/rekey", "", nil); r.status != 401 {
		t.Fatalf("POST rekey without a token = %d", r.status)
	}
	if r := e.do(t, "POST", "/v1/platform-key/rekey", e.operator, `{"x":1}`); r.status != 400 {
		t.Fatalf("POST rekey with a body = %d %s", r.status, r.body)
	}
}

// expiringKey is a platform key provider whose current version expires at
// a given time.
type expiringKey struct {
	kms.Provider
	expires time.Time
}

func (k expiringKey) Describe(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	info, err := k.Provider.Describe(ctx, keyID)
	info.Expires = k.expires
	return info, err
}

// TestReadyzRefusesExpiredPlatformKey: /readyz keeps checking the platform
// root key, and an expired current version makes the replica not ready,
// with the fix.
func TestReadyzRefusesExpiredPlatformKey(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		expires time.Time
		status  int
		want    string
	}{
		{e.clock.Now().Add(time.Hour), 200, `"platform_key":"ok"`},
		{e.clock.Now().Add(-time.Minute), 503, "expired at"},
	} {
		h, err := New(Config{Lifecycle: e.lc, Store: e.db, Audit: e.log, PlatformKMS: expiringKey{e.platform, tc.expires},
			PlatformKeyID: "fake:prk", Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("readyz with the key expiring at %v = %d %s, want %d and %q", tc.expires, rec.Code, rec.Body, tc.status, tc.want)
		}
	}
}
