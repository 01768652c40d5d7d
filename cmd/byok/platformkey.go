package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/openbyok/byok/client"
	"github.com/openbyok/byok/kms/local"
)

// runPlatformKey runs "byok platform-key status|inventory|rekey" with an
// operator token.
func runPlatformKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := map[string]func([]string) error{
		"status":    func(args []string) error { return platformKeyStatus(ctx, args, stdout, stderr) },
		"inventory": func(args []string) error { return platformKeyInventory(ctx, args, stdout, stderr) },
		"rekey":     func(args []string) error { return platformKeyRekey(ctx, args, stdout, stderr) },
		"rotate":    func(args []string) error { return platformKeyRotate(args, stdout, stderr) },
	}
	return subcommand("platform-key", subs, []string{"status", "inventory", "rotate", "rekey"}, args, stdout)
}

// platformKeyRotate adds a version to a platform key file. A key in a
// vault or Managed HSM gets its versions there (az keyvault key rotate).
func platformKeyRotate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("platform-key rotate", "--file PATH", stderr)
	file := fs.String("file", "", "the platform key `file` (platform_key.file) to add a version to")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: byok platform-key rotate --file PATH

Adds a new version to a platform key file (platform_key.file), atomically; a
running byok serve follows it at once for new shares. Then run
"byok platform-key rekey --wait" to move the existing shares onto it. A
platform root key in Key Vault or a Managed HSM gets its new versions in the
vault instead: az keyvault key rotate --hsm-name H --name K (or --vault-name).

flags:
`)
		fs.PrintDefaults()
	}
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usagef("--file is required: the platform key file to add a version to")
	}
	if _, err := os.Stat(*file); err != nil {
		return fmt.Errorf("the platform key file: %w; give the path of platform_key.file", err)
	}
	k, err := local.Open(*file)
	if err != nil {
		return err
	}
	id, err := k.Rotate()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s to %s; new shares go under it. Move the existing ones with: byok platform-key rekey --wait\n", id, *file)
	return nil
}

func platformKeyStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("platform-key status", "", stderr)
	c, _, err := clientCmd(fs, &f, args)
	if err != nil {
		return err
	}
	k, err := c.PlatformKey(ctx)
	if err != nil {
		return apiError(err)
	}
	if f.json {
		return printJSON(stdout, k)
	}
	return table(stdout,
		[]string{"KEY", k.KeyID},
		[]string{"CURRENT VERSION", k.Version},
		[]string{"TYPE", fmt.Sprintf("%s %d", k.Type, k.Size)},
		[]string{"ENABLED", strconv.FormatBool(k.Enabled)},
		[]string{"SHARES", strconv.Itoa(k.Shares)})
}

func platformKeyInventory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("platform-key inventory", "", stderr)
	c, _, err := clientCmd(fs, &f, args)
	if err != nil {
		return err
	}
	inv, err := c.PlatformInventory(ctx)
	if err != nil {
		return apiError(err)
	}
	if f.json {
		return printJSON(stdout, inv)
	}
	return printVersions(stdout, inv)
}

// platformKeyRekey starts the platform re-key and, with --wait, follows it
// until nothing is left under older versions.
func platformKeyRekey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	var wf waitFlags
	fs := newFlagSet("platform-key rekey", "[--wait] [--poll 1s]", stderr)
	wf.register(fs)
	fs.Usage = rekeyUsage(fs, stderr)
	c, _, err := clientCmd(fs, &f, args)
	if err != nil {
		return err
	}
	if err := wf.check(); err != nil {
		return err
	}
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

// rekeyUsage explains what the platform re-key does.
func rekeyUsage(fs *flag.FlagSet, w io.Writer) func() {
	return func() {
		fmt.Fprint(w, `usage: byok platform-key rekey [--wait] [--poll 1s]

Moves every tenant's shares and sealed credentials that sit under an older
version of the platform root key onto its current version. Run it after the
platform root key got a new version (a new version in the vault, or a new
"key N" line in the key file); then retire the old version once
"byok platform-key inventory" shows it safe to retire. Tenant keys do not
change and no data is re-encrypted; a run that fails or is interrupted can be
run again.

example:
  byok platform-key rekey --wait

flags:
`)
		fs.PrintDefaults()
	}
}

// printVersions prints an inventory as a table.
func printVersions(w io.Writer, inv client.Inventory) error {
	rows := [][]string{{"VERSION", "SHARES", "CURRENT", "SAFE TO RETIRE"}}
	for _, v := range inv.Versions {
		rows = append(rows, []string{v.KeyID, strconv.Itoa(v.Shares), yesNo(v.Current), yesNo(v.SafeToRetire)})
	}
	return table(w, rows...)
}
