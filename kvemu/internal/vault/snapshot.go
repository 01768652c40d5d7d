package vault

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Snapshot returns the Service's state as JSON, for persistence: vaults,
// keys with their private material, role assignments and access policies.
// Latency, throttles, faults, network cuts and counters are not included.
func (s *Service) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := snapshot{Version: 1, Vaults: []vaultSnapshot{}}
	names := make([]string, 0, len(s.vaults))
	for n := range s.vaults {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v := s.vaults[n]
		vs := vaultSnapshot{Config: v.cfg, Policies: v.policies, Roles: v.roles}
		for _, m := range []map[string]*keyState{v.keys, v.deleted} {
			kn := make([]string, 0, len(m))
			for n := range m {
				kn = append(kn, n)
			}
			slices.Sort(kn)
			for _, n := range kn {
				k := m[n]
				ks := keySnapshot{Name: k.name, Policy: k.policy, DeletedAt: k.deletedAt, PurgeAt: k.purgeAt}
				for _, kv := range k.versions {
					vsnap, err := kv.snapshot()
					if err != nil {
						return nil, err
					}
					ks.Versions = append(ks.Versions, vsnap)
				}
				vs.Keys = append(vs.Keys, ks)
			}
		}
		snap.Vaults = append(snap.Vaults, vs)
	}
	return json.Marshal(snap)
}

// Restore replaces the Service's vaults, keys, roles and policies with a
// [Service.Snapshot]. On error the Service is unchanged.
func (s *Service) Restore(data []byte) error {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("restore vault state: %w", err)
	}
	if snap.Version != 1 {
		return fmt.Errorf("restore vault state: unknown snapshot version %d (this kvemu reads version 1)", snap.Version)
	}
	vaults := map[string]*vaultState{}
	maxID := 0
	for _, vs := range snap.Vaults {
		cfg, err := vs.Config.validate()
		if err != nil {
			return fmt.Errorf("restore vault state: %w", err)
		}
		v := newVaultState(cfg)
		for oid, perms := range vs.Policies {
			if v.policies[oid], err = normalisePermissions(perms); err != nil {
				return fmt.Errorf("restore vault %q: %w", cfg.Name, err)
			}
		}
		for _, r := range vs.Roles {
			if r == nil {
				continue
			}
			if err := r.validate(); err != nil {
				return fmt.Errorf("restore vault %q: %w", cfg.Name, err)
			}
			var n int
			if _, err := fmt.Sscanf(r.ID, "ra-%d", &n); err == nil {
				maxID = max(maxID, n)
			}
			v.roles = append(v.roles, r)
		}
		for _, ks := range vs.Keys {
			if !keyNameRE.MatchString(ks.Name) || len(ks.Versions) == 0 {
				return fmt.Errorf("restore vault %q: key %q has a bad name or no versions", cfg.Name, ks.Name)
			}
			k := &keyState{name: ks.Name, policy: ks.Policy, deletedAt: ks.DeletedAt, purgeAt: ks.PurgeAt}
			for _, vsnap := range ks.Versions {
				kv, err := vsnap.restore()
				if err != nil {
					return fmt.Errorf("restore vault %q key %q: %w", cfg.Name, ks.Name, err)
				}
				k.versions = append(k.versions, kv)
			}
			if k.deletedAt.IsZero() {
				v.keys[strings.ToLower(k.name)] = k
			} else {
				v.deleted[strings.ToLower(k.name)] = k
			}
		}
		if vaults[strings.ToLower(cfg.Name)] != nil {
			return fmt.Errorf("restore vault state: vault %q appears twice", cfg.Name)
		}
		vaults[strings.ToLower(cfg.Name)] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vaults = vaults
	s.nextID = max(s.nextID, maxID)
	return nil
}
