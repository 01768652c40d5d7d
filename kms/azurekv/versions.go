package azurekv

import (
	"context"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// Versions returns the versioned ids of every version of the key keyID
// names (versioned or not), in the vault's order. The platform key
// inventory uses it to show a version that nothing depends on any more as
// safe to retire. It lists with keys/read (Key Vault Crypto Service
// Encryption User and the Managed HSM role of that name grant it).
func (p *Provider) Versions(ctx context.Context, keyID string) ([]string, error) {
	id, err := ParseKeyID(keyID)
	if err != nil {
		return nil, Classify("versions", keyID, err)
	}
	id = id.WithVersion("")
	var ids []string
	err = p.call(ctx, "versions", id.String(), id, func(ctx context.Context, c *azkeys.Client) error {
		ids = ids[:0]
		pager := c.NewListKeyPropertiesVersionsPager(id.Name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, kp := range page.Value {
				if kp != nil && kp.KID != nil && kp.KID.Version() != "" {
					ids = append(ids, id.WithVersion(strings.ToLower(kp.KID.Version())).String())
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
