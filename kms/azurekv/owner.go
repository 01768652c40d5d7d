package azurekv

import (
	"context"
	"errors"
	"fmt"

	"github.com/openbyok/byok/kms"
)

// OwnerTagName is the key tag whose value proves which byok tenant owns a
// key used with the [PlatformApp] credential: the key's owner sets it to
// the byok tenant id ([Config.OwnerTag]). Only someone allowed to write
// the key (Microsoft.KeyVault/vaults/keys/update/action) can set it, so a
// tenant cannot claim another directory's key, even one whose directory
// consented to the platform's app.
const OwnerTagName = "byok-tenant"

// TagKeyCommand returns the Azure CLI command that sets the owner tag
// [OwnerTagName]=tenant on the key id names (on its version, if id has
// one; else on its current version).
func TagKeyCommand(id KeyID, tenant string) string {
	where := "--vault-name " + id.Vault
	if id.ManagedHSM {
		where = "--hsm-name " + id.Vault
	}
	cmd := "az keyvault key set-attributes " + where + " --name " + id.Name
	if id.Version != "" {
		cmd += " --version " + id.Version
	}
	return cmd + " --tags " + OwnerTagName + "=" + tenant
}

// sharedIdentity reports whether c signs in with an identity of the
// platform that several byok tenants share ([PlatformApp], or any
// credential with [Config.SharedIdentity]): such a credential does not
// prove control of the directory, so the key must carry the owner tag.
func (c Config) sharedIdentity() bool {
	return c.Credential != nil && (c.SharedIdentity || c.Credential.Kind() == PlatformApp{}.Kind())
}

// sharedWhy says, for a report, why a key reached with c's shared
// identity must prove its owner.
func (c Config) sharedWhy() string {
	if c.Credential.Kind() == (PlatformApp{}).Kind() {
		return "byok signs in with the platform's own app, which every directory that consented to it lets in"
	}
	return fmt.Sprintf("byok signs in with the platform's own identity (%s), which other byok tenants use too", c.Credential)
}

// owns reports whether a key with these tags may be used with c: always
// with the customer's own credential; with a shared identity only if the
// key carries [OwnerTagName]=c.OwnerTag.
func (c Config) owns(tags map[string]string) bool {
	return !c.sharedIdentity() || (c.OwnerTag != "" && tags[OwnerTagName] == c.OwnerTag)
}

// ownerRemedy tells the key's owner how to tag the key id names.
func (c Config) ownerRemedy(id KeyID) string {
	return fmt.Sprintf("an administrator of the key's vault adds the tag %s with the value %s to the key: in the Azure portal, Key vault > Keys > %s > the version in use > Tags, then Apply; or run: %s",
		OwnerTagName, c.OwnerTag, id.Name, TagKeyCommand(id, c.OwnerTag))
}

// checkOwner returns nil if p may wrap under keyID: always with the
// customer's own credential; with a shared identity once a Describe of keyID
// (made here unless one already succeeded) showed the owner tag. A key
// without it fails with class [kms.Authoritative] and reason
// [kms.ReasonNotOwned]; a failed Describe returns its error as op's.
func (p *Provider) checkOwner(ctx context.Context, op, keyID string, id KeyID) error {
	if !p.cfg.sharedIdentity() {
		return nil
	}
	if _, ok := p.owned.Load(keyID); ok {
		return nil
	}
	d, err := p.describe(ctx, keyID)
	var ke *kms.Error
	if errors.As(err, &ke) {
		e := *ke
		e.Op = op
		return &e
	}
	if err != nil {
		return err
	}
	if p.cfg.owns(d.Tags) {
		return nil
	}
	return &kms.Error{Op: op, KeyID: keyID, Class: kms.Authoritative, Reason: kms.ReasonNotOwned,
		Err: fmt.Errorf("azurekv: the key does not carry the tag %s=%s, which proves that this byok tenant owns it when the platform signs in with its own identity; %s",
			OwnerTagName, p.cfg.OwnerTag, p.cfg.ownerRemedy(id))}
}
