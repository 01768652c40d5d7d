package main

import (
	"context"
	"io"

	"github.com/openbyok/byok/client"
)

// runTenant runs "byok tenant create|list|show|policy" with an operator
// token.
func runTenant(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := map[string]func([]string) error{
		"create": func(args []string) error { return tenantCreate(ctx, args, stdout, stderr) },
		"list":   func(args []string) error { return tenantList(ctx, args, stdout, stderr) },
		"show":   func(args []string) error { return tenantShow(ctx, args, stdout, stderr) },
		"policy": func(args []string) error { return tenantPolicy(ctx, args, stdout, stderr) },
	}
	return subcommand("tenant", subs, []string{"create", "list", "show", "policy"}, args, stdout)
}

func tenantCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("tenant create", "ID [--policy grace|strict] [--scopes a,b]", stderr)
	policy := fs.String("policy", "grace", "`grace` serves from cache while the vault is briefly unreachable; strict fails closed at once")
	scopes := fs.String("scopes", "", "the tenant's scopes (apps, bots), comma-separated")
	c, pos, err := clientCmd(fs, &f, args, "ID")
	if err != nil {
		return err
	}
	t, err := c.CreateTenant(ctx, pos[0], *policy, list(*scopes))
	if err != nil {
		return apiError(err)
	}
	return printTenants(stdout, f.json, t)
}

func tenantList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("tenant list", "[--after ID] [--limit N]", stderr)
	after := fs.String("after", "", "list the tenants after this `id`")
	limit := fs.Int("limit", 0, "list at most `n` tenants (server default 100, at most 1000)")
	c, _, err := clientCmd(fs, &f, args)
	if err != nil {
		return err
	}
	ts, err := c.ListTenants(ctx, client.Page{After: *after, Limit: *limit})
	if err != nil {
		return apiError(err)
	}
	if f.json {
		return printJSON(stdout, ts)
	}
	return printTenants(stdout, false, ts...)
}

func tenantShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("tenant show", "ID", stderr)
	c, pos, err := clientCmd(fs, &f, args, "ID")
	if err != nil {
		return err
	}
	t, err := c.Tenant(ctx, pos[0])
	if err != nil {
		return apiError(err)
	}
	return printTenants(stdout, f.json, t)
}

func tenantPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("tenant policy", "ID grace|strict", stderr)
	c, pos, err := clientCmd(fs, &f, args, "ID", "grace|strict")
	if err != nil {
		return err
	}
	t, err := c.SetPolicy(ctx, pos[0], pos[1])
	if err != nil {
		return apiError(err)
	}
	return printTenants(stdout, f.json, t)
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
