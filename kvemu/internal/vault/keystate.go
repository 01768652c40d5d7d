package vault

import (
	"fmt"
	"maps"
	"strings"
	"time"
)

// liveKey returns key name of vault; the caller holds s.mu.
func (s *Service) liveKey(vault, name string) (*vaultState, *keyState, error) {
	v, err := s.vault(vault)
	if err != nil {
		return nil, nil, err
	}
	v.purgeExpired(s.now())
	k := v.keys[strings.ToLower(name)]
	if k == nil {
		return nil, nil, fmt.Errorf("%w: no key named %q in vault %q", ErrNotFound, name, vault)
	}
	v.autoRotate(k, s.now())
	return v, k, nil
}

// Key returns a version of a key ("" for the latest).
func (s *Service) Key(vault, name, version string) (KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, k, err := s.liveKey(vault, name)
	if err != nil {
		return KeyInfo{}, err
	}
	kv := k.version(version)
	if kv == nil {
		return KeyInfo{}, fmt.Errorf("%w: key %q in vault %q has no version %q", ErrNotFound, name, vault, version)
	}
	return v.info(k, kv), nil
}

// KeyVersions returns every version of a key, oldest first.
func (s *Service) KeyVersions(vault, name string) ([]KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, k, err := s.liveKey(vault, name)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, len(k.versions))
	for i, kv := range k.versions {
		out[i] = v.info(k, kv)
	}
	return out, nil
}

// KeyUpdate changes a key version's attributes; nil fields stay as they are.
type KeyUpdate struct {
	Enabled *bool
	// NotBefore and Expires: a pointer to the zero time clears the bound.
	NotBefore, Expires *time.Time
	Ops                []string
	// Tags, if not nil, replace the version's tags (an empty map removes
	// them all), as PATCH /keys/{name}/{version} with "tags" does.
	Tags map[string]string
}

// UpdateKey changes one version of a key, or every version when version is
// "" (so that disabling a key cuts every wrapped value off, as revoking a
// customer key does).
func (s *Service) UpdateKey(vault, name, version string, u KeyUpdate) error {
	var ops []string
	if u.Ops != nil {
		var err error
		if ops, err = validOps(u.Ops); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, k, err := s.liveKey(vault, name)
	if err != nil {
		return err
	}
	targets := k.versions
	if version != "" {
		kv := k.version(version)
		if kv == nil {
			return fmt.Errorf("%w: key %q in vault %q has no version %q", ErrNotFound, name, vault, version)
		}
		targets = []*keyVersion{kv}
	}
	for _, kv := range targets {
		if u.Enabled != nil {
			kv.enabled = *u.Enabled
		}
		if u.NotBefore != nil {
			kv.nbf = u.NotBefore.UTC().Truncate(time.Second)
		}
		if u.Expires != nil {
			kv.exp = u.Expires.UTC().Truncate(time.Second)
		}
		if ops != nil {
			kv.ops = ops
		}
		if u.Tags != nil {
			kv.tags = maps.Clone(u.Tags)
		}
		kv.updated = s.now()
	}
	return nil
}

// SetKeyEnabled enables or disables every version of a key.
func (s *Service) SetKeyEnabled(vault, name string, enabled bool) error {
	return s.UpdateKey(vault, name, "", KeyUpdate{Enabled: &enabled})
}

// DeleteKey soft-deletes a key, as DELETE /keys/{name} does.
func (s *Service) DeleteKey(vault, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, k, err := s.liveKey(vault, name)
	if err != nil {
		return err
	}
	v.softDelete(k, s.now())
	return nil
}

func (v *vaultState) softDelete(k *keyState, now time.Time) {
	lname := strings.ToLower(k.name)
	delete(v.keys, lname)
	k.deletedAt = now
	k.purgeAt = now.Add(time.Duration(v.cfg.retention()) * 24 * time.Hour)
	v.deleted[lname] = k
}

// PurgeKey deletes a key for good: a live key is deleted and purged, a
// soft-deleted one purged, even under purge protection (standing in for the
// end of the retention period).
func (s *Service) PurgeKey(vault, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	lname := strings.ToLower(name)
	if v.keys[lname] == nil && v.deleted[lname] == nil {
		return fmt.Errorf("%w: no key named %q, live or deleted, in vault %q", ErrNotFound, name, vault)
	}
	delete(v.keys, lname)
	delete(v.deleted, lname)
	return nil
}

// RecoverKey recovers a soft-deleted key.
func (s *Service) RecoverKey(vault, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vault(vault)
	if err != nil {
		return err
	}
	v.purgeExpired(s.now())
	if _, aerr := v.recover(name); aerr != nil {
		return fmt.Errorf("%w: no deleted key named %q in vault %q", ErrNotFound, name, vault)
	}
	return nil
}

func (v *vaultState) recover(name string) (*keyState, *apiError) {
	lname := strings.ToLower(name)
	k := v.deleted[lname]
	if k == nil {
		return nil, deletedKeyNotFound(name)
	}
	delete(v.deleted, lname)
	k.deletedAt, k.purgeAt = time.Time{}, time.Time{}
	v.keys[lname] = k
	return k, nil
}

// purgeExpired purges deleted keys whose scheduled purge date has passed.
func (v *vaultState) purgeExpired(now time.Time) {
	for n, k := range v.deleted {
		if !now.Before(k.purgeAt) {
			delete(v.deleted, n)
		}
	}
}

// RotateKey makes a new version of a key with the same type, size and
// operations, as POST /keys/{name}/rotate does.
func (s *Service) RotateKey(vault, name string) (KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, k, err := s.liveKey(vault, name)
	if err != nil {
		return KeyInfo{}, err
	}
	kv, err := v.rotate(k, s.now())
	if err != nil {
		return KeyInfo{}, err
	}
	return v.info(k, kv), nil
}
