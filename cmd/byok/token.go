package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/openbyok/byok/client"
)

// runToken runs "byok token create|list|revoke" with an operator token.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := map[string]func([]string) error{
		"create": func(args []string) error { return tokenCreate(ctx, args, stdout, stderr) },
		"list":   func(args []string) error { return tokenList(ctx, args, stdout, stderr) },
		"revoke": func(args []string) error { return tokenRevoke(ctx, args, stdout, stderr) },
	}
	return subcommand("token", subs, []string{"create", "list", "revoke"}, args, stdout)
}

// tokenCreate issues a token. Its text goes alone on stdout (or in the
// JSON answer), so that `byok token create ... > file` stores just the
// token; the notes go to stderr.
func tokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("token create", "--kind operator|tenant-admin|service [--tenants a,b] [--name N] [--ttl 720h]", stderr)
	kind := fs.String("kind", "", "the token's `kind`: operator, tenant-admin (one tenant) or service (data calls of its tenants)")
	tenants := fs.String("tenants", "", "the token's tenants, comma-separated: none for operator, one for tenant-admin")
	name := fs.String("name", "", "a `label` for the token")
	ttl := fs.Duration("ttl", 0, "the token's lifetime (server default 720h, at most 8784h)")
	c, _, err := clientCmd(fs, &f, args)
	if err != nil {
		return err
	}
	if *kind == "" {
		return usagef("--kind is required: operator, tenant-admin or service")
	}
	t, err := c.CreateToken(ctx, client.TokenRequest{Kind: *kind, Tenants: list(*tenants), Name: *name, TTL: *ttl})
	if err != nil {
		return apiError(err)
	}
	if f.json {
		return printJSON(stdout, t)
	}
	fmt.Fprintln(stdout, t.Token)
	fmt.Fprintf(stderr, "%s token %s for %s, expires %s. It is shown this once: store it now.\n",
		t.Kind, t.ID, orDash(strings.Join(t.Tenants, ",")), when(t.Expires))
	return nil
}

func tokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("token list", "[--after ID] [--limit N]", stderr)
	after := fs.String("after", "", "list the tokens after this `id`")
	limit := fs.Int("limit", 0, "list at most `n` tokens (server default 100, at most 1000)")
	c, _, err := clientCmd(fs, &f, args)
	if err != nil {
		return err
	}
	ts, err := c.ListTokens(ctx, client.Page{After: *after, Limit: *limit})
	if err != nil {
		return apiError(err)
	}
	if f.json {
		return printJSON(stdout, ts)
	}
	return printTokens(stdout, ts...)
}

func tokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("token revoke", "ID", stderr)
	c, pos, err := clientCmd(fs, &f, args, "ID")
	if err != nil {
		return err
	}
	t, err := c.RevokeToken(ctx, pos[0])
	if err != nil {
		return apiError(err)
	}
	if f.json {
		return printJSON(stdout, t)
	}
	return printTokens(stdout, t)
}

// printTokens prints token records (never a token's text) as a table.
func printTokens(w io.Writer, ts ...client.Token) error {
	rows := [][]string{{"ID", "KIND", "TENANTS", "NAME", "EXPIRES", "STATUS"}}
	for _, t := range ts {
		status := "active"
		if !t.Revoked.IsZero() {
			status = "revoked " + when(t.Revoked)
		} else if !t.Expires.IsZero() && t.Expires.Before(time.Now()) {
			status = "expired"
		}
		rows = append(rows, []string{t.ID, t.Kind, orDash(strings.Join(t.Tenants, ",")), orDash(t.Name), when(t.Expires), status})
	}
	return table(w, rows...)
}
