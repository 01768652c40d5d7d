package awsemu

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/data"
)

// ErrNotFound is returned by control operations on a key, alias or role
// that does not exist.
var ErrNotFound = errors.New("awsemu: not found")

// KeySpec describes a key for [Emulator.CreateKey].
type KeySpec struct {
	// Account and Region place the key: its ARN is
	// arn:aws:kms:<Region>:<Account>:key/<id>. Required.
	Account string `yaml:"account"`
	Region  string `yaml:"region"`
	// ID is the key id; empty means a new UUID (or mrk-<32 hex> with
	// MultiRegion).
	ID string `yaml:"id"`
	// MultiRegion makes a multi-region (primary) key, id mrk-….
	MultiRegion bool `yaml:"multiRegion"`
	// KeySpec is SYMMETRIC_DEFAULT (default), RSA_2048/3072/4096,
	// ECC_NIST_P256/P384/P521, ECC_SECG_P256K1 or HMAC_224/256/384/512.
	KeySpec string `yaml:"keySpec"`
	// KeyUsage is ENCRYPT_DECRYPT (default for symmetric and RSA),
	// SIGN_VERIFY (default for ECC) or GENERATE_VERIFY_MAC (HMAC).
	KeyUsage string `yaml:"keyUsage"`
	// Policy is the key policy (JSON); empty means AWS's default policy,
	// which gives the key's account root kms:*.
	Policy string `yaml:"policy"`
	// Aliases are alias names ("alias/byok") that point to the key.
	Aliases []string `yaml:"aliases"`
	// Rotation turns automatic yearly rotation on.
	Rotation bool `yaml:"rotation"`
	// Disabled creates the key disabled.
	Disabled bool `yaml:"disabled"`
	// AWSManaged makes the key look like an AWS managed key (KeyManager
	// AWS), which a customer cannot share.
	AWSManaged bool `yaml:"awsManaged"`
}

// Key is a key the emulator holds.
type Key struct {
	ARN string
	ID  string
}

// DefaultKeyPolicy is AWS's default key policy for account.
func DefaultKeyPolicy(account string) string {
	return `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` +
		account + `:root"},"Action":"kms:*","Resource":"*"}]}`
}

// CreateKey creates a key as its owner would in the KMS console.
func (e *Emulator) CreateKey(s KeySpec) (Key, error) {
	if !accountRE.MatchString(s.Account) || s.Region == "" {
		return Key{}, fmt.Errorf("%w: a key needs a 12-digit Account and a Region; got %q and %q", errInvalid, s.Account, s.Region)
	}
	id := s.ID
	if id == "" {
		b := make([]byte, 16)
		rand.Read(b)
		if s.MultiRegion {
			id = "mrk-" + hex.EncodeToString(b)
		} else {
			h := hex.EncodeToString(b)
			id = h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
		}
	}
	arn := "arn:aws:kms:" + s.Region + ":" + s.Account + ":key/" + id
	if !keyARNRE.MatchString(arn) {
		return Key{}, fmt.Errorf("%w: key id %q is not a UUID or mrk-<32 hex digits>", errInvalid, id)
	}
	policy := s.Policy
	if policy == "" {
		policy = DefaultKeyPolicy(s.Account)
	}
	if _, err := parsePolicy(policy); err != nil {
		return Key{}, fmt.Errorf("%w: key policy: %v", errInvalid, err)
	}
	spec, usage := orDefault(s.KeySpec, "SYMMETRIC_DEFAULT"), s.KeyUsage
	md := cmk.KeyMetadata{Arn: arn, KeyId: id, AWSAccountId: s.Account, CreationDate: e.now().Unix(),
		Enabled: true, KeyManager: "CUSTOMER", KeyState: cmk.KeyStateEnabled, Origin: cmk.KeyOriginAwsKms}
	var key cmk.Key
	var err error
	switch {
	case spec == "SYMMETRIC_DEFAULT":
		if usage != "" && usage != "ENCRYPT_DECRYPT" {
			return Key{}, fmt.Errorf("%w: a SYMMETRIC_DEFAULT key has KeyUsage ENCRYPT_DECRYPT, not %s", errInvalid, usage)
		}
		k := cmk.NewAesKey(md, policy, cmk.KeyOriginAwsKms)
		if s.Rotation {
			k.NextKeyRotation = time.Now().AddDate(1, 0, 0)
		}
		key = k
	case strings.HasPrefix(spec, "RSA_"):
		key, err = cmk.NewRsaKey(cmk.KeySpec(spec), cmk.KeyUsage(orDefault(usage, "ENCRYPT_DECRYPT")), md, policy)
	case strings.HasPrefix(spec, "ECC_"):
		key, err = cmk.NewEccKey(cmk.KeySpec(spec), md, policy)
	case strings.HasPrefix(spec, "HMAC_"):
		key, err = cmk.NewHmacKey(cmk.KeySpec(spec), md, policy, cmk.KeyOriginAwsKms)
	default:
		return Key{}, fmt.Errorf("%w: unknown KeySpec %q", errInvalid, spec)
	}
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", errInvalid, err)
	}
	if s.AWSManaged {
		key.GetMetadata().KeyManager = "AWS"
	}
	if s.Disabled {
		key.GetMetadata().Enabled = false
		key.GetMetadata().KeyState = cmk.KeyStateDisabled
	}
	e.keyMu.Lock()
	defer e.keyMu.Unlock()
	if k, _ := e.db.LoadKey(arn); k != nil {
		return Key{}, fmt.Errorf("%w: key %s exists", errInvalid, arn)
	}
	if err := e.db.SaveKey(key); err != nil {
		return Key{}, err
	}
	for _, a := range s.Aliases {
		if err := e.putAlias(s.Region, s.Account, a, arn); err != nil {
			return Key{}, err
		}
	}
	return Key{ARN: arn, ID: id}, nil
}

