package kvemu

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/openbyok/byok/kvemu/internal/entra"
	"github.com/openbyok/byok/kvemu/internal/vault"
)

// controlPrefix is the path prefix of the HTTP control API, served on the
// loopback names (https://localhost:PORT/control/…). docs/kvemu.md lists
// its routes.
const controlPrefix = "/control/"

// maxControlBody bounds a control request body (seeds included).
const maxControlBody = 1 << 20

// errorBody is the error envelope of the control API, shaped like Key
// Vault's.
func errorBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// truncate shortens untrusted input echoed in messages.
func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// errBadRequest marks a malformed control request.
var errBadRequest = errors.New("bad request")

// controlStatus maps a control error to its HTTP status and code; this is
// the one place that does.
func controlStatus(err error) (int, string) {
	switch {
	case errors.Is(err, entra.ErrNotFound), errors.Is(err, vault.ErrNotFound):
		return http.StatusNotFound, "NotFound"
	case errors.Is(err, entra.ErrExists), errors.Is(err, vault.ErrConflict):
		return http.StatusConflict, "Conflict"
	case errors.Is(err, entra.ErrInvalid), errors.Is(err, vault.ErrInvalid), errors.Is(err, errBadRequest), errors.Is(err, errSeed):
		return http.StatusBadRequest, "BadParameter"
	default:
		return http.StatusInternalServerError, "InternalError"
	}
}

// handler is a control endpoint: it returns the status and body to answer.
type handler func(r *http.Request) (int, any, error)

