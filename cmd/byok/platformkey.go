package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/openbyok/byok/client"
	"github.com/openbyok/byok/kms/local"
)

// platformKeyCmd is "byok platform-key status|inventory|rotate|rekey":
// with an operator token, but for rotate, which works on the key file.
func platformKeyCmd() *cobra.Command {
	return group("platform-key", "show the platform root key and its versions, re-key onto its current version (operator)",
		"  byok platform-key rotate --file /var/lib/byok/platform.key\n  byok platform-key rekey --wait\n  byok platform-key inventory",
		platformKeyStatusCmd(), platformKeyInventoryCmd(), platformKeyRotateCmd(), platformKeyRekeyCmd())
}

// platformKeyRotateCmd adds a version to a platform key file. A key in a
// vault or Managed HSM gets its versions there (az keyvault key rotate).
func platformKeyRotateCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "rotate --file PATH",
		Short: "add a version to a platform key file",
		Long: `Adds a new version to a platform key file (platform_key.file), atomically; a
running byok serve follows it at once for new shares. Then run
"byok platform-key rekey --wait" to move the existing shares onto it. A
platform root key in Key Vault or a Managed HSM gets its new versions in the
vault instead: az keyvault key rotate --hsm-name H --name K (or --vault-name).`,
		Example: "  byok platform-key rotate --file /var/lib/byok/platform.key\n  byok platform-key rekey --wait",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("--file is required: the platform key file to add a version to")
			}
			if _, err := os.Stat(file); err != nil {
				return fmt.Errorf("the platform key file: %w; give the path of platform_key.file", err)
			}
			k, err := local.Open(file)
			if err != nil {
				return err
			}
			id, err := k.Rotate()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s to %s; new shares go under it. Move the existing ones with: byok platform-key rekey --wait\n", id, file)
			return nil
		},
	}
	c.Flags().StringVar(&file, "file", "", "the platform key `file` (platform_key.file) to add a version to")
	return c
}

func platformKeyStatusCmd() *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:     "status",
		Short:   "show the platform root key: id, current version, type, shares under it",
		Example: "  byok platform-key status\n  byok platform-key status --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			k, err := c.PlatformKey(cmd.Context())
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), k)
			}
			return table(cmd.OutOrStdout(),
				[]string{"KEY", k.KeyID},
				[]string{"CURRENT VERSION", k.Version},
				[]string{"TYPE", fmt.Sprintf("%s %d", k.Type, k.Size)},
				[]string{"ENABLED", strconv.FormatBool(k.Enabled)},
				[]string{"SHARES", strconv.Itoa(k.Shares)})
		},
	}
	f.register(c.Flags())
	return c
}

func platformKeyInventoryCmd() *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:     "inventory",
		Short:   "show the platform root key's versions, their shares, and which are safe to retire",
		Example: "  byok platform-key inventory\n  byok platform-key inventory --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			inv, err := c.PlatformInventory(cmd.Context())
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), inv)
			}
			return printVersions(cmd.OutOrStdout(), inv)
		},
	}
	f.register(c.Flags())
	return c
}

// platformKeyRekeyCmd starts the platform re-key and, with --wait, follows
// it until nothing is left under older versions.
func platformKeyRekeyCmd() *cobra.Command {
	var f clientFlags
	var wf waitFlags
	c := &cobra.Command{
		Use:   "rekey [--wait] [--poll 1s]",
		Short: "move every share under an older platform root key version onto the current one",
		Long: `Moves every tenant's shares and sealed credentials that sit under an older
version of the platform root key onto its current version. Run it after the
platform root key got a new version (a new version in the vault, or a new
"key N" line in the key file); then retire the old version once
"byok platform-key inventory" shows it safe to retire. Tenant keys do not
change and no data is re-encrypted; a run that fails or is interrupted can be
run again.`,
		Example: "  byok platform-key rekey --wait",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := wf.check(); err != nil {
				return err
			}
			return platformRekey(cmd.Context(), c, f, wf, cmd.OutOrStdout())
		},
	}
	wf.register(c.Flags())
	f.register(c.Flags())
	return c
}

// platformRekey starts the platform re-key and, with --wait, follows it.
func platformRekey(ctx context.Context, c *client.Client, f clientFlags, wf waitFlags, stdout io.Writer) error {
	r, err := c.StartPlatformRekey(ctx)
	if err != nil {
		return apiError(err)
	}
	if r.Run == nil {
		return fmt.Errorf("the server started no run; read its state with byok platform-key inventory")
	}
	if !wf.wait {
		if f.json {
			return printJSON(stdout, r)
		}
		fmt.Fprintf(stdout, "platform re-key %s started: %d shares and sealed credentials move onto %s\n", r.Run.ID, r.Run.Total, r.Run.Target)
		fmt.Fprintln(stdout, "follow it with: byok platform-key rekey --wait, or byok platform-key inventory")
		return nil
	}
	p := newProgress(stdout)
	if f.json {
		p = newProgress(io.Discard)
	}
	show := func(st client.PlatformRekey) {
		if st.Run != nil && st.Run.ID == r.Run.ID {
			p.update(st.Run.Job())
		}
	}
	show(r)
	end, err := c.WaitPlatformRekey(ctx, r.Run.ID, wf.poll, show)
	if err != nil {
		return apiError(err)
	}
	if f.json {
		return printJSON(stdout, end)
	}
	if end.Run != nil && end.Run.ID == r.Run.ID && end.Run.State == client.JobFailed {
		return fmt.Errorf("platform re-key %s: %d of %d could not be moved: %s; fix the cause and run it again", end.Run.ID, end.Run.Failed, end.Run.Total, orDash(end.Run.Error))
	}
	fmt.Fprintf(stdout, "nothing is left under older versions of the platform root key (%d remaining); byok platform-key inventory shows which versions are safe to retire\n", end.Remaining)
	return nil
}

// printVersions prints an inventory as a table.
func printVersions(w io.Writer, inv client.Inventory) error {
	rows := [][]string{{"VERSION", "SHARES", "CURRENT", "SAFE TO RETIRE"}}
	for _, v := range inv.Versions {
		rows = append(rows, []string{v.KeyID, strconv.Itoa(v.Shares), yesNo(v.Current), yesNo(v.SafeToRetire)})
	}
	return table(w, rows...)
}
