package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
)

// ListVaultKeys lists the keys and versions of the vault at vaultURL (a
// vault URL or any key identifier in it; "" for the vault of the saved
// key) with the tenant's saved credential, for picking the key. It needs
// saved settings ([*StateError] in state none) and a connector that is a
// [KeyLister] (else an error wrapping [errors.ErrUnsupported]). The call is
// audited as a vault call ("vault.listkeys", purpose tenant-request) whose
// event id is the request id sent to the vault; vault errors are
// classified [*kms.Error]s, a malformed vaultURL wraps
// [byok.ErrInvalidInput].
func (s *Service) ListVaultKeys(ctx context.Context, actor audit.Actor, tenant, vaultURL string) ([]VaultKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if rec.Version == 0 {
		return nil, &StateError{Tenant: tenant, State: rec.State, Op: "list-keys",
			Reason: "save the key settings (and their credential) first: the vault is listed with them", Allowed: []Op{OpConfigure}}
	}
	conn, err := s.Connector(rec.Settings.Provider)
	if err != nil {
		return nil, err
	}
	kl, ok := conn.(KeyLister)
	if !ok {
		return nil, fmt.Errorf("lifecycle: the %s connector cannot list a vault's keys; type the key identifier: %w", rec.Settings.Provider, errors.ErrUnsupported)
	}
	if vaultURL == "" {
		vaultURL = rec.Settings.KeyID
	}
	settings, err := s.unseal(ctx, rec)
	if err != nil {
		return nil, err
	}
	id := audit.NewID()
	keys, err := kl.ListKeys(kms.WithOperationID(ctx, id), settings, vaultURL)
	e := audit.Event{Tenant: tenant, ID: id, Actor: actor, Action: "vault.listkeys", Target: vaultURL, Outcome: audit.Success,
		Vault: &audit.VaultCall{Operation: "listKeys", KeyID: vaultURL, Purpose: audit.PurposeTenantRequest, RequestID: id}}
	if err != nil {
		e.Outcome, e.Reason = audit.Failure, string(kms.ReasonOf(err))+": "+err.Error()
	}
	s.record(context.WithoutCancel(ctx), e)
	if err != nil {
		if kms.ClassOf(err) == kms.Invalid {
			return nil, fmt.Errorf("lifecycle: listing the keys of %s: %w: %w", vaultURL, byok.ErrInvalidInput, err)
		}
		return nil, fmt.Errorf("lifecycle: listing the keys of %s: %w", vaultURL, err)
	}
	return keys, nil
}
