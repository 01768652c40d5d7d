package gcpkmsemu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ErrSeed marks an invalid seed.
var ErrSeed = errors.New("gcpkmsemu: invalid seed")

// Seed is the declarative starting state of an emulator, read from YAML by
// [ParseSeed] and applied by [Emulator.ApplySeed] in this order: projects,
// workload identity providers, service accounts (with their keys and
// impersonators), key rings with their keys, then the
// IAM bindings of projects, key rings and keys. docs/gcpkmsemu.md has an
// example.
type Seed struct {
	Projects        []SeedProject        `yaml:"projects"`
	ServiceAccounts []SeedServiceAccount `yaml:"serviceAccounts"`
	KeyRings        []SeedKeyRing        `yaml:"keyRings"`
	// WorkloadIdentityProviders are OIDC providers of workload identity
	// pools (docs/gcpkmsemu.md, "Workload identity federation").
	WorkloadIdentityProviders []WorkloadIdentityProvider `yaml:"workloadIdentityProviders"`
}

// SeedProject is a project: its id, number (0: derived) and project-level
// bindings, which its key rings and keys inherit.
type SeedProject struct {
	ID       string        `yaml:"id"`
	Number   int64         `yaml:"number"`
	Bindings []SeedBinding `yaml:"bindings"`
}

// SeedBinding grants a role to members (serviceAccount:EMAIL, allUsers…).
type SeedBinding struct {
	Role    string   `yaml:"role"`
	Members []string `yaml:"members"`
}

// SeedServiceAccount is accountId@project.iam.gserviceaccount.com with its
// keys: public keys given in PEM, and/or a key made by the emulator whose
// key file is written to keyFile (mode 0600).
type SeedServiceAccount struct {
	Project    string   `yaml:"project"`
	AccountID  string   `yaml:"accountId"`
	Disabled   bool     `yaml:"disabled"`
	PublicKeys []string `yaml:"publicKeys"`
	KeyFile    string   `yaml:"keyFile"`
	// Impersonators may get the account's tokens at generateAccessToken
	// (roles/iam.workloadIdentityUser): principal://…, principalSet://…/*.
	Impersonators []string `yaml:"impersonators"`
}

// SeedKeyRing is a key ring by full name with its keys and bindings.
type SeedKeyRing struct {
	Name       string          `yaml:"name"`
	Bindings   []SeedBinding   `yaml:"bindings"`
	CryptoKeys []SeedCryptoKey `yaml:"cryptoKeys"`
}

// SeedCryptoKey is a crypto key. Purpose defaults to ENCRYPT_DECRYPT and
// protectionLevel to SOFTWARE; rotationPeriod and
// destroyScheduledDuration are Go durations ("720h"); nextRotationTime is
// RFC 3339. Versions lists the state of each version in order (ENABLED,
// DISABLED, DESTROY_SCHEDULED, DESTROYED; default one ENABLED); primary
// is a version number (default: the newest ENABLED version).
type SeedCryptoKey struct {
	ID                       string            `yaml:"id"`
	Purpose                  string            `yaml:"purpose"`
	ProtectionLevel          string            `yaml:"protectionLevel"`
	RotationPeriod           string            `yaml:"rotationPeriod"`
	NextRotationTime         string            `yaml:"nextRotationTime"`
	DestroyScheduledDuration string            `yaml:"destroyScheduledDuration"`
	Versions                 []string          `yaml:"versions"`
	Primary                  int               `yaml:"primary"`
	Labels                   map[string]string `yaml:"labels"`
	Bindings                 []SeedBinding     `yaml:"bindings"`
}

// ParseSeed decodes a seed strictly: an unknown field is an error naming
// it, and the seed must be one YAML document.
func ParseSeed(data []byte) (Seed, error) {
	var s Seed
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return Seed{}, fmt.Errorf("%w: the seed is empty", ErrSeed)
		}
		return Seed{}, fmt.Errorf("%w: %v", ErrSeed, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Seed{}, fmt.Errorf("%w: the seed must be a single YAML document", ErrSeed)
	}
	return s, nil
}

