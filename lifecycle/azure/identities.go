package azure

import (
	"context"
	"fmt"
	"strings"

	"github.com/openbyok/byok/lifecycle"
)

// PlatformIdentities are the platform's own identities that tenants may
// let reach their keys, and what a tenant's administrator needs to do so.
type PlatformIdentities struct {
	// ManagedIdentity is the platform's managed identity; nil: the
	// managed-identity mode is not offered.
	ManagedIdentity *ManagedIdentityInfo
	// Workload is the platform's workload identity; nil: the
	// workload-identity mode is not offered.
	Workload *WorkloadInfo
	// NotOffered says, for each of the two modes not offered, why, in a
	// sentence for the tenant admin and the operator (e.g.
	// "managed-identity is not offered by this platform: its operator has
	// not configured azure.managed_identity").
	NotOffered map[CredentialMode]string
}

// ManagedIdentityInfo is what a tenant's administrator needs to give the
// platform's managed identity a role on a vault.
type ManagedIdentityInfo struct {
	// TenantID is the platform's directory, the only one whose vaults the
	// identity reaches: the DirectoryID of managed-identity settings.
	TenantID string
	// ObjectID is the identity's principal (object) id, the assignee of
	// the role; empty when it could not be learned (the console then
	// names ClientID).
	ObjectID string
	// ClientID is the identity's client (application) id; empty for a
	// system-assigned identity until learned from a token.
	ClientID string
	// Name is a user-assigned identity's resource name (the last segment
	// of its resource id), or "system-assigned managed identity".
	Name string
}

// Assignee returns the principal to name in a role assignment: the
// object id when known, else the client id, else "".
func (m ManagedIdentityInfo) Assignee() string {
	if m.ObjectID != "" {
		return m.ObjectID
	}
	return m.ClientID
}

// WorkloadInfo is what a customer enters in its app's federated identity
// credential to trust the platform's workload.
type WorkloadInfo struct {
	// Issuer is the platform's OIDC issuer URL; Subject is byok's
	// workload (e.g. system:serviceaccount:byok:byok); Audience is
	// api://AzureADTokenExchange unless the token says otherwise.
	Issuer, Subject, Audience string
}

// checkIdentity checks the options of the managed-identity and
// workload-identity modes, and that the connector offers the mode. With
// the managed identity, the directory must be the platform's: it reaches
// no vault of another. secretSet says the settings carry a secret, which
// these modes refuse.
func (c *Connector) checkIdentity(ctx context.Context, o Options, secretSet bool) error {
	switch o.Credential {
	case CredentialManagedIdentity:
		if o.ClientID != "" {
			return &lifecycle.FieldError{Field: "client_id", Reason: "must be empty with the managed-identity credential: byok signs in as the platform's managed identity, named in its configuration"}
		}
	case CredentialWorkloadIdentity:
		if o.ClientID == "" {
			return &lifecycle.FieldError{Field: "client_id", Reason: "is empty; the workload-identity credential needs the Application (client) ID of your app that trusts the platform's workload"}
		}
	default:
		return nil
	}
	if secretSet {
		return &lifecycle.FieldError{Field: "secret", Reason: fmt.Sprintf("must be empty with the %s credential: it uses no secret", o.Credential)}
	}
	if why := c.notOffered(o.Credential); why != "" {
		return &lifecycle.FieldError{Field: "credential", Reason: why}
	}
	if o.Credential == CredentialManagedIdentity && !strings.EqualFold(o.DirectoryID, c.HomeTenant) {
		return &lifecycle.FieldError{Field: "directory_id", Reason: fmt.Sprintf("is %q, not the platform's directory %s: a managed identity only reaches vaults in its own directory; use platform-app consent or workload identity for a vault in another directory",
			o.DirectoryID, c.HomeTenant)}
	}
	return nil
}

// IdentitiesOf returns the platform's identities offered by src: an Azure
// [Connector], or a lifecycle (a *lifecycle.Service) whose Azure connector
// it is; anything else offers none. Each mode not offered has a
// NotOffered sentence.
func IdentitiesOf(ctx context.Context, src any) PlatformIdentities {
	if lc, ok := src.(interface {
		Connector(name string) (lifecycle.Connector, error)
	}); ok {
		src, _ = lc.Connector(Provider)
	}
	var ids PlatformIdentities
	if o, ok := src.(interface {
		PlatformIdentities(context.Context) PlatformIdentities
	}); ok {
		ids = o.PlatformIdentities(ctx)
	}
	for _, m := range []struct {
		mode    CredentialMode
		offered bool
	}{{CredentialManagedIdentity, ids.ManagedIdentity != nil}, {CredentialWorkloadIdentity, ids.Workload != nil}} {
		if !m.offered && ids.NotOffered[m.mode] == "" {
			if ids.NotOffered == nil {
				ids.NotOffered = map[CredentialMode]string{}
			}
			ids.NotOffered[m.mode] = string(m.mode) + " is not offered by this platform"
		}
	}
	return ids
}
