package azure

import (
	"context"
	"path"
	"sync"
	"time"

	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/lifecycle"
)

// notOffered returns why the connector does not offer mode (one of the
// platform's identity modes), or "" if it does.
func (c *Connector) notOffered(mode CredentialMode) string {
	switch mode {
	case CredentialManagedIdentity:
		switch {
		case c.ManagedIdentity == nil:
			return "managed-identity is not offered by this platform: its operator has not configured azure.managed_identity"
		case c.HomeTenant == "":
			return "managed-identity is not offered by this platform: its operator has not configured azure.tenant_id, the platform's directory"
		}
	case CredentialWorkloadIdentity:
		if c.Workload == nil {
			return "workload-identity is not offered by this platform: its operator has not configured azure.workload_identity"
		}
	}
	return ""
}

// principalRetry is how long the connector waits before asking the
// identity endpoint again who the managed identity is, after it failed.
const principalRetry = time.Minute

// principalCache remembers who the platform's managed identity is.
type principalCache struct {
	mu     sync.Mutex
	p      azurekv.Principal
	known  bool
	failed time.Time
}

// principal returns the platform's managed identity as Entra ID knows it:
// one token request the first time (the identity endpoint is local to the
// host), then from memory; after a failure, nothing until principalRetry
// has passed.
func (c *Connector) principal(ctx context.Context) (azurekv.Principal, bool) {
	pc := &c.principals
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.known || time.Since(pc.failed) < principalRetry {
		return pc.p, pc.known
	}
	p, err := azurekv.WhoAmI(ctx, azurekv.Config{TenantID: c.HomeTenant, Credential: *c.ManagedIdentity,
		Transport: c.Transport, Timeout: 5 * time.Second, Logger: c.Logger})
	if err != nil {
		pc.failed = time.Now()
		if c.Logger != nil {
			c.Logger.WarnContext(ctx, "azure: the platform's managed identity did not say who it is", "err", err)
		}
		return azurekv.Principal{}, false
	}
	pc.p, pc.known = p, true
	return p, true
}

// PlatformIdentities describes the identities the connector offers: the
// managed identity with its directory, object id (learned from a token, once) and name;
// the workload's issuer, subject and audience (from the configuration,
// else from the token file). It may ask the identity endpoint who the
// managed identity is (a local call, made once); it never fails: what it
// could not learn is left empty, and each mode not offered has its reason
// in NotOffered.
func (c *Connector) PlatformIdentities(ctx context.Context) PlatformIdentities {
	var ids PlatformIdentities
	for _, m := range []CredentialMode{CredentialManagedIdentity, CredentialWorkloadIdentity} {
		if why := c.notOffered(m); why != "" {
			if ids.NotOffered == nil {
				ids.NotOffered = map[CredentialMode]string{}
			}
			ids.NotOffered[m] = why
		}
	}
	if ids.NotOffered[CredentialManagedIdentity] == "" {
		mi := &ManagedIdentityInfo{TenantID: c.HomeTenant, ClientID: c.ManagedIdentity.ClientID, Name: "system-assigned managed identity"}
		switch {
		case c.ManagedIdentity.ResourceID != "":
			mi.Name = path.Base(c.ManagedIdentity.ResourceID)
		case c.ManagedIdentity.ClientID != "":
			mi.Name = "user-assigned managed identity " + c.ManagedIdentity.ClientID
		}
		if p, ok := c.principal(ctx); ok {
			mi.ObjectID = p.ObjectID
			if mi.ClientID == "" {
				mi.ClientID = p.ClientID
			}
		}
		ids.ManagedIdentity = mi
	}
	if ids.NotOffered[CredentialWorkloadIdentity] == "" {
		w := &WorkloadInfo{Issuer: c.Workload.Issuer, Subject: c.Workload.Subject, Audience: azurekv.FederatedAudience}
		if iss, sub, aud, err := azurekv.FederatedTokenClaims(c.Workload.TokenFile); err == nil {
			if w.Issuer == "" {
				w.Issuer = iss
			}
			if w.Subject == "" {
				w.Subject = sub
			}
			if len(aud) == 1 {
				w.Audience = aud[0]
			}
		}
		ids.Workload = w
	}
	return ids
}

// SetupCommands returns the Azure CLI commands of the setup steps of the
// platform's identities for settings s: role gives the managed identity
// its role on s's key (placeholders when s names no key), federated adds
// to s's app (a placeholder unless s are workload-identity settings) the
// federated credential that trusts the platform's workload. Each is ""
// when its mode is not offered, or when the identity's principal is not
// known.
func (p PlatformIdentities) SetupCommands(s lifecycle.KeySettings) (role, federated string) {
	id, err := azurekv.ParseKeyID(s.KeyID)
	if err != nil {
		id = azurekv.KeyID{Vault: "<vault>", Name: "<key>"}
	}
	if mi := p.ManagedIdentity; mi != nil && mi.Assignee() != "" {
		role = azurekv.RoleAssignmentCommand(id, mi.Assignee(), mi.ObjectID != "")
	}
	if w := p.Workload; w != nil {
		app := "<your-app-id>"
		if o, _ := OptionsOf(s); o.Credential == CredentialWorkloadIdentity && o.ClientID != "" {
			app = o.ClientID
		}
		federated = azurekv.FederatedCredentialCommand(app, w.Issuer, w.Subject, w.Audience)
	}
	return role, federated
}
