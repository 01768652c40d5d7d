package azurekv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kvemu"
)

// loginDown refuses connections to the Entra login host and sends every
// other request on.
type loginDown struct{ next *http.Client }

func (l loginDown) Do(req *http.Request) (*http.Response, error) {
	if req.URL.Hostname() == kvemu.LoginHost {
		refused := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:1")
		}}}
		return refused.Do(req)
	}
	return l.next.Do(req)
}

// TestClassifyAgainstKvemu drives each failure through the provider and the
// official SDK against kvemu and checks the class and reason, and that no
// secret or token is in the error or the logs.
func TestClassifyAgainstKvemu(t *testing.T) {
	type result struct {
		op  string
		err error
	}
	wrapWith := func(p *Provider, key string) result {
		_, err := p.Wrap(bg, key, []byte("0123456789abcdef0123456789abcdef"))
		return result{"wrap", err}
	}
	cmk := contoso + "/keys/cmk"
	tests := []struct {
		name   string
		run    func(t *testing.T, e *env, cfg *Config) result
		class  kms.Class
		reason kms.Reason
	}{
		{"role removed", func(t *testing.T, e *env, cfg *Config) result {
			for _, a := range must(e.emu.RoleAssignments("contoso")) {
				must(0, e.emu.RevokeRole("contoso", a.ID))
			}
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Authoritative, kms.ReasonDenied},
		{"consent withdrawn", func(t *testing.T, e *env, cfg *Config) result {
			oid := must(e.emu.Consent(e.customer, e.platform.ClientID))
			e.grant(t, "contoso", oid, kvemu.RoleAssignment{Role: "Key Vault Crypto User"})
			must(0, e.emu.RevokeConsent(e.customer, e.platform.ClientID))
			cfg.Credential = PlatformApp{ClientID: e.platform.ClientID, Secret: e.platSec}
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Authoritative, kms.ReasonUnauthenticated},
		{"wrong secret", func(t *testing.T, e *env, cfg *Config) result {
			cfg.Credential = ClientSecret{ClientID: e.app.ClientID, Secret: "wrong-secret-value"}
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Authoritative, kms.ReasonUnauthenticated},
		{"vault of another tenant", func(t *testing.T, e *env, cfg *Config) result {
			cfg.TenantID = must(e.emu.CreateTenant(kvemu.Tenant{Name: "fabrikam"})).ID
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Authoritative, kms.ReasonUnauthenticated},
		{"firewall", func(t *testing.T, e *env, cfg *Config) result {
			must(0, e.emu.SetNetwork("contoso", kvemu.NetworkRules{DefaultAction: "Deny"}))
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Authoritative, kms.ReasonDenied},
		{"key disabled", func(t *testing.T, e *env, cfg *Config) result {
			p := e.provider(t, *cfg)
			w := must(p.Wrap(bg, cmk, []byte("share")))
			must(0, e.emu.DisableKey("contoso", "cmk"))
			_, err := p.Unwrap(bg, w)
			return result{"unwrap", err}
		}, kms.Authoritative, kms.ReasonDisabled},
		{"key deleted", func(t *testing.T, e *env, cfg *Config) result {
			p := e.provider(t, *cfg)
			w := must(p.Wrap(bg, cmk, []byte("share")))
			must(0, e.emu.DeleteKey("contoso", "cmk"))
			_, err := p.Unwrap(bg, w)
			return result{"unwrap", err}
		}, kms.Authoritative, kms.ReasonNotFound},
		{"version deleted", func(t *testing.T, e *env, cfg *Config) result {
			_, err := e.provider(t, *cfg).Describe(bg, cmk+"/"+strings.Repeat("1", 32))
			return result{"describe", err}
		}, kms.Authoritative, kms.ReasonNotFound},
		{"expired, wrap", func(t *testing.T, e *env, cfg *Config) result {
			exp := time.Now().Add(-time.Minute)
			must(0, e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{Expires: &exp}))
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Authoritative, kms.ReasonExpired},
		{"not yet valid, wrap", func(t *testing.T, e *env, cfg *Config) result {
			nbf := time.Now().Add(time.Hour)
			must(0, e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{NotBefore: &nbf}))
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Authoritative, kms.ReasonNotYetValid},
		{"operation not in key_ops", func(t *testing.T, e *env, cfg *Config) result {
			must(e.emu.CreateKey("contoso", "signonly", kvemu.KeySpec{Ops: []string{"sign", "verify"}}))
			return wrapWith(e.provider(t, *cfg), contoso+"/keys/signonly")
		}, kms.Authoritative, kms.ReasonOpForbidden},

		{"500", func(t *testing.T, e *env, cfg *Config) result {
			p := e.provider(t, *cfg)
			must(p.Describe(bg, cmk)) // authenticate first: faults apply after it
			must(0, e.emu.InjectFault("contoso", kvemu.Fault{Status: 500}))
			return wrapWith(p, cmk)
		}, kms.Transient, kms.ReasonUnavailable},
		{"503", func(t *testing.T, e *env, cfg *Config) result {
			p := e.provider(t, *cfg)
			must(p.Describe(bg, cmk))
			must(0, e.emu.InjectFault("contoso", kvemu.Fault{Status: 503}))
			return wrapWith(p, cmk)
		}, kms.Transient, kms.ReasonUnavailable},
		{"connection reset", func(t *testing.T, e *env, cfg *Config) result {
			p := e.provider(t, *cfg)
			must(p.Describe(bg, cmk))
			must(0, e.emu.InjectFault("contoso", kvemu.Fault{Reset: true}))
			return wrapWith(p, cmk)
		}, kms.Transient, kms.ReasonUnavailable},
		{"vault offline", func(t *testing.T, e *env, cfg *Config) result {
			must(0, e.emu.SetOffline("contoso", true))
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Transient, kms.ReasonUnavailable},
		{"throttled", func(t *testing.T, e *env, cfg *Config) result {
			p := e.provider(t, *cfg)
			must(p.Describe(bg, cmk))
			must(0, e.emu.SetThrottle("contoso", kvemu.Throttle{Mode: kvemu.ThrottleCustom, Rate: 0.001, Burst: 1, RetryAfter: 30 * time.Second}))
			must(p.Describe(bg, cmk))
			return wrapWith(p, cmk)
		}, kms.Transient, kms.ReasonThrottled},
		{"timeout", func(t *testing.T, e *env, cfg *Config) result {
			must(0, e.emu.SetLatency("contoso", time.Minute, 0))
			cfg.Timeout = 50 * time.Millisecond
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Transient, kms.ReasonTimeout},
		{"token endpoint unreachable", func(t *testing.T, e *env, cfg *Config) result {
			cfg.Transport = loginDown{next: e.emu.HTTPClient()}
			return wrapWith(e.provider(t, *cfg), cmk)
		}, kms.Transient, kms.ReasonUnavailable},

		{"malformed key id", func(t *testing.T, e *env, cfg *Config) result {
			return wrapWith(e.provider(t, *cfg), "https://contoso.vault.azure.net/keys/a_b")
		}, kms.Invalid, kms.ReasonBadRequest},
		{"bad ciphertext", func(t *testing.T, e *env, cfg *Config) result {
			p := e.provider(t, *cfg)
			w := must(p.Wrap(bg, cmk, []byte("share")))
			w.Ciphertext[10] ^= 1
			_, err := p.Unwrap(bg, w)
			return result{"unwrap", err}
		}, kms.Invalid, kms.ReasonUnwrapFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rec := &recorder{next: e.emu.HTTPClient()}
			cfg := e.config(cmk)
			cfg.Transport = rec
			r := tc.run(t, e, &cfg)
			if r.err == nil {
				t.Fatal("succeeded")
			}
			var ke *kms.Error
			if !errors.As(r.err, &ke) {
				t.Fatalf("error %v is not a *kms.Error", r.err)
			}
			if ke.Class != tc.class || ke.Reason != tc.reason || ke.Op != r.op {
				t.Errorf("got %s %s %s, want %s %s %s: %v", ke.Op, ke.Class, ke.Reason, r.op, tc.class, tc.reason, r.err)
			}
			if tc.reason == kms.ReasonThrottled && ke.RetryAfter != 30*time.Second {
				t.Errorf("RetryAfter = %v, want the vault's 30s", ke.RetryAfter)
			}
			secrets := secretsSeen{values: []string{e.secret, e.platSec, "wrong-secret-value"}, rec: rec}
			leakCheck(t, "the error", r.err.Error(), secrets.all())
			leakCheck(t, "the logs", e.logs.String(), secrets.all())
			if !strings.Contains(e.logs.String(), "azurekv: vault call failed") && tc.reason != kms.ReasonBadRequest && tc.reason != kms.ReasonUnwrapFailed {
				t.Errorf("no warning logged for the failure; logs:\n%s", e.logs.String())
			}
		})
	}
}

// TestUnwrapAfterExpiry: Key Vault refuses wrapping with an expired key but
// still unwraps, so existing shares stay readable.
func TestUnwrapAfterExpiry(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config(contoso+"/keys/cmk"))
	w := must(p.Wrap(bg, contoso+"/keys/cmk", []byte("share")))
	exp := time.Now().Add(-time.Minute)
	must(0, e.emu.UpdateKey("contoso", "cmk", "", kvemu.KeyUpdate{Expires: &exp}))
	if got, err := p.Unwrap(bg, w); err != nil || string(got) != "share" {
		t.Fatalf("Unwrap after expiry: %q, %v", got, err)
	}
}

// TestForeignTenantSDKText: a vault whose challenge names another tenant
// than the credential's makes azidentity refuse the token with the text
// that isForeignTenant matches (the SDK has no type for it), for each kind
// of azidentity credential byok builds; Classify makes it authoritative
// and says so. If a new SDK version words the refusal otherwise, this test
// fails: update foreignTenantText and its comment.
func TestForeignTenantSDKText(t *testing.T) {
	e := newEnv(t)
	cmk := contoso + "/keys/cmk"
	other := must(e.emu.CreateTenant(kvemu.Tenant{Name: "fabrikam"})).ID
	cert := must(GenerateCertificate(other, 30*24*time.Hour))
	for _, cred := range []Credential{
		ClientSecret{ClientID: e.app.ClientID, Secret: e.secret},
		ClientCertificate{ClientID: e.app.ClientID, Certificates: CertificateSet{Current: cert}},
		PlatformApp{ClientID: e.platform.ClientID, Secret: e.platSec},
	} {
		t.Run(cred.Kind(), func(t *testing.T) {
			cfg := e.config(cmk)
			cfg.TenantID, cfg.Credential = other, cred
			_, err := e.provider(t, cfg).Wrap(bg, cmk, make([]byte, 32))
			var ce *callError
			if !errors.As(err, &ce) || ce.err == nil {
				t.Fatalf("Wrap with a credential of tenant %s on a vault of tenant %s: %v; want the SDK's refusal classified (if the SDK words it otherwise now, update foreignTenantText)", other, e.customer, err)
			}
			sdk := ce.err.Error()
			if !isForeignTenant(ce.err) || !strings.Contains(sdk, fmt.Sprintf("tenant %q", e.customer)) {
				t.Fatalf("azidentity's refusal reads %q: it no longer contains %q and the vault's tenant; update foreignTenantText", sdk, foreignTenantText)
			}
			if kms.ClassOf(err) != kms.Authoritative || kms.ReasonOf(err) != kms.ReasonUnauthenticated ||
				!strings.Contains(err.Error(), "the vault belongs to another tenant than the configured one") {
				t.Errorf("Classify: %v; want authoritative authentication-failed, the vault of another tenant", err)
			}
		})
	}
	// Any other error is not taken for it.
	for _, err := range []error{errors.New("connection refused"), context.DeadlineExceeded, errNoValidCertificate} {
		if isForeignTenant(err) {
			t.Errorf("isForeignTenant(%v) = true", err)
		}
	}
}
