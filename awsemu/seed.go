package awsemu

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Seed is a starting state: IAM users with their access keys, roles with
// their trust policies, and keys. See docs/awsemu.md for an example.
type Seed struct {
	Users []SeedUser `yaml:"users"`
	Roles []SeedRole `yaml:"roles"`
	Keys  []KeySpec  `yaml:"keys"`
}

// SeedUser is an IAM user and its access keys.
type SeedUser struct {
	ARN        string      `yaml:"arn"`
	AccessKeys []AccessKey `yaml:"accessKeys"`
}

// SeedRole is an IAM role and its trust policy (JSON).
type SeedRole struct {
	ARN         string `yaml:"arn"`
	TrustPolicy string `yaml:"trustPolicy"`
}

// LoadSeed decodes a YAML seed strictly: an unknown field is an error
// that names it.
func LoadSeed(r io.Reader) (Seed, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return Seed{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s Seed
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return Seed{}, fmt.Errorf("awsemu: seed: %w", err)
	}
	return s, nil
}

// ApplySeed creates the seed's users, roles and keys, stopping at the
// first error, which names the item.
func (e *Emulator) ApplySeed(s Seed) error {
	for _, u := range s.Users {
		if len(u.AccessKeys) == 0 {
			return fmt.Errorf("awsemu: seed user %s has no access key", u.ARN)
		}
		for _, k := range u.AccessKeys {
			if _, err := e.AddUser(u.ARN, k); err != nil {
				return fmt.Errorf("awsemu: seed user %s: %w", u.ARN, err)
			}
		}
	}
	for _, r := range s.Roles {
		if err := e.PutRole(r.ARN, r.TrustPolicy); err != nil {
			return fmt.Errorf("awsemu: seed role %s: %w", r.ARN, err)
		}
	}
	for i, k := range s.Keys {
		if _, err := e.CreateKey(k); err != nil {
			return fmt.Errorf("awsemu: seed key %d (%s): %w", i+1, k.ID, err)
		}
	}
	return nil
}