// controlHandler serves the HTTP control API. Every successful request
// that changes state saves it when the emulator has a state directory.
func (e *Emulator) controlHandler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h handler) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
			status, body, err := h(r)
			if err != nil {
				st, code := controlStatus(err)
				writeJSON(w, st, errorBody(code, err.Error()))
				return
			}
			if r.Method != http.MethodGet && e.opts.StateDir != "" {
				if err := e.Save(); err != nil {
					e.log.Error("kvemu: save state", "err", err)
				}
			}
			if body == nil {
				w.WriteHeader(status)
				return
			}
			writeJSON(w, status, body)
		})
	}
	const p = "/control"
	ok := func(v any, err error) (int, any, error) { return http.StatusOK, v, err }
	noContent := func(err error) (int, any, error) { return http.StatusNoContent, nil, err }

	// Entra.
	handle("GET "+p+"/tenants", func(*http.Request) (int, any, error) { return ok(e.Tenants(), nil) })
	handle("POST "+p+"/tenants", func(r *http.Request) (int, any, error) {
		var t Tenant
		if err := decode(r, &t); err != nil {
			return 0, nil, err
		}
		return ok(e.CreateTenant(t))
	})
	handle("POST "+p+"/apps", func(r *http.Request) (int, any, error) {
		var a App
		if err := decode(r, &a); err != nil {
			return 0, nil, err
		}
		return ok(e.CreateApp(a))
	})
	handle("GET "+p+"/apps/{client}", func(r *http.Request) (int, any, error) {
		return ok(e.entra.App(r.PathValue("client")))
	})
	handle("POST "+p+"/apps/{client}/secrets", func(r *http.Request) (int, any, error) {
		var s Secret
		if err := decode(r, &s); err != nil {
			return 0, nil, err
		}
		return ok(e.AddSecret(r.PathValue("client"), s))
	})
	handle("DELETE "+p+"/apps/{client}/secrets/{id}", func(r *http.Request) (int, any, error) {
		return noContent(e.RemoveSecret(r.PathValue("client"), r.PathValue("id")))
	})
	handle("POST "+p+"/apps/{client}/certificates", func(r *http.Request) (int, any, error) {
		var body struct {
			PEM string `json:"pem"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		der, err := certificateDER(body.PEM)
		if err != nil {
			return 0, nil, err
		}
		return ok(e.AddCertificate(r.PathValue("client"), der))
	})
	handle("DELETE "+p+"/apps/{client}/certificates/{thumbprint}", func(r *http.Request) (int, any, error) {
		return noContent(e.RemoveCertificate(r.PathValue("client"), r.PathValue("thumbprint")))
	})
	handle("POST "+p+"/apps/{client}/federated-credentials", func(r *http.Request) (int, any, error) {
		var body struct {
			FederatedCredential
			Identity string `json:"identity"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		if body.Identity == "" {
			return noContent(e.AddFederatedCredential(r.PathValue("client"), body.FederatedCredential))
		}
		if body.Issuer != "" || body.Subject != "" {
			return 0, nil, fmt.Errorf("%w: give identity, or issuer and subject, not both", errBadRequest)
		}
		return ok(e.TrustManagedIdentity(r.PathValue("client"), body.Identity))
	})
	handle("PUT "+p+"/tenants/{tenant}/consents/{client}", func(r *http.Request) (int, any, error) {
		oid, err := e.Consent(r.PathValue("tenant"), r.PathValue("client"))
		return ok(map[string]string{"objectId": oid}, err)
	})
	handle("GET "+p+"/tenants/{tenant}/consents/{client}", func(r *http.Request) (int, any, error) {
		oid, err := e.ServicePrincipal(r.PathValue("tenant"), r.PathValue("client"))
		return ok(map[string]string{"objectId": oid}, err)
	})
	handle("DELETE "+p+"/tenants/{tenant}/consents/{client}", func(r *http.Request) (int, any, error) {
		return noContent(e.RevokeConsent(r.PathValue("tenant"), r.PathValue("client")))
	})
	handle("GET "+p+"/identities", func(*http.Request) (int, any, error) { return ok(e.entra.ManagedIdentities(), nil) })
	handle("POST "+p+"/identities", func(r *http.Request) (int, any, error) {
		var mi ManagedIdentity
		if err := decode(r, &mi); err != nil {
			return 0, nil, err
		}
		return ok(e.CreateManagedIdentity(mi))
	})
	handle("GET "+p+"/identities/{id}", func(r *http.Request) (int, any, error) {
		mi, err := e.ManagedIdentity(r.PathValue("id"))
		return ok(identityView{mi, EntraIssuer(mi.TenantID)}, err)
	})
	handle("DELETE "+p+"/identities/{client}", func(r *http.Request) (int, any, error) {
		return noContent(e.DeleteManagedIdentity(r.PathValue("client")))
	})
	handle("POST "+p+"/issuers", func(r *http.Request) (int, any, error) {
		var body struct {
			Issuer string `json:"issuer"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		return noContent(e.AddFederatedIssuer(body.Issuer))
	})
	handle("POST "+p+"/issuers/token", func(r *http.Request) (int, any, error) {
		var body struct {
			Issuer, Subject, Audience string
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		tok, err := e.FederatedToken(body.Issuer, body.Subject, body.Audience)
		return ok(map[string]string{"token": tok}, err)
	})
	handle("GET "+p+"/token-counts", func(*http.Request) (int, any, error) { return ok(e.TokenCounts(), nil) })
	handle("DELETE "+p+"/token-counts", func(*http.Request) (int, any, error) {
		e.ResetTokenCounts()
		return noContent(nil)
	})

	// Vaults, keys, roles, faults and counters.
	handle("GET "+p+"/vaults", func(*http.Request) (int, any, error) { return ok(e.Vaults(), nil) })
	handle("POST "+p+"/vaults", func(r *http.Request) (int, any, error) {
		var c VaultConfig
		if err := decode(r, &c); err != nil {
			return 0, nil, err
		}
		if err := e.CreateVault(c); err != nil {
			return 0, nil, err
		}
		return ok(e.Vault(c.Name))
	})
	handle("GET "+p+"/vaults/{vault}", func(r *http.Request) (int, any, error) { return ok(e.Vault(r.PathValue("vault"))) })
	handle("DELETE "+p+"/vaults/{vault}", func(r *http.Request) (int, any, error) {
		return noContent(e.DeleteVault(r.PathValue("vault")))
	})
	handle("PUT "+p+"/vaults/{vault}/network", func(r *http.Request) (int, any, error) {
		var n NetworkRules
		if err := decode(r, &n); err != nil {
			return 0, nil, err
		}
		return noContent(e.SetNetwork(r.PathValue("vault"), n))
	})
	handle("PUT "+p+"/vaults/{vault}/offline", func(r *http.Request) (int, any, error) {
		var body struct {
			Offline bool `json:"offline"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		return noContent(e.SetOffline(r.PathValue("vault"), body.Offline))
	})
	handle("PUT "+p+"/vaults/{vault}/latency", func(r *http.Request) (int, any, error) {
		var body struct {
			Fixed, Jitter duration
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		return noContent(e.SetLatency(r.PathValue("vault"), time.Duration(body.Fixed), time.Duration(body.Jitter)))
	})
	handle("PUT "+p+"/vaults/{vault}/throttle", func(r *http.Request) (int, any, error) {
		var body throttleJSON
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		t, err := body.throttle()
		if err != nil {
			return 0, nil, err
		}
		return noContent(e.SetThrottle(r.PathValue("vault"), t))
	})
	handle("POST "+p+"/vaults/{vault}/faults", func(r *http.Request) (int, any, error) {
		var f Fault
		if err := decode(r, &f); err != nil {
			return 0, nil, err
		}
		return noContent(e.InjectFault(r.PathValue("vault"), f))
	})
	handle("DELETE "+p+"/vaults/{vault}/faults", func(r *http.Request) (int, any, error) {
		return noContent(e.ClearFaults(r.PathValue("vault")))
	})
	handle("POST "+p+"/vaults/{vault}/keys/{key}", func(r *http.Request) (int, any, error) {
		var body struct {
			KeySpec
			// PEM, when set, is a PKCS#8 private key to import.
			PEM string `json:"pem"`
			HSM bool   `json:"hsm"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		if body.PEM == "" {
			return ok(e.CreateKey(r.PathValue("vault"), r.PathValue("key"), body.KeySpec))
		}
		priv, err := privateKey(body.PEM)
		if err != nil {
			return 0, nil, err
		}
		return ok(e.ImportKey(r.PathValue("vault"), r.PathValue("key"), priv, body.HSM, body.KeySpec))
	})
	handle("GET "+p+"/vaults/{vault}/keys/{key}", func(r *http.Request) (int, any, error) {
		return ok(e.KeyVersions(r.PathValue("vault"), r.PathValue("key")))
	})
	handle("PATCH "+p+"/vaults/{vault}/keys/{key}", func(r *http.Request) (int, any, error) {
		var u KeyUpdate
		if err := decode(r, &u); err != nil {
			return 0, nil, err
		}
		return noContent(e.UpdateKey(r.PathValue("vault"), r.PathValue("key"), r.URL.Query().Get("version"), u))
	})
	handle("DELETE "+p+"/vaults/{vault}/keys/{key}", func(r *http.Request) (int, any, error) {
		return noContent(e.DeleteKey(r.PathValue("vault"), r.PathValue("key")))
	})
	keyAction := map[string]func(vault, key string) error{
		"disable": e.DisableKey, "enable": e.EnableKey, "recover": e.RecoverKey, "purge": e.PurgeKey,
	}
	handle("POST "+p+"/vaults/{vault}/keys/{key}/{action}", func(r *http.Request) (int, any, error) {
		if r.PathValue("action") == "rotate" {
			return ok(e.RotateKey(r.PathValue("vault"), r.PathValue("key")))
		}
		f := keyAction[r.PathValue("action")]
		if f == nil {
			return 0, nil, fmt.Errorf("%w: unknown key action %q; use disable, enable, rotate, recover or purge", errBadRequest, truncate(r.PathValue("action")))
		}
		return noContent(f(r.PathValue("vault"), r.PathValue("key")))
	})
	handle("GET "+p+"/vaults/{vault}/roles", func(r *http.Request) (int, any, error) {
		return ok(e.RoleAssignments(r.PathValue("vault")))
	})
	handle("POST "+p+"/vaults/{vault}/roles", func(r *http.Request) (int, any, error) {
		var a RoleAssignment
		if err := decode(r, &a); err != nil {
			return 0, nil, err
		}
		id, err := e.AssignRole(r.PathValue("vault"), a)
		return ok(map[string]string{"id": id}, err)
	})
	handle("POST "+p+"/vaults/{vault}/roles/{id}/revoke", func(r *http.Request) (int, any, error) {
		if err := e.RevokeRole(r.PathValue("vault"), r.PathValue("id")); err != nil {
			return 0, nil, err
		}
		return ok(e.roleChange(r.PathValue("vault"), r.PathValue("id"), "revoked: the principal's calls to the vault now fail with 403 Forbidden"))
	})
	handle("POST "+p+"/vaults/{vault}/roles/{id}/restore", func(r *http.Request) (int, any, error) {
		if err := e.RestoreRole(r.PathValue("vault"), r.PathValue("id")); err != nil {
			return 0, nil, err
		}
		return ok(e.roleChange(r.PathValue("vault"), r.PathValue("id"), "restored: the principal's calls to the vault succeed again"))
	})
	handle("DELETE "+p+"/vaults/{vault}/roles/{id}", func(r *http.Request) (int, any, error) {
		return noContent(e.RemoveRole(r.PathValue("vault"), r.PathValue("id")))
	})
	handle("PUT "+p+"/vaults/{vault}/access-policies/{principal}", func(r *http.Request) (int, any, error) {
		var body struct {
			Keys []string `json:"keys"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		return noContent(e.SetAccessPolicy(r.PathValue("vault"), r.PathValue("principal"), body.Keys...))
	})
	handle("GET "+p+"/calls", func(*http.Request) (int, any, error) { return ok(e.Calls(), nil) })
	handle("DELETE "+p+"/calls", func(*http.Request) (int, any, error) {
		e.ResetCalls()
		return noContent(nil)
	})

	// Whole-state operations.
	handle("POST "+p+"/seed", func(r *http.Request) (int, any, error) {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: read seed: %v", errBadRequest, err)
		}
		seed, err := ParseSeed(data)
		if err != nil {
			return 0, nil, err
		}
		return noContent(e.ApplySeed(seed))
	})
	handle("POST "+p+"/save", func(*http.Request) (int, any, error) {
		if e.opts.StateDir == "" {
			return 0, nil, fmt.Errorf("%w: the emulator keeps its state in memory; start it with --state DIR to save", errBadRequest)
		}
		return noContent(e.Save())
	})
	handle(p+"/", func(r *http.Request) (int, any, error) {
		return http.StatusNotFound, nil, fmt.Errorf("%w: no control route %s %s; see docs/kvemu.md", entra.ErrNotFound, r.Method, truncate(r.URL.Path))
	})
	return mux
}

// decode reads a strict JSON body into v: unknown fields are errors.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body is not the expected JSON: %v", errBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: body has data after the JSON value", errBadRequest)
	}
	return nil
}

