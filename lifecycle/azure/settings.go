package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/lifecycle"
)

// Provider is the provider name of Azure Key Vault (and Managed HSM) in
// settings: lifecycle.KeySettings.Provider.
const Provider = "azure-key-vault"

// Options are the Azure block of a tenant's key settings
// (lifecycle.KeySettings.Options): the directory to sign in to, the app to
// sign in as, and how.
type Options struct {
	// DirectoryID is the customer's Entra tenant (directory) id; with
	// [CredentialManagedIdentity], the platform's own (the default).
	DirectoryID string `json:"directory_id"`
	// ClientID is the app the platform signs in as: the platform's app,
	// or the customer's own; empty with [CredentialManagedIdentity].
	ClientID string `json:"client_id"`
	// Credential is how the platform signs in.
	Credential CredentialMode `json:"credential"`
}

// Settings returns the key settings of an Azure key: its identifier
// (https://<vault>.vault.azure.net/keys/<name>[/<version>]), o, and the
// secret of o's credential, if it has one.
func Settings(keyID string, o Options, secret lifecycle.Secret) lifecycle.KeySettings {
	return lifecycle.KeySettings{Provider: Provider, KeyID: keyID, Options: o.JSON(), Secret: secret}
}

// JSON returns o as the canonical JSON object of settings' Options.
func (o Options) JSON() json.RawMessage {
	b, _ := json.Marshal(o) // three strings: never fails
	return b
}

// OptionsOf decodes the Azure options of s. Fields other than those of
// [Options] are refused with a *lifecycle.FieldError that names them.
func OptionsOf(s lifecycle.KeySettings) (Options, error) {
	var o Options
	if len(bytes.TrimSpace(s.Options)) == 0 {
		return o, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(s.Options, &fields); err != nil {
		return o, &lifecycle.FieldError{Field: "options", Reason: "is not a JSON object of Azure settings (directory_id, client_id, credential)"}
	}
	known := []string{"directory_id", "client_id", "credential"}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(known, name) {
			return o, &lifecycle.FieldError{Field: name, Reason: "is not a setting of an Azure key; use key_id, directory_id, client_id, credential and secret"}
		}
	}
	if err := json.Unmarshal(s.Options, &o); err != nil {
		return o, &lifecycle.FieldError{Field: "options", Reason: "directory_id, client_id and credential must be strings"}
	}
	return o, nil
}

// Limits of the fields of settings.
const (
	maxFieldLen  = 1024
	maxSecretLen = kms.MaxPlaintext // a client secret (Azure makes them 40 characters)
	// maxCertificateSecretLen bounds a certificate credential's key and
	// certificates (about 3.7 KB each for RSA-3072), two during a rollover.
	maxCertificateSecretLen = 16 << 10
)

// Name implements lifecycle.Connector: [Provider].
func (c *Connector) Name() string { return Provider }

// SecretKind implements lifecycle.Connector: the credential mode, when it
// has a secret (client-secret, certificate).
func (c *Connector) SecretKind(s lifecycle.KeySettings) string {
	o, err := OptionsOf(s)
	if err != nil || !o.Credential.HasSecret() {
		return ""
	}
	return string(o.Credential)
}

// SplitKeyID implements lifecycle.Connector with the Azure id shape
// …/keys/<name>[/<version>]; an id of another shape names a version
// if it holds a '/'.
func (c *Connector) SplitKeyID(id string) (key, version string) {
	id = strings.TrimSuffix(id, "/")
	if before, rest, ok := strings.Cut(id, "/keys/"); ok {
		name, version, _ := strings.Cut(rest, "/")
		return before + "/keys/" + name, version
	}
	key, version, _ = strings.Cut(id, "/")
	return key, version
}

// CheckSettings implements lifecycle.Connector: the directory and client
// ids (which the managed-identity and workload-identity modes need or
// refuse), the credential mode and its secret. With the managed identity
// the directory defaults to the platform's, and must be it.
func (c *Connector) CheckSettings(ctx context.Context, s lifecycle.KeySettings, keepSecret bool) (lifecycle.KeySettings, error) {
	o, err := OptionsOf(s)
	if err != nil {
		return s, err
	}
	if o.Credential == CredentialManagedIdentity && o.DirectoryID == "" {
		if mi := c.PlatformIdentities(ctx).ManagedIdentity; mi != nil {
			o.DirectoryID = mi.TenantID
		}
	}
	for _, f := range []struct{ name, v string }{{"directory_id", o.DirectoryID}, {"client_id", o.ClientID}} {
		if f.v == "" && (f.name == "client_id" && o.Credential == CredentialWorkloadIdentity || o.Credential == CredentialManagedIdentity) {
			continue // checkIdentity says what these modes need
		}
		if f.v == "" {
			return s, &lifecycle.FieldError{Field: f.name, Reason: "is empty"}
		}
		if len(f.v) > maxFieldLen {
			return s, &lifecycle.FieldError{Field: f.name, Reason: fmt.Sprintf("is %d bytes, the limit is %d", len(f.v), maxFieldLen)}
		}
		if strings.ContainsFunc(f.v, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			return s, &lifecycle.FieldError{Field: f.name, Reason: "contains a space or control character"}
		}
	}
	switch o.Credential {
	case CredentialPlatformApp:
		if s.Secret.IsSet() {
			return s, &lifecycle.FieldError{Field: "secret", Reason: "must be empty with the platform-app credential: the platform signs in as its own app"}
		}
	case CredentialClientSecret, CredentialCertificate:
		if !s.Secret.IsSet() && !keepSecret {
			return s, &lifecycle.FieldError{Field: "secret", Reason: fmt.Sprintf("is empty; the %s credential needs one", o.Credential)}
		}
	case CredentialManagedIdentity, CredentialWorkloadIdentity:
		if err := c.checkIdentity(ctx, o, s.Secret.IsSet()); err != nil {
			return s, err
		}
	default:
		return s, &lifecycle.FieldError{Field: "credential", Reason: fmt.Sprintf("is %q; use %q, %q, %q, %q or %q",
			o.Credential, CredentialPlatformApp, CredentialClientSecret, CredentialCertificate, CredentialManagedIdentity, CredentialWorkloadIdentity)}
	}
	limit := maxSecretLen
	if o.Credential == CredentialCertificate {
		limit = maxCertificateSecretLen
	}
	if n := s.Secret.Len(); n > limit {
		return s, &lifecycle.FieldError{Field: "secret", Reason: fmt.Sprintf("is %d bytes, the limit is %d", n, limit)}
	}
	s.Options = o.JSON()
	return s, nil
}
