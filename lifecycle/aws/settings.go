// Package aws is the [lifecycle.Connector] of AWS KMS, over kms/awskms: a
// tenant's settings name its key by ARN (KeySettings.KeyID) and carry the
// AWS block [Options]; byok reaches the key either as the platform's own
// IAM principal, which the key policy names, or by assuming a role in the
// customer's account with the external id byok generated for the tenant.
//
// # Versions
//
// A KMS key is versionless: KMS rotates its backing key material inside
// the key (yearly, or on demand) and the ciphertext names the backing key,
// so no re-wrap is ever needed for it. What the lifecycle records as the
// "version" of a share is the key ARN KMS used: settings with an alias
// ARN follow the alias (when the customer points it at another key, the
// next version check re-wraps the share under the new key, and the old
// key becomes safe to retire once no share records its ARN); settings
// with a key ARN are pinned to that key. See docs/aws-setup.md.
package aws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/openbyok/byok/kms/awskms"
	"github.com/openbyok/byok/lifecycle"
)

// Provider is the provider name of AWS KMS in settings:
// lifecycle.KeySettings.Provider.
const Provider = "aws-kms"

// Options are the AWS block of a tenant's key settings
// (lifecycle.KeySettings.Options). Empty: byok calls KMS as the
// platform's own principal, which the key policy names. With RoleARN,
// byok assumes that role in the customer's account with ExternalID, which
// the role's trust policy requires.
type Options struct {
	// RoleARN is the customer's role byok assumes, e.g.
	// arn:aws:iam::111122223333:role/byok-access; empty for direct access.
	RoleARN string `json:"role_arn,omitempty"`
	// ExternalID is the external id byok generated for the tenant
	// (awskms.NewExternalID); required with RoleARN, refused without.
	ExternalID string `json:"external_id,omitempty"`
}

// Settings returns the key settings of an AWS KMS key: its key or alias
// ARN and o. AWS settings have no secret.
func Settings(keyARN string, o Options) lifecycle.KeySettings {
	return lifecycle.KeySettings{Provider: Provider, KeyID: keyARN, Options: o.JSON()}
}

// JSON returns o as the canonical JSON object of settings' Options ("{}"
// for direct access).
func (o Options) JSON() json.RawMessage {
	b, _ := json.Marshal(o) // two strings: never fails
	return b
}

// knownFields are the JSON names of [Options].
var knownFields = []string{"role_arn", "external_id"}

// OptionsOf decodes the AWS options of s; empty Options are direct access.
// Fields other than those of [Options] are refused with a
// *lifecycle.FieldError that names them.
func OptionsOf(s lifecycle.KeySettings) (Options, error) {
	var o Options
	if len(bytes.TrimSpace(s.Options)) == 0 {
		return o, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(s.Options, &fields); err != nil {
		return o, &lifecycle.FieldError{Field: "options", Reason: "is not a JSON object of AWS settings (role_arn, external_id)"}
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(knownFields, name) {
			return o, &lifecycle.FieldError{Field: name, Reason: "is not a setting of an AWS KMS key; use key_id (the key or alias ARN), role_arn and external_id"}
		}
	}
	if err := json.Unmarshal(s.Options, &o); err != nil {
		return o, &lifecycle.FieldError{Field: "options", Reason: "role_arn and external_id must be strings"}
	}
	return o, nil
}

var (
	roleARNRE    = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
	externalIDRE = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

// Name implements lifecycle.Connector: [Provider].
func (c *Connector) Name() string { return Provider }

// SecretKind implements lifecycle.Connector: "", AWS settings never hold
// a secret (the platform's credentials are its own, from its
// configuration).
func (c *Connector) SecretKind(lifecycle.KeySettings) string { return "" }

// SplitKeyID implements lifecycle.Connector. An alias ARN pins no version
// (key = the alias ARN, version ""): the lifecycle follows the key the
// alias points to. A key ARN is its own version (key = version = the key
// ARN): KMS rotates its backing key inside it, which needs no re-wrap.
// Anything else is (id, "").
func (c *Connector) SplitKeyID(id string) (key, version string) {
	a, err := awskms.ParseKeyARN(id)
	if err != nil || a.IsAlias() {
		return id, ""
	}
	return id, id
}

// CheckSettings implements lifecycle.Connector: the key or alias ARN, and
// the role ARN and external id, which go together; a secret is refused.
// It makes no remote call.
func (c *Connector) CheckSettings(ctx context.Context, s lifecycle.KeySettings, keepSecret bool) (lifecycle.KeySettings, error) {
	o, err := OptionsOf(s)
	if err != nil {
		return s, err
	}
	if s.Secret.IsSet() {
		return s, &lifecycle.FieldError{Field: "secret", Reason: "must be empty: byok reaches AWS KMS with the platform's own credentials (and, with role_arn, the role it assumes), never a customer's secret"}
	}
	s.KeyID = strings.TrimSpace(s.KeyID)
	if s.KeyID == "" {
		return s, &lifecycle.FieldError{Field: "key_id", Reason: "is empty; enter the key ARN (arn:aws:kms:<region>:<account>:key/<id>) or an alias ARN (…:alias/<name>) from the KMS console"}
	}
	if _, err := awskms.ParseKeyARN(s.KeyID); err != nil {
		return s, &lifecycle.FieldError{Field: "key_id", Reason: strings.TrimPrefix(err.Error(), "awskms: ")}
	}
	o.RoleARN, o.ExternalID = strings.TrimSpace(o.RoleARN), strings.TrimSpace(o.ExternalID)
	switch {
	case o.RoleARN == "" && o.ExternalID != "":
		return s, &lifecycle.FieldError{Field: "external_id", Reason: "is set without a role_arn; enter the ARN of the role byok assumes, or clear the external id to grant the platform's principal in the key policy"}
	case o.RoleARN == "":
	case !roleARNRE.MatchString(o.RoleARN):
		return s, &lifecycle.FieldError{Field: "role_arn", Reason: fmt.Sprintf("%q is not a role ARN such as arn:aws:iam::111122223333:role/byok-access (IAM > Roles > the role > ARN)", o.RoleARN)}
	case o.ExternalID == "":
		return s, &lifecycle.FieldError{Field: "external_id", Reason: "is empty; byok assumes a customer's role only with the external id it generated for the tenant, which the role's trust policy requires (sts:ExternalId)"}
	case !externalIDRE.MatchString(o.ExternalID) || len(o.ExternalID) < 2 || len(o.ExternalID) > 1224:
		return s, &lifecycle.FieldError{Field: "external_id", Reason: "must be 2 to 1224 letters, digits and +=,.@:/-_ (use the one byok generated for the tenant)"}
	}
	s.Options = o.JSON()
	return s, nil
}