// identityView is a managed identity as GET /control/identities/{id}
// answers it: with the issuer a federated credential that trusts it names
// (its subject is objectId).
type identityView struct {
	ManagedIdentity
	Issuer string `json:"issuer"`
}

// duration is a time.Duration written as a Go duration string ("250ms").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"250ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// throttleJSON is the control API's (and the seed's) form of a Throttle.
type throttleJSON struct {
	// Mode is "off", "documented" or "custom".
	Mode       string   `json:"mode" yaml:"mode"`
	Rate       float64  `json:"rate,omitempty" yaml:"rate,omitempty"`
	Burst      int      `json:"burst,omitempty" yaml:"burst,omitempty"`
	RetryAfter duration `json:"retryAfter,omitempty" yaml:"retryAfter,omitempty"`
}

func (t throttleJSON) throttle() (Throttle, error) {
	out := Throttle{Rate: t.Rate, Burst: t.Burst, RetryAfter: time.Duration(t.RetryAfter)}
	switch strings.ToLower(t.Mode) {
	case "off", "":
		out.Mode = ThrottleOff
	case "documented":
		out.Mode = ThrottleDocumented
	case "custom":
		out.Mode = ThrottleCustom
	default:
		return Throttle{}, fmt.Errorf("%w: throttle mode %q; use off, documented or custom", errBadRequest, truncate(t.Mode))
	}
	return out, nil
}

