package azurekv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/openbyok/byok/kms"
)

// Limits of [ListKeys]: a vault holds at most this many keys in a listing,
// and a key at most this many versions (the newest). Each listed version
// costs one get call, so the bounds keep a listing within a few hundred
// calls of the vault's budget.
const (
	MaxListedKeys     = 100
	MaxListedVersions = 10
)

// VaultKey is one key of a vault, as [ListKeys] reports it.
type VaultKey struct {
	// Name is the key's name and KeyID its versionless identifier: a
	// configuration with KeyID follows the key's current version.
	Name  string
	KeyID string
	// Managed is set for a key that backs a Key Vault certificate; its
	// lifetime is the certificate's.
	Managed bool
	// Versions are the key's newest versions, newest first, at most
	// MaxListedVersions; MoreVersions says that older ones were left out.
	Versions     []KeyVersion
	MoreVersions bool
}

// KeyVersion is one version of a listed key. Type and Size come from the
// version's public key; they are "" and 0 when the vault refused to read
// the version (no read right, or a disabled version).
type KeyVersion struct {
	// KeyID is the versioned identifier: a configuration with it is pinned
	// to this version.
	KeyID   string
	Version string
	Enabled bool
	Type    string // "RSA", "RSA-HSM", "EC", …
	Size    int    // bits of the RSA modulus; 0 for other types
	Created time.Time
	// NotBefore and Expires are the version's activation and expiration
	// dates; zero when unset.
	NotBefore, Expires time.Time
}

// Usable reports whether byok could use the version as it stands: an
// enabled RSA or RSA-HSM key of at least 2048 bits within its validity
// window at now. It does not check rights or the vault's purge protection
// ([TestConfiguration] does).
func (v KeyVersion) Usable(now time.Time) bool {
	return v.Enabled && (v.Type == "RSA" || v.Type == "RSA-HSM") && v.Size >= 2048 &&
		(v.NotBefore.IsZero() || !now.Before(v.NotBefore)) && (v.Expires.IsZero() || now.Before(v.Expires))
}

// ParseVaultURL parses a vault's URL (https://contoso.vault.azure.net, or
// any key identifier in it) and returns the vault as a KeyID with no key
// name. Anything else fails with a [*KeyIDError].
func ParseVaultURL(s string) (KeyID, error) {
	if id, err := ParseKeyID(s); err == nil {
		return KeyID{Host: id.Host, Vault: id.Vault, ManagedHSM: id.ManagedHSM, PrivateLink: id.PrivateLink, Cloud: id.Cloud}, nil
	}
	trimmed := strings.TrimSuffix(s, "/")
	if s == "" || strings.Contains(strings.TrimPrefix(trimmed, "https://"), "/") {
		return KeyID{}, &KeyIDError{Input: s, Reason: "it is not a vault URL such as https://contoso.vault.azure.net"}
	}
	id, err := ParseKeyID(trimmed + "/keys/k")
	if err != nil {
		var ke *KeyIDError
		if errors.As(err, &ke) {
			return KeyID{}, &KeyIDError{Input: s, Reason: ke.Reason}
		}
		return KeyID{}, err
	}
	id.Name = ""
	return id, nil
}

