package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/openbyok/byok/client"
)

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// printKey prints the "Enterprise Key" page of a tenant.
func printKey(w io.Writer, asJSON bool, k client.Key) error {
	if asJSON {
		return printJSON(w, k)
	}
	rows := [][]string{{"tenant", k.Tenant}, {"state", k.State}}
	switch k.Settings.Provider {
	case providerGCP:
		rows = append(rows,
			[]string{"provider", "Google Cloud KMS (gcp-kms)"},
			[]string{"key name", orDash(k.Settings.KeyID)},
			[]string{"current version", currentVersion(k)},
			[]string{"access", "IAM: byok calls Cloud KMS as the platform's service account, which your key's IAM policy grants"})
	case providerAWS:
		rows = append(rows,
			[]string{"provider", "AWS KMS (aws-kms)"},
			[]string{"key ARN", orDash(k.Settings.KeyID)},
			[]string{"current key", currentVersion(k)},
			[]string{"access", awsAccess(k.Settings)})
	default:
		cred := orDash(k.Settings.Credential)
		if k.Settings.SecretSet {
			cred += " (secret set)"
		}
		if k.Settings.Provider != "" {
			rows = append(rows, []string{"provider", "Azure Key Vault (" + k.Settings.Provider + ")"})
		}
		rows = append(rows,
			[]string{"key id", orDash(k.Settings.KeyID)},
			[]string{"current version", currentVersion(k)},
			[]string{"directory / app", orDash(k.Settings.DirectoryID) + " / " + orDash(k.Settings.ClientID)},
			[]string{"credential", cred})
	}
	rows = append(rows, [][]string{
		{"enforcement date", when(k.EnforceAt)},
		{"activated", when(k.ActivatedAt)},
		{"coverage", coverageText(k.Coverage)},
	}...)
	if k.Epoch != 0 {
		rows = append(rows, []string{"epoch", fmt.Sprint(k.Epoch)})
	}
	if k.LastTest != nil {
		verdict := "failed"
		if k.LastTest.Passed {
			verdict = "passed"
		}
		rows = append(rows, []string{"last test", verdict + " at " + when(k.LastTest.At)})
	}
	if j := k.Job; j != nil {
		rows = append(rows, []string{"job", fmt.Sprintf("%s %s %s, %d/%d", j.Kind, j.ID, j.State, j.Done, j.Total)})
	}
	if next := nextStep(k); next != "" {
		rows = append(rows, []string{"next", next})
	}
	if err := table(w, rows...); err != nil {
		return err
	}
	if len(k.Scopes) > 0 {
		fmt.Fprintln(w)
		srows := [][]string{{"SCOPE", "KEY", "COVERED", "PLATFORM ONLY"}}
		for _, s := range k.Scopes {
			srows = append(srows, []string{s.Scope, s.Kind, yesNo(s.Covered), yesNo(s.PlatformOnly)})
		}
		if err := table(w, srows...); err != nil {
			return err
		}
	}
	if len(k.Health) > 0 {
		fmt.Fprintln(w)
		hrows := [][]string{{"KEY", "EPOCH", "HEALTH", "POLICY", "LAST CHECK OK", "REASON", "DETECTED AT"}}
		for _, h := range k.Health {
			hrows = append(hrows, []string{h.Kind, fmt.Sprint(h.Epoch), h.State, h.Policy, when(h.LastSuccess), orDash(h.Reason), when(h.DetectedAt)})
		}
		return table(w, hrows...)
	}
	return nil
}

// awsAccess says how byok reaches an AWS KMS key: as the platform's own
// principal, which the key policy names, or by assuming the customer's
// role with the external id its trust policy requires.
func awsAccess(s client.KeySettings) string {
	if s.RoleARN == "" {
		return "key policy: byok calls KMS as the platform's principal, which the key policy names"
	}
	return "role: byok assumes " + s.RoleARN + " with external id " + orDash(s.ExternalID) + ", which the role's trust policy requires"
}

// currentVersion is the key version in use, or when one will be.
func currentVersion(k client.Key) string {
	if k.CurrentKeyID == "" && (k.State == "draft" || k.State == "scheduled") {
		return "- (chosen when the key activates)"
	}
	return orDash(k.CurrentKeyID)
}

// nextStep is what the tenant admin does next in k's state, as a command
// to run when there is one; empty when nothing is waiting on them.
func nextStep(k client.Key) string {
	t := k.Tenant
	switch k.State {
	case "none", "":
		return "byok key configure --tenant " + t + " --key-id URL … (see byok help key configure)"
	case "draft":
		switch {
		case k.LastTest == nil:
			return "byok key test --tenant " + t
		case !k.LastTest.Passed:
			return "fix what the last test reported, then byok key test --tenant " + t
		}
		return "byok key proceed --tenant " + t + " --enforce-at TIME (or --in 72h) to schedule the enforcement"
	case "scheduled":
		return "nothing: the key is enforced at " + when(k.EnforceAt) + " and its state turns active"
	case "revoked":
		return "restore the platform's access to the key in the vault: byok notices within the check interval and serves again"
	}
	return ""
}

// coverageText describes a coverage: "all scopes", "all but a, b",
// "only a, b".
func coverageText(c client.Coverage) string {
	switch {
	case c.All && len(c.Exclude) > 0:
		return "all scopes but " + strings.Join(c.Exclude, ", ")
	case c.All:
		return "all scopes"
	case len(c.Include) > 0:
		return "only " + strings.Join(c.Include, ", ")
	}
	return "no scope"
}
