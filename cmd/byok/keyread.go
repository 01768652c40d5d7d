package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openbyok/byok/client"
)

// keyIdentitiesCmd prints the platform's identities the tenant may use,
// with the steps to let each reach the key.
func keyIdentitiesCmd() *cobra.Command {
	var f keyFlags
	return keyCommand(&f, &cobra.Command{
		Use:     "identities --tenant T",
		Short:   "show the platform's identities your vault can trust, and how to let each in",
		Example: "  byok key identities --tenant acme",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			ids, err := c.Identities(cmd.Context(), f.tenant)
			if err != nil {
				return apiError(err)
			}
			return printIdentities(cmd.OutOrStdout(), f.json, ids)
		},
	})
}

// printIdentities prints the platform's identities with their steps.
func printIdentities(stdout io.Writer, asJSON bool, ids client.Identities) error {
	if asJSON {
		return printJSON(stdout, ids)
	}
	if mi := ids.ManagedIdentity; mi != nil {
		fmt.Fprintf(stdout, "managed-identity: the platform's managed identity %s\n", mi.Name)
		fmt.Fprintf(stdout, "  directory:    %s (only vaults of this directory)\n", mi.DirectoryID)
		fmt.Fprintf(stdout, "  object id:    %s\n  client id:    %s\n", orDash(mi.ObjectID), orDash(mi.ClientID))
		if mi.RoleCommand != "" {
			fmt.Fprintf(stdout, "  give it a role on the vault:\n    %s\n", mi.RoleCommand)
		}
		fmt.Fprintln(stdout, "  then: byok key configure --credential managed-identity --key-id URL")
	} else {
		fmt.Fprintf(stdout, "managed-identity: %s\n", ids.NotOffered["managed-identity"])
	}
	if w := ids.WorkloadIdentity; w != nil {
		fmt.Fprintln(stdout, "workload-identity: your app's federated credential (Certificates & secrets > Federated credentials > Other issuer):")
		fmt.Fprintf(stdout, "  issuer:       %s\n  subject:      %s\n  audience:     %s\n", w.Issuer, w.Subject, w.Audience)
		fmt.Fprintf(stdout, "  or run:\n    %s\n", w.Command)
		fmt.Fprintln(stdout, "  then: byok key configure --credential workload-identity --directory-id D --client-id APP --key-id URL")
	} else {
		fmt.Fprintf(stdout, "workload-identity: %s\n", ids.NotOffered["workload-identity"])
	}
	return nil
}

func keyInventoryCmd() *cobra.Command {
	var f keyFlags
	return keyCommand(&f, &cobra.Command{
		Use:     "inventory --tenant T",
		Short:   "show the key versions the tenant's data sits under, and which are safe to retire",
		Example: "  byok key inventory --tenant acme",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			inv, err := c.Inventory(cmd.Context(), f.tenant)
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), inv)
			}
			rows := [][]string{{"KEY VERSION", "SHARES", "CURRENT", "SAFE TO RETIRE"}}
			for _, v := range inv.Versions {
				rows = append(rows, []string{v.KeyID, fmt.Sprint(v.Shares), yesNo(v.Current), yesNo(v.SafeToRetire)})
			}
			return table(cmd.OutOrStdout(), rows...)
		},
	})
}

func keyTimelineCmd() *cobra.Command {
	var f keyFlags
	var limit int
	return keyCommand(&f, &cobra.Command{
		Use:     "timeline --tenant T [--limit N]",
		Short:   "show the key's revocations and restorations: when detected, when enforced, by which replica",
		Example: "  byok key timeline --tenant acme --limit 20",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			es, err := c.Timeline(cmd.Context(), f.tenant, limit)
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), es)
			}
			rows := [][]string{{"EVENT", "REASON", "DETECTED AT", "ENFORCED AT", "REPLICA"}}
			for _, e := range es {
				rows = append(rows, []string{e.Kind, orDash(e.Reason), when(e.DetectedAt), when(e.EnforcedAt), orDash(e.Replica)})
			}
			return table(cmd.OutOrStdout(), rows...)
		},
	}, func(fs *pflag.FlagSet) {
		fs.IntVar(&limit, "limit", 0, "show at most `n` events (server default 100)")
	})
}

// keyAuditCmd lists the tenant's own audit chain, or exports it as JSON
// lines (which "byok audit verify" checks) with --export.
func keyAuditCmd() *cobra.Command {
	var f keyFlags
	var action, since, until, cursor string
	var limit int
	var export bool
	return keyCommand(&f, &cobra.Command{
		Use:   "audit --tenant T [--action PREFIX] [--since TIME] [--until TIME] [--limit N] [--cursor C | --export]",
		Short: "list the tenant's audit events, or export them as JSON lines",
		Example: `  byok key audit --tenant acme --action vault. --since 2026-07-01T00:00:00Z
  byok key audit --tenant acme --export > acme-audit.jsonl`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			q := client.AuditQuery{Action: action, Limit: limit, Cursor: cursor}
			for _, t := range []struct {
				name, s string
				to      *time.Time
			}{{"--since", since, &q.Since}, {"--until", until, &q.Until}} {
				if t.s == "" {
					continue
				}
				if *t.to, err = time.Parse(time.RFC3339Nano, t.s); err != nil {
					return usagef("%s %q is not an RFC 3339 time such as 2026-07-01T00:00:00Z", t.name, t.s)
				}
			}
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			if export {
				if cursor != "" || limit != 0 {
					return usagef("--export writes every selected event: --cursor and --limit apply to listings only")
				}
				_, err := c.TenantAuditExport(ctx, f.tenant, q, stdout)
				return apiError(err)
			}
			pg, err := c.TenantAudit(ctx, f.tenant, q)
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(stdout, pg)
			}
			rows := [][]string{{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REASON"}}
			for _, e := range pg.Events {
				rows = append(rows, []string{fmt.Sprint(e.Seq), when(e.Time), e.Actor.Kind + ":" + e.Actor.ID, e.Action, orDash(e.Target), e.Outcome, orDash(e.Reason)})
			}
			if err := table(stdout, rows...); err != nil {
				return err
			}
			if pg.NextCursor != "" {
				fmt.Fprintf(stdout, "more: byok key audit --cursor %s\n", pg.NextCursor)
			}
			return nil
		},
	}, func(fs *pflag.FlagSet) {
		fs.StringVar(&action, "action", "", "only actions that start with this `prefix` (key., vault.)")
		fs.StringVar(&since, "since", "", "only events at or after this RFC 3339 `time`")
		fs.StringVar(&until, "until", "", "only events before this RFC 3339 `time`")
		fs.IntVar(&limit, "limit", 0, "list at most `n` events (server default 100)")
		fs.StringVar(&cursor, "cursor", "", "continue a listing from the `cursor` it printed")
		fs.BoolVar(&export, "export", false, "write every selected event as JSON lines instead of a table")
	})
}
