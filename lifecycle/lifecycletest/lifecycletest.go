// Package lifecycletest helps test code that runs a lifecycle.Service
// without Azure: a Connector over a kmstest.Fake.
package lifecycletest

import (
	"context"
	"strings"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// Connector is a lifecycle.Connector that reaches the keys of a
// kmstest.Fake: key ids "fake:NAME[/vN]". Its settings are Azure's, named
// and checked as the Azure connector does (an Azure connector that offers
// no platform identity), so that the API and the console face the same
// rules as in production. Its Test does a real wrap/unwrap round trip on
// the fake, so a failure injected into the fake (a role removed) fails
// the report.
type Connector struct {
	AzureRules
	KMS *kmstest.Fake
}

// AzureRules are the settings methods of a lifecycle.Connector as the
// Azure connector has them (one that offers no platform identity), for
// fake connectors to embed: their settings are named, checked and split
// as in production.
type AzureRules struct{}

// rules is the Azure connector AzureRules delegates to.
var rules = &azure.Connector{}

// Name returns azure.Provider.
func (AzureRules) Name() string { return azure.Provider }

// CheckSettings checks s as the Azure connector does.
func (AzureRules) CheckSettings(ctx context.Context, s lifecycle.KeySettings, keepSecret bool) (lifecycle.KeySettings, error) {
	return rules.CheckSettings(ctx, s, keepSecret)
}

// SecretKind is the Azure connector's.
func (AzureRules) SecretKind(s lifecycle.KeySettings) string { return rules.SecretKind(s) }

// SplitKeyID splits "fake:NAME/vN" into "fake:NAME" and "vN", as the
// Azure connector splits ids of other shapes than its own.
func (AzureRules) SplitKeyID(id string) (key, version string) { return rules.SplitKeyID(id) }

// Provider returns the fake for a "fake:" key id.
func (c Connector) Provider(ctx context.Context, s lifecycle.KeySettings) (kms.Provider, error) {
	if !strings.HasPrefix(s.KeyID, "fake:") {
		return nil, &byok.InputError{Arg: "key_id", Reason: "is not a fake:NAME key id"}
	}
	return c.KMS, nil
}

// Test checks the id's form (a versioned id is a warning: it does not
// follow rotations) and does a wrap/unwrap round trip.
func (c Connector) Test(ctx context.Context, s lifecycle.KeySettings) (lifecycle.Report, error) {
	r := lifecycle.Report{SettingsHash: s.Hash(), At: time.Now()}
	id := lifecycle.Check{Name: "key-id", Outcome: lifecycle.Pass, Detail: "versionless: follows the key's current version"}
	switch {
	case !strings.HasPrefix(s.KeyID, "fake:"):
		id = lifecycle.Check{Name: "key-id", Outcome: lifecycle.Fail, Detail: "not a fake:NAME key id", Remedy: "give fake:NAME"}
	case strings.Contains(s.KeyID, "/"):
		id = lifecycle.Check{Name: "key-id", Outcome: lifecycle.Warn, Detail: "versioned: pinned to one version",
			Remedy: "give the versionless id to follow rotations"}
	}
	r.Checks = append(r.Checks, id)
	w, err := c.KMS.Wrap(ctx, s.KeyID, []byte("test configuration"))
	if err == nil {
		_, err = c.KMS.Unwrap(ctx, w)
		r.KeyID = w.KeyID
	}
	rt := lifecycle.Check{Name: "round-trip", Outcome: lifecycle.Pass, Detail: "wrap and unwrap succeeded"}
	if err != nil {
		rt = lifecycle.Check{Name: "round-trip", Outcome: lifecycle.Fail, Detail: string(kms.ReasonOf(err)),
			Remedy: "grant the platform Key Vault Crypto User on the vault"}
	}
	r.Checks = append(r.Checks, rt)
	return r, nil
}