// PutAlias points the alias (an alias ARN, e.g.
// arn:aws:kms:eu-west-1:111122223333:alias/byok) at the key keyARN of the
// same account and region, creating it or moving it (UpdateAlias).
func (e *Emulator) PutAlias(aliasARN, keyARN string) error {
	m := aliasARNRE.FindStringSubmatch(aliasARN)
	if m == nil {
		return fmt.Errorf("%w: %q is not an alias ARN such as arn:aws:kms:eu-west-1:111122223333:alias/byok", errInvalid, aliasARN)
	}
	e.keyMu.Lock()
	defer e.keyMu.Unlock()
	if _, err := e.keyByARN(keyARN); err != nil {
		return err
	}
	return e.putAlias(m[1], m[2], m[3], keyARN)
}

func (e *Emulator) putAlias(region, account, name, keyARN string) error {
	if !strings.HasPrefix(name, "alias/") || strings.HasPrefix(name, "alias/aws/") {
		return fmt.Errorf("%w: alias name %q must start with alias/ (and not alias/aws/)", errInvalid, name)
	}
	k := keyARNRE.FindStringSubmatch(keyARN)
	if k == nil || k[1] != region || k[2] != account {
		return fmt.Errorf("%w: alias %s and key %s are not in the same account and region", errInvalid, name, keyARN)
	}
	arn := "arn:aws:kms:" + region + ":" + account + ":" + name
	return e.db.SaveAlias(&data.Alias{AliasArn: arn, AliasName: name, TargetKeyId: keyARN})
}

// DeleteAlias removes an alias.
func (e *Emulator) DeleteAlias(aliasARN string) error {
	e.keyMu.Lock()
	defer e.keyMu.Unlock()
	if _, err := e.db.LoadAlias(aliasARN); err != nil {
		return fmt.Errorf("%w: no alias %s", ErrNotFound, aliasARN)
	}
	return e.db.DeleteObject(aliasARN)
}

// PutKeyPolicy replaces the key's policy, as the key's owner would.
func (e *Emulator) PutKeyPolicy(keyARN, policy string) error {
	if _, err := parsePolicy(policy); err != nil {
		return fmt.Errorf("%w: key policy: %v", errInvalid, err)
	}
	return e.changeKey(keyARN, func(k cmk.Key) error {
		switch v := k.(type) {
		case *cmk.AesKey:
			v.Policy = policy
		case *cmk.RsaKey:
			v.Policy = policy
		case *cmk.EccKey:
			v.Policy = policy
		case *cmk.HmacKey:
			v.Policy = policy
		}
		return nil
	})
}

