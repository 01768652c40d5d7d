// Command byok runs the byok service and its tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of byok. run gets the arguments after the
// command's name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand, in the order help shows them.
var commands = []command{
	{"version", "print the version of byok", runVersion},
	{"serve", "serve the HTTP API and run the scheduler, monitor and jobs", runServe},
	{"demo", "run byok with a Key Vault emulator and a demo tenant", runDemo},
	{"bench", "measure Encrypt and Decrypt against raw AES-256-GCM", runBench},
	{"kv-emulator", "run kvemu, a local Azure Key Vault and Entra ID", runKVEmulator},
	{"audit", "verify or export the audit log of a SQLite database", runAudit},
	{"tenant", "create, list and show tenants, set their policy (operator)", runTenant},
	{"token", "create, list and revoke API tokens (operator)", runToken},
	{"platform-key", "show the platform root key and its versions, re-key onto its current version (operator)", runPlatformKey},
	{"key", "configure, test, schedule, rotate, re-key and disable a tenant's key (tenant admin)", runKey},
	{"encrypt", "encrypt stdin for a tenant's scope (service)", runEncrypt},
	{"decrypt", "decrypt stdin for a tenant's scope (service)", runDecrypt},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "byok %s: %v\n", c.name, err)
			}
			return exitCode(err)
		}
	}
	fmt.Fprintf(stderr, "byok: unknown command %q; run 'byok help' for the list\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: byok <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
}
