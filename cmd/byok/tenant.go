package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/openbyok/byok/client"
)

// tenantCmd is "byok tenant create|list|show|policy", with an operator
// token.
func tenantCmd() *cobra.Command {
	return group("tenant", "create, list and show tenants, set their policy (operator)",
		"  byok tenant create acme --scopes chat,files\n  byok tenant list",
		tenantCreateCmd(), tenantListCmd(), tenantShowCmd(), tenantPolicyCmd())
}

func tenantCreateCmd() *cobra.Command {
	var f clientFlags
	var policy, scopes string
	c := &cobra.Command{
		Use:   "create ID [--policy grace|strict] [--scopes a,b]",
		Short: "create a tenant with its scopes and revocation policy",
		Example: `  byok tenant create acme --scopes chat,files
  byok tenant create globex --policy strict --scopes billing`,
		Args: wantArgs("ID"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			t, err := c.CreateTenant(cmd.Context(), pos[0], policy, list(scopes))
			if err != nil {
				return apiError(err)
			}
			return printTenants(cmd.OutOrStdout(), f.json, t)
		},
	}
	fs := c.Flags()
	fs.StringVar(&policy, "policy", "grace", "`grace` serves from cache while the vault is briefly unreachable; strict fails closed at once")
	fs.StringVar(&scopes, "scopes", "", "the tenant's scopes (apps, bots), a comma-separated `list`")
	f.register(fs)
	completeWords(c, "policy", "grace", "strict")
	return c
}

func tenantListCmd() *cobra.Command {
	var f clientFlags
	var pf pageFlags
	c := &cobra.Command{
		Use:   "list [--after ID] [--limit N]",
		Short: "list the tenants, by id",
		Example: `  byok tenant list
  byok tenant list --after acme --limit 50 --json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ts, err := c.ListTenants(cmd.Context(), pf.page())
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), ts)
			}
			return printTenants(cmd.OutOrStdout(), false, ts...)
		},
	}
	pf.register(c.Flags(), "tenants")
	f.register(c.Flags())
	return c
}

func tenantShowCmd() *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:     "show ID",
		Short:   "show a tenant: its policy, key state and creation",
		Example: "  byok tenant show acme\n  byok tenant show acme --json",
		Args:    wantArgs("ID"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			t, err := c.Tenant(cmd.Context(), pos[0])
			if err != nil {
				return apiError(err)
			}
			return printTenants(cmd.OutOrStdout(), f.json, t)
		},
	}
	f.register(c.Flags())
	return c
}

func tenantPolicyCmd() *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:     "policy ID grace|strict",
		Short:   "set a tenant's revocation policy",
		Example: "  byok tenant policy acme strict",
		Args:    wantArgs("ID", "grace|strict"),
		ValidArgsFunction: func(_ *cobra.Command, pos []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(pos) == 1 {
				return []cobra.Completion{"grace", "strict"}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			t, err := c.SetPolicy(cmd.Context(), pos[0], pos[1])
			if err != nil {
				return apiError(err)
			}
			return printTenants(cmd.OutOrStdout(), f.json, t)
		},
	}
	f.register(c.Flags())
	return c
}

// printTenants prints tenants as a table, or one tenant as JSON.
func printTenants(w io.Writer, asJSON bool, ts ...client.Tenant) error {
	if asJSON {
		return printJSON(w, ts[0])
	}
	rows := [][]string{{"TENANT", "POLICY", "KEY STATE", "CREATED"}}
	for _, t := range ts {
		rows = append(rows, []string{t.ID, t.Policy, t.State, when(t.Created)})
	}
	return table(w, rows...)
}