// certificateDER decodes the first CERTIFICATE block of a PEM text.
func certificateDER(text string) ([]byte, error) {
	for rest := []byte(text); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("%w: no PEM CERTIFICATE block found", errBadRequest)
		}
		if b.Type == "CERTIFICATE" {
			return b.Bytes, nil
		}
	}
}

// privateKey decodes a PKCS#8 (or PKCS#1 RSA) PEM private key.
func privateKey(text string) (any, error) {
	b, _ := pem.Decode([]byte(text))
	if b == nil {
		return nil, fmt.Errorf("%w: no PEM block found in the key", errBadRequest)
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: the key is neither PKCS#8 nor PKCS#1 RSA", errBadRequest)
}

// roleChangeView is the answer of a role revoke or restore: a line that
// says what changed (curl prints it), and the assignment as it now is.
type roleChangeView struct {
	Message    string         `json:"message"`
	Vault      string         `json:"vault"`
	Assignment RoleAssignment `json:"assignment"`
}

// roleChange describes role assignment id of vault after a change that
// what describes.
func (e *Emulator) roleChange(vaultName, id, what string) (roleChangeView, error) {
	roles, err := e.RoleAssignments(vaultName)
	if err != nil {
		return roleChangeView{}, err
	}
	for _, a := range roles {
		if a.ID != id {
			continue
		}
		role := a.Role
		if role == "" {
			role = "custom role " + strings.Join(a.DataActions, ", ")
		}
		scope := "vault " + vaultName
		if a.Key != "" {
			scope = "key " + a.Key + " of vault " + vaultName
		}
		return roleChangeView{
			Message: fmt.Sprintf("role assignment %s (%s for principal %s on %s) %s", id, role, a.PrincipalID, scope, what),
			Vault:   vaultName, Assignment: a,
		}, nil
	}
	return roleChangeView{}, fmt.Errorf("%w: role assignment %s of vault %s", vault.ErrNotFound, truncate(id), truncate(vaultName))
}
