package server

import (
	"testing"
	"time"
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
		time.Sleep(time.Millisecond)
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
