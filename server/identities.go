package server

import (
	"github.com/openbyok/byok/lifecycle/azure"
)

// identitiesView is the platform's identities a tenant may let reach its
// key, with the commands of their setup steps for the tenant's saved key.
type identitiesView struct {
	ManagedIdentity  *managedIdentityView `json:"managed_identity,omitempty"`
	WorkloadIdentity *workloadView        `json:"workload_identity,omitempty"`
	// NotOffered says why a mode ("managed-identity",
	// "workload-identity") is not offered.
	NotOffered map[azure.CredentialMode]string `json:"not_offered,omitempty"`
}

type managedIdentityView struct {
	DirectoryID string `json:"directory_id"`
	ObjectID    string `json:"object_id,omitempty"`
	ClientID    string `json:"client_id,omitempty"`
	Name        string `json:"name"`
	RoleCommand string `json:"role_command,omitempty"`
}

type workloadView struct {
	Issuer   string `json:"issuer"`
	Subject  string `json:"subject"`
	Audience string `json:"audience"`
	Command  string `json:"command"`
}

func (s *server) identities(c *call) (any, error) {
	k, err := s.keys.Status(c.ctx, c.tenant())
	if err != nil {
		return nil, err
	}
	ids := azure.IdentitiesOf(c.ctx, s.cfg.Lifecycle)
	role, federated := ids.SetupCommands(k.Settings)
	v := identitiesView{NotOffered: ids.NotOffered}
	if mi := ids.ManagedIdentity; mi != nil {
		v.ManagedIdentity = &managedIdentityView{DirectoryID: mi.TenantID, ObjectID: mi.ObjectID, ClientID: mi.ClientID, Name: mi.Name, RoleCommand: role}
	}
	if w := ids.Workload; w != nil {
		v.WorkloadIdentity = &workloadView{Issuer: w.Issuer, Subject: w.Subject, Audience: w.Audience, Command: federated}
	}
	return v, nil
}
