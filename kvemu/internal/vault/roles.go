package vault

import (
	"fmt"
	"slices"
	"strings"
)

// AssignRole adds a role assignment to vault and returns its id.
func (s *Service) AssignRole(vault string, a RoleAssignment) (string, error) {
	if err := a.validate(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return "", err
	}
	if err := a.checkFamily(v.cfg.ManagedHSM); err != nil {
		return "", err
	}
	s.nextID++
	a.ID = fmt.Sprintf("ra-%d", s.nextID)
	for slices.ContainsFunc(v.roles, func(r *RoleAssignment) bool { return r.ID == a.ID }) {
		s.nextID++
		a.ID = fmt.Sprintf("ra-%d", s.nextID)
	}
	a.DataActions = slices.Clone(a.DataActions)
	v.roles = append(v.roles, &a)
	return a.ID, nil
}

// RoleAssignments returns vault's role assignments, revoked ones included.
func (s *Service) RoleAssignments(vault string) ([]RoleAssignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return nil, err
	}
	out := make([]RoleAssignment, len(v.roles))
	for i, r := range v.roles {
		out[i] = *r
		out[i].DataActions = slices.Clone(r.DataActions)
	}
	return out, nil
}

// RevokeRole suspends a role assignment: it grants nothing until
// [Service.RestoreRole].
func (s *Service) RevokeRole(vault, id string) error { return s.setRevoked(vault, id, true) }

// RestoreRole reinstates a revoked role assignment.
func (s *Service) RestoreRole(vault, id string) error { return s.setRevoked(vault, id, false) }

// RemoveRole deletes a role assignment.
func (s *Service) RemoveRole(vault, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(v.roles, func(r *RoleAssignment) bool { return r.ID == id })
	if i < 0 {
		return fmt.Errorf("%w: vault %q has no role assignment %q", ErrNotFound, vault, id)
	}
	v.roles = slices.Delete(v.roles, i, i+1)
	return nil
}

func (s *Service) setRevoked(vault, id string, revoked bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	for _, r := range v.roles {
		if r.ID == id {
			r.Revoked = revoked
			return nil
		}
	}
	return fmt.Errorf("%w: vault %q has no role assignment %q", ErrNotFound, vault, id)
}

// SetAccessPolicy sets the key permissions of principal objectID in a vault
// that uses access policies (see [KeyPermissions]); no permissions removes
// the policy.
func (s *Service) SetAccessPolicy(vault, objectID string, keyPermissions []string) error {
	perms, err := normalisePermissions(keyPermissions)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	if len(perms) == 0 {
		delete(v.policies, strings.ToLower(objectID))
		return nil
	}
	v.policies[strings.ToLower(objectID)] = perms
	return nil
}
