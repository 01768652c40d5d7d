package azurekv

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// SignInError is the error of [CheckSignIn]: why the credential could not
// sign in, and the fix. It never holds a secret or a token.
type SignInError struct {
	Credential string // the credential, described without its secret
	Tenant     string
	Reason     string
	Remedy     string
	Err        error
}

func (e *SignInError) Error() string {
	return fmt.Sprintf("azurekv: %s cannot sign in to tenant %s: %s; fix: %s", e.Credential, e.Tenant, e.Reason, e.Remedy)
}

// Unwrap returns the SDK's error.
func (e *SignInError) Unwrap() error { return e.Err }

// CheckSignIn gets a Key Vault token for cfg.Credential in cfg.TenantID
// (cfg.KeyID may be empty: it only picks the sovereign cloud). byok serve
// runs it at start for the platform's multi-tenant app in the platform's
// own directory, so a federated credential that matches nothing, a
// managed identity not assigned to the host, a missing token file or a
// wrong secret stop the start with their remedy, as Test configuration
// words them. A failure is a [*SignInError].
func CheckSignIn(ctx context.Context, cfg Config) error {
	if cfg.KeyID == "" {
		cfg.KeyID = "https://signin.vault.azure.net/keys/signin" // any key id of the public cloud; no call goes to it
	}
	if cfg.OwnerTag == "" {
		cfg.OwnerTag = "sign-in-check" // required of shared credentials; no key is used
	}
	p, err := New(cfg)
	if err != nil {
		return &SignInError{Credential: credString(cfg.Credential), Tenant: cfg.TenantID, Reason: err.Error(), Remedy: "correct the credential in the configuration", Err: err}
	}
	t := &tester{cfg: cfg, p: p}
	t.id, _ = ParseKeyID(cfg.KeyID)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	if _, err := p.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{t.vaultScope()}, TenantID: cfg.TenantID}); err != nil {
		reason, remedy := t.explainAuth(err)
		return &SignInError{Credential: cfg.Credential.String(), Tenant: cfg.TenantID, Reason: reason, Remedy: remedy, Err: err}
	}
	return nil
}

func credString(c Credential) string {
	if c == nil {
		return "no credential"
	}
	return c.String()
}
