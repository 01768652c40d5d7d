package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/openbyok/byok/kvemu"
)

// kvemuFlags are the flags of byok kv-emulator.
type kvemuFlags struct {
	addr, miAddr, state, seed string
	verbose                   bool
}

func kvEmulatorCmd() *cobra.Command {
	var f kvemuFlags
	c := &cobra.Command{
		Use:   "kv-emulator [--addr HOST:PORT] [--state DIR] [--seed FILE]",
		Short: "run kvemu, a local Azure Key Vault and Entra ID",
		Long: `Runs kvemu, an emulator of Azure Key Vault, Managed HSM and Entra ID that the
official Azure SDKs talk to unchanged, with a control API to create vaults and
keys and to revoke access (docs/kvemu.md). It prints how to point SDKs at it.`,
		Example: `  byok kv-emulator --state ./kvemu-state --seed seed.yaml
  sudo byok kv-emulator --addr 127.0.0.1:443 --state ./kvemu-state   # for SDKs that reach it through /etc/hosts`,
		RunE: func(c *cobra.Command, _ []string) error {
			return kvEmulator(c.Context(), f, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8443", "HTTPS `address` of Key Vault, Entra ID and the control API; use port 443 for SDKs that reach it through /etc/hosts")
	fs.StringVar(&f.miAddr, "mi-addr", "127.0.0.1:0", "plain-HTTP `address` of the managed identity endpoints (IMDS, App Service)")
	fs.StringVar(&f.state, "state", "", "`directory` for the CA and the state; empty keeps everything in memory")
	fs.StringVar(&f.seed, "seed", "", "YAML seed `file` applied at start when the state is empty")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log every request to stderr")
	c.MarkFlagDirname("state")
	return c
}

// kvEmulator runs kvemu until ctx is done, then saves its state (with
// --state) and stops.
func kvEmulator(ctx context.Context, f kvemuFlags, stdout, stderr io.Writer) error {
	var s *kvemu.Seed
	if f.seed != "" {
		loaded, err := kvemu.LoadSeed(f.seed)
		if err != nil {
			return err
		}
		s = &loaded
	}
	// The seed is applied inside Start, before the emulator serves and
	// before it writes ca.pem: a client that waits for either meets the
	// seeded emulator.
	emu, err := kvemu.Start(kvemu.Options{
		Addr: f.addr, ManagedIdentityAddr: f.miAddr, StateDir: f.state, Seed: s,
		Logger: emulatorLogger(stderr, f.verbose),
	})
	if err != nil {
		return err
	}
	defer emu.Close()
	if f.seed != "" && emu.Restored() {
		fmt.Fprintf(stdout, "seed %s not applied: the state in %s was restored\n", f.seed, f.state)
	}
	caFile, cleanup, err := writeCA(emu, f.state)
	if err != nil {
		return err
	}
	defer cleanup()
	printEmulatorHelp(stdout, emu, caFile)
	<-ctx.Done()
	fmt.Fprintln(stdout, "kvemu stopping")
	return emu.Close()
}

// writeCA returns the CA file: the one in the state directory, or a
// temporary one removed by cleanup.
func writeCA(emu *kvemu.Emulator, stateDir string) (string, func(), error) {
	if stateDir != "" {
		return filepath.Join(stateDir, "ca.pem"), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "kvemu-")
	if err != nil {
		return "", nil, err
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, emu.CACertPEM(), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return file, func() { os.RemoveAll(dir) }, nil
}

func printEmulatorHelp(w io.Writer, emu *kvemu.Emulator, caFile string) {
	host, port, _ := net.SplitHostPort(emu.Addr())
	miEndpoint, miHeader := emu.ManagedIdentityEnv()
	var vaults []string
	for _, v := range emu.Vaults() {
		suffix := "vault.azure.net"
		if v.ManagedHSM {
			suffix = "managedhsm.azure.net"
		}
		vaults = append(vaults, v.Name+"."+suffix)
	}
	if len(vaults) == 0 {
		vaults = []string{"<vault>.vault.azure.net"}
	}
	fmt.Fprintf(w, `kvemu listening on https://%s (managed identity: http://%s)
CA certificate: %s
Control API:    https://localhost:%s/control/   (docs/kvemu.md)

Go (azidentity + azkeys): build an *http.Client whose transport trusts the CA
file and dials every address ending in :443 to %s (in-process: kvemu.Start
and Emulator.HTTPClient do this), and pass it as ClientOptions.Transport of
both the credential and the azkeys client. No other option changes.

Other SDKs (Python, .NET, Java, JS, az CLI):
  export SSL_CERT_FILE=%s    # also REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS
  add to /etc/hosts:
    %s login.microsoftonline.com
`, emu.Addr(), emu.ManagedIdentityAddr(), caFile, port, emu.Addr(), caFile, host)
	for _, v := range vaults {
		fmt.Fprintf(w, "    %s %s\n", host, v)
	}
	if port != "443" {
		fmt.Fprintf(w, "  and run with --addr %s:443: names in /etc/hosts reach port 443 only.\n", host)
	}
	fmt.Fprintf(w, `Managed identity (App Service style):
  export IDENTITY_ENDPOINT=%s
  export IDENTITY_HEADER=%s
`, miEndpoint, miHeader)
	if tenants := emu.Tenants(); len(tenants) > 0 {
		ids := make([]string, len(tenants))
		for i, t := range tenants {
			ids[i] = t.ID
		}
		fmt.Fprintf(w, "Tenants: %s\n", strings.Join(ids, ", "))
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}