// KeyPolicy returns the key's policy.
func (e *Emulator) KeyPolicy(keyARN string) (string, error) {
	e.keyMu.RLock()
	defer e.keyMu.RUnlock()
	k, err := e.keyByARN(keyARN)
	if err != nil {
		return "", err
	}
	return k.GetPolicy(), nil
}

// DisableKey disables the key: Encrypt and Decrypt answer
// DisabledException.
func (e *Emulator) DisableKey(keyARN string) error {
	return e.changeKey(keyARN, func(k cmk.Key) error {
		m := k.GetMetadata()
		if m.DeletionDate != 0 {
			return fmt.Errorf("%w: %s is pending deletion", errInvalid, keyARN)
		}
		m.Enabled, m.KeyState = false, cmk.KeyStateDisabled
		return nil
	})
}

// EnableKey enables the key.
func (e *Emulator) EnableKey(keyARN string) error {
	return e.changeKey(keyARN, func(k cmk.Key) error {
		m := k.GetMetadata()
		if m.DeletionDate != 0 {
			return fmt.Errorf("%w: %s is pending deletion; cancel the deletion first", errInvalid, keyARN)
		}
		m.Enabled, m.KeyState = true, cmk.KeyStateEnabled
		return nil
	})
}

// ScheduleKeyDeletion schedules the key's deletion in days (7 to 30):
// until then crypto operations answer KMSInvalidStateException.
func (e *Emulator) ScheduleKeyDeletion(keyARN string, days int) error {
	if days < 7 || days > 30 {
		return fmt.Errorf("%w: the pending window is 7 to 30 days, not %d", errInvalid, days)
	}
	return e.changeKey(keyARN, func(k cmk.Key) error {
		m := k.GetMetadata()
		m.Enabled, m.KeyState = false, cmk.KeyStatePendingDeletion
		m.DeletionDate = time.Now().AddDate(0, 0, days).Unix()
		return nil
	})
}

// CancelKeyDeletion cancels a scheduled deletion; the key is then
// disabled, as in AWS.
func (e *Emulator) CancelKeyDeletion(keyARN string) error {
	return e.changeKey(keyARN, func(k cmk.Key) error {
		m := k.GetMetadata()
		m.DeletionDate, m.KeyState = 0, cmk.KeyStateDisabled
		return nil
	})
}

// SetKeyRotation turns the key's automatic rotation on or off.
func (e *Emulator) SetKeyRotation(keyARN string, on bool) error {
	return e.changeKey(keyARN, func(k cmk.Key) error {
		a, ok := k.(*cmk.AesKey)
		if !ok {
			return fmt.Errorf("%w: only SYMMETRIC_DEFAULT keys rotate", errInvalid)
		}
		a.NextKeyRotation = time.Time{}
		if on {
			a.NextKeyRotation = time.Now().AddDate(1, 0, 0)
		}
		return nil
	})
}

// RotateKey gives a symmetric key new backing key material now, as
// RotateKeyOnDemand does: new ciphertexts use it, old ones still decrypt,
// and the key's ARN does not change.
func (e *Emulator) RotateKey(keyARN string) error {
	return e.changeKey(keyARN, func(k cmk.Key) error {
		a, ok := k.(*cmk.AesKey)
		if !ok {
			return fmt.Errorf("%w: only SYMMETRIC_DEFAULT keys rotate", errInvalid)
		}
		var b [32]byte
		rand.Read(b[:])
		a.BackingKeys = append(a.BackingKeys, b)
		return nil
	})
}

// BackingKeys returns how many backing keys (rotations + 1) a symmetric
// key has.
func (e *Emulator) BackingKeys(keyARN string) (int, error) {
	e.keyMu.RLock()
	defer e.keyMu.RUnlock()
	k, err := e.keyByARN(keyARN)
	if err != nil {
		return 0, err
	}
	if a, ok := k.(*cmk.AesKey); ok {
		return len(a.BackingKeys), nil
	}
	return 1, nil
}

func (e *Emulator) changeKey(keyARN string, f func(cmk.Key) error) error {
	e.keyMu.Lock()
	defer e.keyMu.Unlock()
	k, err := e.keyByARN(keyARN)
	if err != nil {
		return err
	}
	if err := f(k); err != nil {
		return err
	}
	return e.db.SaveKey(k)
}
