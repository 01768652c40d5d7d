package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/openbyok/byok/client"
)

// tokenCmd is "byok token create|list|revoke", with an operator token.
func tokenCmd() *cobra.Command {
	return group("token", "create, list and revoke API tokens (operator)",
		"  byok token create --kind service --tenants acme --name billing > billing.token\n  byok token list",
		tokenCreateCmd(), tokenListCmd(), tokenRevokeCmd())
}

// tokenCreateCmd issues a token. Its text goes alone on stdout (or in the
// JSON answer), so that "byok token create ... > file" stores just the
// token; the notes go to stderr.
func tokenCreateCmd() *cobra.Command {
	var f clientFlags
	var kind, tenants, name string
	var ttl time.Duration
	c := &cobra.Command{
		Use:   "create --kind operator|tenant-admin|service [--tenants a,b] [--name N] [--ttl 720h]",
		Short: "issue a token; its text is printed alone on stdout, this once",
		Example: `  byok token create --kind tenant-admin --tenants acme --name "acme admin" > acme-admin.token
  byok token create --kind service --tenants acme,globex --name billing --ttl 48h > billing.token
  chmod 600 billing.token`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if kind == "" {
				return usagef("--kind is required: operator, tenant-admin or service")
			}
			t, err := c.CreateToken(cmd.Context(), client.TokenRequest{Kind: kind, Tenants: list(tenants), Name: name, TTL: ttl})
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "%s token %s for %s, expires %s. It is shown this once: store it now.\n",
				t.Kind, t.ID, orDash(strings.Join(t.Tenants, ",")), when(t.Expires))
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVar(&kind, "kind", "", "the token's `kind`: operator, tenant-admin (one tenant) or service (data calls of its tenants)")
	fs.StringVar(&tenants, "tenants", "", "the token's tenants, comma-separated: none for operator, one for tenant-admin")
	fs.StringVar(&name, "name", "", "a `label` for the token")
	fs.DurationVar(&ttl, "ttl", 0, "the token's lifetime (server default 720h, at most 8784h)")
	f.register(fs)
	completeWords(c, "kind", "operator", "tenant-admin", "service")
	return c
}

func tokenListCmd() *cobra.Command {
	var f clientFlags
	var pf pageFlags
	c := &cobra.Command{
		Use:     "list [--after ID] [--limit N]",
		Short:   "list the tokens' ids, kinds, tenants and expiry (never their text)",
		Example: "  byok token list\n  byok token list --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ts, err := c.ListTokens(cmd.Context(), pf.page())
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), ts)
			}
			return printTokens(cmd.OutOrStdout(), ts...)
		},
	}
	pf.register(c.Flags(), "tokens")
	f.register(c.Flags())
	return c
}

func tokenRevokeCmd() *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:     "revoke ID",
		Short:   "revoke a token at once, by the id token list shows",
		Example: "  byok token revoke 0f1e2d3c4b5a69788796a5b4c3d2e1f0",
		Args:    wantArgs("ID"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			t, err := c.RevokeToken(cmd.Context(), pos[0])
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), t)
			}
			return printTokens(cmd.OutOrStdout(), t)
		},
	}
	f.register(c.Flags())
	return c
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
