package lifecycle

import (
	"context"
	"fmt"
	"strings"
)

// IdentityOfferer is a [Connector] that offers tenants the platform's own
// identities: the credential modes [CredentialManagedIdentity] and
// [CredentialWorkloadIdentity]. [Service.Configure] refuses those modes
// with a connector that does not implement it, or that does not offer
// them; [Service.PlatformIdentities] passes its answer on to the
// console's setup steps. [AzureConnector] implements it.
type IdentityOfferer interface {
	// PlatformIdentities describes the identities the connector offers.
	// It may ask the identity endpoint who the managed identity is (a
	// local call, made once); it never fails: what it could not learn is
	// left empty.
	PlatformIdentities(ctx context.Context) PlatformIdentities
}

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

// PlatformIdentities returns the platform's identities offered to tenants
// (none if the connector is not an [IdentityOfferer]), with a NotOffered
// sentence for each mode not offered. Allowed to any caller: it holds no
// secret.
func (s *Service) PlatformIdentities(ctx context.Context) PlatformIdentities {
	var ids PlatformIdentities
	if o, ok := s.cfg.Connector.(IdentityOfferer); ok {
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

// withIdentityDefaults returns ks with the platform's directory as its
// DirectoryID when the mode is managed-identity, the directory is left
// out and the connector offers the mode: it can be no other.
func (s *Service) withIdentityDefaults(ctx context.Context, ks KeySettings) KeySettings {
	if ks.Credential == CredentialManagedIdentity && ks.DirectoryID == "" {
		if mi := s.PlatformIdentities(ctx).ManagedIdentity; mi != nil {
			ks.DirectoryID = mi.TenantID
		}
	}
	return ks
}

// checkIdentity checks the fields of settings in the managed-identity and
// workload-identity modes, and that the connector offers the mode; other
// modes pass. With the managed identity, the directory must be the
// platform's: it reaches no vault of another.
func (s *Service) checkIdentity(ctx context.Context, ks KeySettings) error {
	switch ks.Credential {
	case CredentialManagedIdentity:
		if ks.ClientID != "" {
			return &FieldError{Field: "client_id", Reason: "must be empty with the managed-identity credential: byok signs in as the platform's managed identity, named in its configuration"}
		}
	case CredentialWorkloadIdentity:
		if ks.ClientID == "" {
			return &FieldError{Field: "client_id", Reason: "is empty; the workload-identity credential needs the Application (client) ID of your app that trusts the platform's workload"}
		}
	default:
		return nil
	}
	if ks.Secret.IsSet() {
		return &FieldError{Field: "secret", Reason: fmt.Sprintf("must be empty with the %s credential: it uses no secret", ks.Credential)}
	}
	ids := s.PlatformIdentities(ctx)
	offered := ids.ManagedIdentity != nil
	if ks.Credential == CredentialWorkloadIdentity {
		offered = ids.Workload != nil
	}
	if !offered {
		return &FieldError{Field: "credential", Reason: ids.NotOffered[ks.Credential]}
	}
	if ks.Credential == CredentialManagedIdentity && !strings.EqualFold(ks.DirectoryID, ids.ManagedIdentity.TenantID) {
		return &FieldError{Field: "directory_id", Reason: fmt.Sprintf("is %q, not the platform's directory %s: a managed identity only reaches vaults in its own directory; use platform-app consent or workload identity for a vault in another directory",
			ks.DirectoryID, ids.ManagedIdentity.TenantID)}
	}
	return nil
}