// ListKeys lists the keys of the vault at vaultURL (or of the vault of a
// key identifier) that cfg's principal can see, by name, each with its
// newest versions first, through azkeys' pagers and one get per version
// for its type and size. cfg.KeyID is ignored. It needs the list right on
// keys (keys/read, as in Key Vault Crypto User or Crypto Service
// Encryption User); errors are [*kms.Error]s classified as a provider
// call's ([Classify]), and a malformed vaultURL is [kms.Invalid]. At most
// [MaxListedKeys] keys are listed; more is an [kms.Invalid] error that says
// to type the key identifier instead.
//
// With the [PlatformApp] credential only the keys whose current version
// carries the tag [OwnerTagName]=cfg.OwnerTag are listed: the platform's
// own app may see the vaults of every directory that consented to it, and
// a tenant must not learn the key names of another directory through it.
func ListKeys(ctx context.Context, cfg Config, vaultURL string) ([]VaultKey, error) {
	vault, err := ParseVaultURL(vaultURL)
	if err != nil {
		return nil, Classify("list", vaultURL, err)
	}
	// The key id only picks the cloud of the SDK's options.
	cfg.KeyID = vault.VaultURL() + "/keys/list"
	p, err := New(cfg)
	if err != nil {
		return nil, &kms.Error{Op: "list", KeyID: vaultURL, Class: kms.Invalid, Reason: kms.ReasonBadRequest, Err: err}
	}
	var keys []VaultKey
	err = p.call(ctx, "list", vault.VaultURL(), vault, func(ctx context.Context, c *azkeys.Client) error {
		pager := c.NewListKeyPropertiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, kp := range page.Value {
				if kp == nil || kp.KID == nil || !cfg.owns(tags(kp.Tags)) {
					continue
				}
				if len(keys) == MaxListedKeys {
					return &kms.Error{Op: "list", KeyID: vaultURL, Class: kms.Invalid, Reason: kms.ReasonBadRequest,
						Err: fmt.Errorf("azurekv: the vault %s has more than %d keys; type the key identifier instead of picking it", vault.Vault, MaxListedKeys)}
				}
				name := kp.KID.Name()
				k := vault
				k.Name = name
				keys = append(keys, VaultKey{Name: name, KeyID: k.String(), Managed: kp.Managed != nil && *kp.Managed})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b VaultKey) int { return cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	for i := range keys {
		if err := p.listVersions(ctx, vault, &keys[i]); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// listVersions fills k's versions, newest first, with their type and size.
func (p *Provider) listVersions(ctx context.Context, vault KeyID, k *VaultKey) error {
	id := vault
	id.Name = k.Name
	var all []KeyVersion
	err := p.call(ctx, "list", id.String(), id, func(ctx context.Context, c *azkeys.Client) error {
		pager := c.NewListKeyPropertiesVersionsPager(k.Name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, kp := range page.Value {
				if kp == nil || kp.KID == nil || kp.KID.Version() == "" {
					continue
				}
				v := KeyVersion{Version: strings.ToLower(kp.KID.Version())}
				v.KeyID = id.WithVersion(v.Version).String()
				if a := kp.Attributes; a != nil {
					v.Enabled = a.Enabled != nil && *a.Enabled
					v.Created = timeOf(a.Created)
					v.NotBefore = timeOf(a.NotBefore)
					v.Expires = timeOf(a.Expires)
				}
				all = append(all, v)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Newest first. Creation times have one-second resolution, so the
	// key's current version (a versionless get) goes first whatever the
	// ties.
	slices.SortStableFunc(all, func(a, b KeyVersion) int { return b.Created.Compare(a.Created) })
	current, err := p.describeListed(ctx, id.String())
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(all, func(v KeyVersion) bool { return current.KeyID == v.KeyID }); i >= 0 {
		cur := all[i]
		cur.Type, cur.Size = current.Type, current.Size
		all = slices.Insert(slices.Delete(all, i, i+1), 0, cur)
	}
	if len(all) > MaxListedVersions {
		all, k.MoreVersions = all[:MaxListedVersions], true
	}
	for i := range all {
		if all[i].KeyID == current.KeyID {
			continue
		}
		info, err := p.describeListed(ctx, all[i].KeyID)
		if err != nil {
			return err
		}
		all[i].Type, all[i].Size = info.Type, info.Size
	}
	k.Versions = all
	return nil
}

// describeListed describes keyID for a listing: a version the vault
// refuses to read (no read right, disabled, deleted meanwhile) gives a
// zero KeyInfo, shown with what the list said; other errors are returned.
func (p *Provider) describeListed(ctx context.Context, keyID string) (kms.KeyInfo, error) {
	info, err := p.Describe(ctx, keyID)
	if err != nil && kms.ClassOf(err) == kms.Authoritative {
		return kms.KeyInfo{}, nil
	}
	return info, err
}

// tags returns the tags of an azkeys answer without their nil values.
func tags(m map[string]*string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if v != nil {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = *v
		}
	}
	return out
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