// LoadSeed reads and parses a seed file.
func LoadSeed(file string) (Seed, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Seed{}, fmt.Errorf("gcpkmsemu: read seed: %w", err)
	}
	s, err := ParseSeed(data)
	if err != nil {
		return Seed{}, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// ApplySeed creates everything in s. It stops at the first error, which
// names the item; what was created before it stays.
func (e *Emulator) ApplySeed(s Seed) error {
	for _, p := range s.Projects {
		e.mu.Lock()
		_, err := e.ensureProject(p.ID, p.Number)
		e.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%w: project %q: %v", ErrSeed, p.ID, err)
		}
	}
	for _, p := range s.WorkloadIdentityProviders {
		if _, err := e.AddWorkloadIdentityProvider(p); err != nil {
			return fmt.Errorf("%w: workload identity provider %s/%s: %v", ErrSeed, p.Pool, p.Provider, err)
		}
	}
	for _, a := range s.ServiceAccounts {
		if err := e.seedAccount(a); err != nil {
			return fmt.Errorf("%w: service account %s@%s: %v", ErrSeed, a.AccountID, a.Project, err)
		}
	}
	for _, r := range s.KeyRings {
		if err := e.seedRing(r); err != nil {
			return fmt.Errorf("%w: key ring %s: %v", ErrSeed, r.Name, err)
		}
	}
	bind := func(resource string, bs []SeedBinding) error {
		for _, b := range bs {
			for _, m := range b.Members {
				if err := e.AddBinding(resource, b.Role, m); err != nil {
					return fmt.Errorf("%w: binding %s to %s on %s: %v", ErrSeed, b.Role, m, resource, err)
				}
			}
		}
		return nil
	}
	for _, p := range s.Projects {
		if err := bind(p.ID, p.Bindings); err != nil {
			return err
		}
	}
	for _, r := range s.KeyRings {
		if err := bind(r.Name, r.Bindings); err != nil {
			return err
		}
		for _, k := range r.CryptoKeys {
			if err := bind(r.Name+"/cryptoKeys/"+k.ID, k.Bindings); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *Emulator) seedAccount(a SeedServiceAccount) error {
	email, err := e.CreateServiceAccount(a.Project, a.AccountID)
	if err != nil {
		return err
	}
	for i, p := range a.PublicKeys {
		if _, err := e.UploadServiceAccountKey(email, []byte(p)); err != nil {
			return fmt.Errorf("public key %d: %v", i+1, err)
		}
	}
	if a.KeyFile != "" {
		if err := e.WriteServiceAccountKeyFile(email, a.KeyFile); err != nil {
			return err
		}
	}
	for _, m := range a.Impersonators {
		if err := e.AllowImpersonation(email, m); err != nil {
			return err
		}
	}
	return e.SetServiceAccountDisabled(email, a.Disabled)
}

func (e *Emulator) seedRing(r SeedKeyRing) error {
	n, err := parseName(r.Name, "ring")
	if err != nil {
		return errors.New(status.Convert(err).Message())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.createRing(n); err != nil {
		return errors.New(status.Convert(err).Message())
	}
	for _, sk := range r.CryptoKeys {
		if err := e.seedKey(n, sk); err != nil {
			return fmt.Errorf("crypto key %q: %v", sk.ID, err)
		}
	}
	return nil
}

// seedKey creates one seeded key with its versions. e.mu is held.
func (e *Emulator) seedKey(ring resourceName, sk SeedCryptoKey) error {
	spec := &kmspb.CryptoKey{Labels: sk.Labels, VersionTemplate: &kmspb.CryptoKeyVersionTemplate{}}
	purpose, ok := kmspb.CryptoKey_CryptoKeyPurpose_value[orDefault(sk.Purpose, "ENCRYPT_DECRYPT")]
	if !ok {
		return fmt.Errorf("unknown purpose %q", sk.Purpose)
	}
	spec.Purpose = kmspb.CryptoKey_CryptoKeyPurpose(purpose)
	pl, ok := kmspb.ProtectionLevel_value[orDefault(sk.ProtectionLevel, "SOFTWARE")]
	if !ok {
		return fmt.Errorf("unknown protection level %q", sk.ProtectionLevel)
	}
	spec.VersionTemplate.ProtectionLevel = kmspb.ProtectionLevel(pl)
	for _, d := range []struct {
		s   string
		set func(time.Duration)
	}{
		{sk.RotationPeriod, func(d time.Duration) {
			spec.RotationSchedule = &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(d)}
			spec.NextRotationTime = timestamppb.New(e.keyNow().Add(d)) // the default; nextRotationTime overrides it
		}},
		{sk.DestroyScheduledDuration, func(d time.Duration) { spec.DestroyScheduledDuration = durationpb.New(d) }},
	} {
		if d.s != "" {
			v, err := time.ParseDuration(d.s)
			if err != nil {
				return err
			}
			d.set(v)
		}
	}
	if sk.NextRotationTime != "" {
		t, err := time.Parse(time.RFC3339, sk.NextRotationTime)
		if err != nil {
			return err
		}
		spec.NextRotationTime = timestamppb.New(t)
	}
	if !idPattern.MatchString(sk.ID) {
		return fmt.Errorf("id must match [a-zA-Z0-9_-]{1,63}")
	}
	n := ring
	n.key = sk.ID
	k, err := e.createKey(n, spec, true)
	if err != nil {
		return errors.New(status.Convert(err).Message())
	}
	states := sk.Versions
	if len(states) == 0 {
		states = []string{"ENABLED"}
	}
	now := e.keyNow()
	for i, st := range states {
		v := k.newVersion(now)
		switch strings.ToUpper(st) {
		case "ENABLED":
			k.primary = v.id
		case "DISABLED":
			v.state = kmspb.CryptoKeyVersion_DISABLED
		case "DESTROY_SCHEDULED":
			v.state, v.destroyTime = kmspb.CryptoKeyVersion_DESTROY_SCHEDULED, now.Add(k.destroyDuration)
		case "DESTROYED":
			v.state, v.destroyTime, v.destroyEventTime, v.aead = kmspb.CryptoKeyVersion_DESTROYED, now, now, nil
		default:
			return fmt.Errorf("version %d: unknown state %q", i+1, st)
		}
	}
	if k.purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		k.primary = 0
	} else if sk.Primary != 0 {
		if k.version(sk.Primary) == nil {
			return fmt.Errorf("primary %d: no such version", sk.Primary)
		}
		k.primary = sk.Primary
	}
	return nil
}
