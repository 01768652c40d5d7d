package azurekv

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/kvemu"
)

func TestConformance(t *testing.T) {
	for _, mode := range []Mode{ModeWrap, ModeEncrypt} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t)
			must(e.emu.CreateKey("contoso", "other", kvemu.KeySpec{Size: 3072}))
			e.grant(t, "contoso", e.app.ObjectID, kvemu.RoleAssignment{Role: "Key Vault Crypto User"})
			cfg := e.config(contoso + "/keys/cmk")
			cfg.Mode = mode
			kmstest.RunConformance(t, kmstest.Harness{
				Provider:         e.provider(t, cfg),
				KeyID:            contoso + "/keys/cmk",
				OtherKeyID:       contoso + "/keys/other",
				UnknownKeyID:     contoso + "/keys/missing",
				UnknownVersionID: contoso + "/keys/cmk/" + strings.Repeat("ab", 16),
				NewVersion: func(t testing.TB) string {
					return must(e.emu.RotateKey("contoso", "cmk")).ID
				},
			})
		})
	}
}

// TestRequestID checks that every vault request carries the caller's
// operation id as x-ms-client-request-id.
func TestRequestID(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{next: e.emu.HTTPClient()}
	cfg := e.config(contoso + "/keys/cmk")
	cfg.Transport = rec
	p := e.provider(t, cfg)
	ctx := kms.WithOperationID(bg, "audit-event-42")
	w := must(p.Wrap(ctx, contoso+"/keys/cmk", []byte("share")))
	must(p.Unwrap(kms.WithOperationID(bg, "audit-event-43"), w))
	must(p.Describe(kms.WithOperationID(bg, "audit-event-44"), contoso+"/keys/cmk"))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var ids []string
	for i, h := range rec.reqs {
		if strings.Contains(rec.urls[i], "contoso.vault.azure.net") {
			ids = append(ids, h.Get("x-ms-client-request-id"))
		}
	}
	// The wrap is sent twice: once for the challenge, once with the token.
	want := []string{"audit-event-42", "audit-event-42", "audit-event-43", "audit-event-44"}
	if !slices.Equal(ids, want) {
		t.Errorf("x-ms-client-request-id of the vault requests = %q, want %q", ids, want)
	}
}

// TestOneTokenPerLifetime counts token requests at the emulator: many
// calls share one token. The refresh after the token's lifetime is not
// tested here: azcore and MSAL decide it on the wall clock, while kvemu's
// fake clock only moves the server side (advancing it makes the vault
// refuse the cached token with 401, which the SDK does not answer with a
// new token).
func TestOneTokenPerLifetime(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config(contoso+"/keys/cmk"))
	const n = 25
	for range n {
		w := must(p.Wrap(bg, contoso+"/keys/cmk", []byte("share")))
		must(p.Unwrap(bg, w))
	}
	if got := e.emu.TokenCount(e.customer, e.app.ClientID); got.Requests != 1 || got.Issued != 1 {
		t.Errorf("%d wraps and unwraps made %d token requests (%d issued), want 1", n, got.Requests, got.Issued)
	}
	if got := e.emu.CallCount("contoso", kvemu.OpUnwrapKey, 200); got != n {
		t.Errorf("%d unwraps reached the vault, want %d", got, n)
	}
}

// TestRetryOn5xx: a 503 is retried and the call succeeds.
func TestRetryOn5xx(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(contoso + "/keys/cmk")
	cfg.MaxRetries = 2
	p := e.provider(t, cfg)
	must(p.Describe(bg, contoso+"/keys/cmk"))
	must(0, e.emu.InjectFault("contoso", kvemu.Fault{Status: 503, Count: 1}))
	if _, err := p.Wrap(bg, contoso+"/keys/cmk", []byte("share")); err != nil {
		t.Fatalf("Wrap after one 503 with retries on: %v", err)
	}
	if got := e.emu.CallCount("contoso", kvemu.OpWrapKey, 503); got != 1 {
		t.Errorf("503 answers = %d, want 1", got)
	}
	if got := e.emu.CallCount("contoso", kvemu.OpWrapKey, 200); got != 1 {
		t.Errorf("successful wraps = %d, want 1 (the retry)", got)
	}
}

