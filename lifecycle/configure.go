package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
)

// maxFieldLen bounds the key id.
const maxFieldLen = 1024

// Configure saves the settings of a tenant's customer key. Allowed in
// states none, draft, scheduled (back to draft: test and proceed again)
// and disabled (a new draft); refused with a [*StateError] once the
// enforcement date has passed. An unset Secret keeps the stored one if
// the settings still need the same kind of secret
// ([Connector.SecretKind]). Invalid settings fail with a [*FieldError] and
// change nothing.
func (s *Service) Configure(ctx context.Context, actor audit.Actor, tenant string, settings KeySettings) (CustomerKey, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return CustomerKey{}, err
	}
	before := rec
	if err := s.allowed(rec, OpConfigure); err != nil {
		s.refused(ctx, actor, tenant, OpConfigure.action(), err)
		return CustomerKey{}, err
	}
	settings.Tenant = tenant
	var saved *KeySettings
	if rec.Version > 0 && rec.SealedSecret.KeyID != "" {
		prev := settingsOf(tenant, rec.Settings)
		saved = &prev
	}
	settings, conn, keepSecret, err := s.checkSettings(ctx, settings, saved)
	if err != nil {
		return CustomerKey{}, err
	}
	full := settings
	if keepSecret {
		stored, err := s.unseal(ctx, rec)
		if err != nil {
			return CustomerKey{}, err
		}
		full.Secret = stored.Secret
	}
	if _, err := conn.Provider(ctx, full); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return CustomerKey{}, fe
		}
		return CustomerKey{}, &FieldError{Field: "key_id", Reason: err.Error()}
	}
	if settings.Secret.IsSet() {
		if rec.SealedSecret, err = s.seal(ctx, tenant, settings.Secret); err != nil {
			return CustomerKey{}, err
		}
	} else if !keepSecret {
		rec.SealedSecret = kms.Wrapped{}
	}
	rec.Settings, rec.SettingsHash, rec.LastTest = settings.stored(), full.Hash(), nil
	rec.State, rec.EnforceAt = StateDraft, time.Time{}
	if rec.Version == 0 {
		rec.Coverage = AllScopes
	}
	if err := s.save(ctx, &rec); err != nil {
		return CustomerKey{}, err
	}
	s.auditChange(ctx, actor, "key.configure", before, rec, nil)
	return s.Status(ctx, tenant)
}

// checkSettings checks ks and returns them as their connector completes
// them, with that connector, and whether an unset secret keeps the
// secret of saved (the settings saved before, if they have a secret).
// The first invalid field is a [*FieldError]. A key id that names the
// platform root key (or a version of it) is refused: the customer's key
// must be the customer's.
func (s *Service) checkSettings(ctx context.Context, ks KeySettings, saved *KeySettings) (KeySettings, Connector, bool, error) {
	conn, err := s.Connector(ks.Provider)
	if err != nil {
		return ks, nil, false, err
	}
	ks.Provider = conn.Name()
	switch {
	case ks.KeyID == "":
		return ks, nil, false, &FieldError{Field: "key_id", Reason: "is empty"}
	case len(ks.KeyID) > maxFieldLen:
		return ks, nil, false, &FieldError{Field: "key_id", Reason: fmt.Sprintf("is %d bytes, the limit is %d", len(ks.KeyID), maxFieldLen)}
	case strings.ContainsFunc(ks.KeyID, func(r rune) bool { return r < 0x21 || r == 0x7f }):
		return ks, nil, false, &FieldError{Field: "key_id", Reason: "contains a space or control character"}
	case s.namesPlatformKey(ks.KeyID):
		return ks, nil, false, &FieldError{Field: "key_id", Reason: "names the platform's own root key; give the identifier of a key in your own vault"}
	}
	keep := !ks.Secret.IsSet() && saved != nil && saved.Provider == ks.Provider
	if keep {
		kind := conn.SecretKind(ks)
		keep = kind != "" && kind == conn.SecretKind(*saved)
	}
	ks, err = conn.CheckSettings(ctx, ks, keep)
	if err != nil {
		return ks, nil, false, err
	}
	return ks, conn, keep, nil
}

// Connector returns the connector of the provider name ("" names the only
// one when there is one), or a [*FieldError] on provider that lists the
// providers offered.
func (s *Service) Connector(name string) (Connector, error) {
	if name == "" && len(s.cfg.Connectors) == 1 {
		return s.cfg.Connectors[0], nil
	}
	for _, c := range s.cfg.Connectors {
		if c.Name() == name {
			return c, nil
		}
	}
	names := make([]string, len(s.cfg.Connectors))
	for i, c := range s.cfg.Connectors {
		names[i] = fmt.Sprintf("%q", c.Name())
	}
	if name == "" {
		return nil, &FieldError{Field: "provider", Reason: "is empty; use one of " + strings.Join(names, ", ")}
	}
	return nil, &FieldError{Field: "provider", Reason: fmt.Sprintf("is %q; this platform offers %s", name, strings.Join(names, ", "))}
}
