// Package gcp is the [lifecycle.Connector] of Google Cloud KMS, over
// kms/gcpkms: a tenant's settings name its key by resource name
// (KeySettings.KeyID), a crypto key or a pinned version of one, and carry
// no options and no secret. byok reaches every customer's key as the
// platform's own service account (from byok's configuration, the gcp:
// block), which the customer grants roles/cloudkms.cryptoKeyEncrypterDecrypter
// and roles/cloudkms.viewer on the key.
//
// # Versions
//
// A crypto key has versions; Encrypt uses its primary one and the
// ciphertext names it, so Decrypt needs no version. Settings with a crypto
// key name follow its primary version: when the customer rotates (a new
// primary version), the next version check re-wraps the share under it,
// and the old version becomes safe to disable once no share records it.
// Settings with a version name (…/cryptoKeyVersions/N) are pinned to it.
package gcp

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/openbyok/byok/kms/gcpkms"
	"github.com/openbyok/byok/lifecycle"
)

// Provider is the provider name of Google Cloud KMS in settings:
// lifecycle.KeySettings.Provider.
const Provider = "gcp-kms"

// Options are the GCP block of a tenant's key settings
// (lifecycle.KeySettings.Options): empty. The customer names only the key;
// the service account byok calls as is the platform's, not the customer's.
// The type exists so that settings with any field are refused.
type Options struct{}

// Settings returns the key settings of a Cloud KMS key: its resource
// name. GCP settings have no options and no secret.
func Settings(keyName string) lifecycle.KeySettings {
	return lifecycle.KeySettings{Provider: Provider, KeyID: keyName, Options: Options{}.JSON()}
}

// JSON returns o as the canonical JSON object of settings' Options: "{}".
func (o Options) JSON() json.RawMessage { return json.RawMessage(`{}`) }

// OptionsOf decodes the GCP options of s, which must be empty: any field
// is refused with a *lifecycle.FieldError that names it.
func OptionsOf(s lifecycle.KeySettings) (Options, error) {
	var o Options
	if len(bytes.TrimSpace(s.Options)) == 0 {
		return o, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(s.Options, &fields); err != nil {
		return o, &lifecycle.FieldError{Field: "options", Reason: "is not a JSON object; a Cloud KMS key takes no options besides key_id"}
	}
	if names := slices.Sorted(maps.Keys(fields)); len(names) > 0 {
		return o, &lifecycle.FieldError{Field: names[0], Reason: "is not a setting of a Cloud KMS key; use key_id (the key's resource name) only: byok calls as the platform's service account, which you grant on the key"}
	}
	return o, nil
}

// Name implements lifecycle.Connector: [Provider].
func (c *Connector) Name() string { return Provider }

// SecretKind implements lifecycle.Connector: "", GCP settings never hold
// a secret (the platform's credentials are its own, from its
// configuration).
func (c *Connector) SecretKind(lifecycle.KeySettings) string { return "" }

// SplitKeyID implements lifecycle.Connector. A version name
// (…/cryptoKeyVersions/N) is (the crypto key's name, "N"); a crypto key
// name pins no version (key = the name, version ""): the lifecycle follows
// its primary version. Anything else is (id, "").
func (c *Connector) SplitKeyID(id string) (key, version string) {
	n, err := gcpkms.ParseKeyName(id)
	if err != nil || n.Version == 0 {
		return id, ""
	}
	return n.Key(), id[len(n.Key())+len("/cryptoKeyVersions/"):]
}

// CheckSettings implements lifecycle.Connector: the resource name's form
// (gcpkms.ParseKeyName), no options, no secret. It makes no remote call.
func (c *Connector) CheckSettings(ctx context.Context, s lifecycle.KeySettings, keepSecret bool) (lifecycle.KeySettings, error) {
	if _, err := OptionsOf(s); err != nil {
		return s, err
	}
	if s.Secret.IsSet() {
		return s, &lifecycle.FieldError{Field: "secret", Reason: "must be empty: byok reaches Cloud KMS as the platform's own service account, which you grant on the key, never with a customer's key file"}
	}
	s.KeyID = strings.TrimSpace(s.KeyID)
	if s.KeyID == "" {
		return s, &lifecycle.FieldError{Field: "key_id", Reason: "is empty; enter the key's resource name, projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY (Security > Key Management > the key > Copy resource name)"}
	}
	if _, err := gcpkms.ParseKeyName(s.KeyID); err != nil {
		return s, &lifecycle.FieldError{Field: "key_id", Reason: strings.TrimPrefix(err.Error(), "gcpkms: ")}
	}
	s.Options = Options{}.JSON()
	return s, nil
}
