package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/openbyok/byok/client"
)

// runPlatformKey runs "byok platform-key status|inventory|rekey" with an
// operator token.
func runPlatformKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := map[string]func([]string) error{
		"status":    func(args []string) error { return platformKeyStatus(ctx, args, stdout, stderr) },
		"inventory": func(args []string) error { return platformKeyInventory(ctx, args, stdout, stderr) },
		"rekey":     func(args []string) error { return platformKeyRekey(ctx, args, stdout, stderr) },
	}
	return subcommand("platform-key", subs, []string{"status", "inventory", "rekey"}, args, stdout)
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
