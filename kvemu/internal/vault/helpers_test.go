package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	tenantA = "11111111-1111-1111-1111-111111111111"
	tenantB = "22222222-2222-2222-2222-222222222222"
	officer = "00000000-0000-0000-0000-00000000000a"
	vaultAz = "https://vault.azure.net"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeVerifier accepts tokens "tenant|oid|aud|lifetime-seconds" issued at
// the clock's time; "bad" fails verification.
type fakeVerifier struct{ clk *clock }

func (f fakeVerifier) VerifyAccessToken(raw string) (Claims, error) {
	parts := strings.Split(raw, "|")
	if len(parts) != 4 {
		return Claims{}, errors.New("signature does not verify")
	}
	secs, err := strconv.Atoi(parts[3])
	if err != nil {
		return Claims{}, errors.New("malformed lifetime")
	}
	now := f.clk.Now()
	return Claims{
		Audience: parts[2], Issuer: "https://sts.windows.net/" + parts[0] + "/", TenantID: parts[0],
		ObjectID: parts[1], AppID: "app-" + parts[1], NotBefore: now.Add(-time.Minute), ExpiresAt: now.Add(time.Duration(secs) * time.Second),
	}, nil
}

func token(tenant, oid, aud string) string { return fmt.Sprintf("%s|%s|%s|3600", tenant, oid, aud) }

// fixture is a Service with vault "contoso" in tenantA where officer is
// Key Vault Administrator.
type fixture struct {
	t   testing.TB
	s   *Service
	clk *clock
	tok string
}

func newFixture(t testing.TB, cfg VaultConfig) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := New(Options{Verifier: fakeVerifier{clk}, Now: clk.Now})
	if cfg.Name == "" {
		cfg.Name = "contoso"
	}
	if cfg.TenantID == "" {
		cfg.TenantID = tenantA
	}
	if err := s.CreateVault(cfg); err != nil {
		t.Fatalf("CreateVault: %v", err)
	}
	if !cfg.AccessPolicies {
		if _, err := s.AssignRole(cfg.Name, RoleAssignment{PrincipalID: officer, Role: "Key Vault Administrator"}); err != nil {
			t.Fatalf("AssignRole: %v", err)
		}
	}
	aud := vaultAz
	if cfg.ManagedHSM {
		aud = "https://managedhsm.azure.net"
	}
	return &fixture{t: t, s: s, clk: clk, tok: token(tenantA, officer, aud)}
}

// do sends a request as f's officer to https://contoso.vault.azure.net.
func (f *fixture) do(method, path, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.doAs(f.tok, "contoso.vault.azure.net", method, path, body)
}

func (f *fixture) doAs(tok, host, method, path, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	if !strings.Contains(path, "api-version") {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "api-version=2025-07-01"
	}
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, "https://"+host+path, nil)
	} else {
		r = httptest.NewRequest(method, "https://"+host+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	r.RemoteAddr = "192.0.2.10:50000"
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	f.s.ServeHTTP(w, r)
	return w
}

// expect asserts a response's status and, for errors, code and inner code,
// and decodes a success body into out (if not nil).
func expect(t testing.TB, w *httptest.ResponseRecorder, status int, code, inner string, out any) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if status >= 400 {
		var e errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("error body %q: %v", w.Body, err)
		}
		gotInner := ""
		if e.Error.InnerError != nil {
			gotInner = e.Error.InnerError.Code
		}
		if e.Error.Code != code || gotInner != inner || e.Error.Message == "" {
			t.Fatalf("error %s/%s %q, want %s/%s", e.Error.Code, gotInner, e.Error.Message, code, inner)
		}
		return
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("body %q: %v", w.Body, err)
		}
	}
}

// bundle is the part of a KeyBundle the tests read.
type bundle struct {
	Key struct {
		Kid    string   `json:"kid"`
		Kty    string   `json:"kty"`
		KeyOps []string `json:"key_ops"`
		N, E   string
		Crv    string `json:"crv"`
	} `json:"key"`
	Attributes struct {
		Enabled         bool   `json:"enabled"`
		NBF             *int64 `json:"nbf"`
		Exp             *int64 `json:"exp"`
		Created         int64  `json:"created"`
		RecoveryLevel   string `json:"recoveryLevel"`
		RecoverableDays int    `json:"recoverableDays"`
	} `json:"attributes"`
	RecoveryID         string `json:"recoveryId"`
	DeletedDate        int64  `json:"deletedDate"`
	ScheduledPurgeDate int64  `json:"scheduledPurgeDate"`
}

func (f *fixture) createKey(name, body string) bundle {
	f.t.Helper()
	var b bundle
	expect(f.t, f.do("POST", "/keys/"+name+"/create", body), 200, "", "", &b)
	return b
}

func version(kid string) string { return kid[strings.LastIndexByte(kid, '/')+1:] }

// noSleep records latency waits instead of sleeping.
type noSleep struct {
	mu sync.Mutex
	d  []time.Duration
}

func (n *noSleep) sleep(_ context.Context, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.d = append(n.d, d)
}