// TestRetryAfter: a 429 with Retry-After is retried once the hint has
// passed, and the call succeeds.
func TestRetryAfter(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(contoso + "/keys/cmk")
	cfg.MaxRetries = 2
	// The emulator's throttle refills on its fake clock: advance it by the
	// hint when a 429 goes by, as the real wait passes.
	cfg.Transport = clockOn429{next: e.emu.HTTPClient(), clk: e.clk, by: time.Second}
	p := e.provider(t, cfg)
	must(p.Describe(bg, contoso+"/keys/cmk"))
	must(0, e.emu.SetThrottle("contoso", kvemu.Throttle{Mode: kvemu.ThrottleCustom, Rate: 1, Burst: 1, RetryAfter: time.Second}))
	must(p.Describe(bg, contoso+"/keys/cmk")) // empties the bucket
	if _, err := p.Wrap(bg, contoso+"/keys/cmk", []byte("share")); err != nil {
		t.Fatalf("Wrap after a 429 with Retry-After, retries on: %v", err)
	}
	if got := e.emu.CallCount("contoso", kvemu.OpWrapKey, 429); got != 1 {
		t.Errorf("429 answers = %d, want 1", got)
	}
	if got := e.emu.CallCount("contoso", kvemu.OpWrapKey, 200); got != 1 {
		t.Errorf("successful wraps = %d, want 1", got)
	}
}

type clockOn429 struct {
	next *http.Client
	clk  *clock
	by   time.Duration
}

func (c clockOn429) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		c.clk.Advance(c.by)
	}
	return resp, err
}

// TestDescribe checks the mapping to kms.KeyInfo, the vault's recovery
// settings beside it (describe, RecoveryLevel), and that a versionless id
// follows a new version.
func TestDescribe(t *testing.T) {
	e := newEnv(t)
	nbf, exp := time.Unix(1_700_000_000, 0).UTC(), time.Unix(2_000_000_000, 0).UTC()
	k := must(e.emu.CreateKey("contoso", "hsm", kvemu.KeySpec{Type: "RSA-HSM", Size: 3072, NotBefore: nbf, Expires: exp}))
	p := e.provider(t, e.config(contoso+"/keys/hsm"))
	info := must(p.Describe(bg, contoso+"/keys/hsm"))
	want := kms.KeyInfo{KeyID: k.ID, Type: "RSA-HSM", Size: 3072, Ops: k.Ops, Enabled: true, NotBefore: nbf, Expires: exp}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("Describe = %+v\nwant       %+v", info, want)
	}
	d := must(p.describe(bg, contoso+"/keys/hsm"))
	if wantD := (keyDetails{KeyInfo: want, RecoveryLevel: "Recoverable", RecoverableDays: 90}); !reflect.DeepEqual(d, wantD) {
		t.Errorf("describe = %+v\nwant       %+v", d, wantD)
	}
	if lvl := must(p.RecoveryLevel(bg, contoso+"/keys/hsm")); lvl != "Recoverable" {
		t.Errorf("RecoveryLevel = %q, want Recoverable", lvl)
	}
	if c := p.cost(must(ParseKeyID(contoso + "/keys/hsm"))); c != 8 {
		t.Errorf("budget cost of an RSA-HSM 3072 operation = %v, want 8 (500 of 4000 per 10 s)", c)
	}
	next := must(e.emu.RotateKey("contoso", "hsm"))
	if got := must(p.Describe(bg, contoso+"/keys/hsm")).KeyID; got != next.ID {
		t.Errorf("after rotation Describe = %s, want %s", got, next.ID)
	}
	if got := must(p.Describe(bg, k.ID)).KeyID; got != k.ID {
		t.Errorf("Describe of the pinned old version = %s, want %s", got, k.ID)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no credential", func(c *Config) { c.Credential = nil }, "Credential is nil"},
		{"tenant", func(c *Config) { c.TenantID = "contoso" }, "Directory (tenant) ID"},
		{"algorithm", func(c *Config) { c.Algorithm = "RSA1_5" }, "RSA-OAEP-256"},
		{"mode", func(c *Config) { c.Mode = "sign" }, `"encrypt"`},
		{"key id", func(c *Config) { c.KeyID = "contoso/keys/cmk" }, "scheme must be https"},
		{"client id", func(c *Config) { c.Credential = ClientSecret{ClientID: "app", Secret: "x"} }, "Application (client) ID"},
		{"secret and certificate", func(c *Config) {
			c.Credential = PlatformApp{ClientID: e.app.ClientID, Secret: "x", Certificates: &CertificateSet{}}
		}, "give one"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.config(contoso + "/keys/cmk")
			tc.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), e.secret) {
				t.Error("the error shows the secret")
			}
		})
	}
}

// BenchmarkRoundTrip measures a wrap and an unwrap through the provider
// over kvemu (loopback HTTPS, RSA-2048, RSA-OAEP-256).
func BenchmarkRoundTrip(b *testing.B) {
	e := newEnv(b)
	cfg := e.config(contoso + "/keys/cmk")
	cfg.Logger = nil
	p := e.provider(b, cfg)
	share := []byte("0123456789abcdef0123456789abcdef")
	for b.Loop() {
		w, err := p.Wrap(bg, contoso+"/keys/cmk", share)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Unwrap(bg, w); err != nil {
			b.Fatal(err)
		}
	}
}
