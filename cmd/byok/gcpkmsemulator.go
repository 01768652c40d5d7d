package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/openbyok/byok/gcpkmsemu"
)

// gcpkmsemuFlags are the flags of byok gcpkms-emulator.
type gcpkmsemuFlags struct {
	addr, tokenAddr, dir, seed string
	verbose                    bool
}

// The platform's service account gcpkms-emulator creates when it has no
// seed.
const (
	gcpEmulatorProject = "byok-platform"
	gcpEmulatorAccount = "byok-platform"
)

func gcpkmsEmulatorCmd() *cobra.Command {
	var f gcpkmsemuFlags
	c := &cobra.Command{
		Use:   "gcpkms-emulator [--addr HOST:PORT] [--token-addr HOST:PORT] [--dir DIR] [--seed FILE]",
		Short: "run gcpkmsemu, a local Google Cloud KMS",
		Long: `Runs gcpkmsemu, an emulator of Google Cloud KMS that the official Go client
(cloud.google.com/go/kms/apiv1) talks to unchanged over gRPC and TLS, with key
rings, keys, versions, rotation, IAM per key and service-account sign-in
(docs/gcpkmsemu.md). It writes its CA certificate to --dir; without a seed it
creates the platform's service account and writes its key file there too. It
prints the endpoint, the files, and the client options that reach it. State
lives in memory: a restart begins empty (and with a new CA).`,
		Example: `  byok gcpkms-emulator --dir ./gcpkmsemu --seed seed.yaml
  byok gcpkms-emulator --addr 127.0.0.1:8443 --token-addr 127.0.0.1:8444`,
		RunE: func(c *cobra.Command, _ []string) error {
			return gcpkmsEmulator(c.Context(), f, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8443", "gRPC (TLS) `address` of Cloud KMS")
	fs.StringVar(&f.tokenAddr, "token-addr", "127.0.0.1:8444", "HTTPS `address` of the OAuth token endpoint and the control API")
	fs.StringVar(&f.dir, "dir", "", "`directory` for ca.pem and the platform's key file; empty: a temporary one")
	fs.StringVar(&f.seed, "seed", "", "YAML seed `file` of projects, key rings, keys, service accounts and IAM bindings (docs/gcpkmsemu.md)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log every call to stderr")
	c.MarkFlagDirname("dir")
	return c
}

// gcpkmsEmulator runs gcpkmsemu until ctx is done.
func gcpkmsEmulator(ctx context.Context, f gcpkmsemuFlags, stdout, stderr io.Writer) error {
	opts := gcpkmsemu.Options{Addr: f.addr, TokenAddr: f.tokenAddr}
	if f.seed != "" {
		s, err := gcpkmsemu.LoadSeed(f.seed)
		if err != nil {
			return fmt.Errorf("the seed %s: %w", f.seed, err)
		}
		opts.Seed = &s
	}
	opts.Logger = emulatorLogger(stderr, f.verbose)
	dir, cleanup, err := emulatorDir(f.dir, "gcpkmsemu-")
	if err != nil {
		return err
	}
	defer cleanup()
	emu, err := gcpkmsemu.Start(opts)
	if err != nil {
		return err
	}
	defer emu.Close()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, emu.CACertPEM(), 0o644); err != nil {
		return err
	}
	keyFile := ""
	if opts.Seed == nil {
		email, err := emu.CreateServiceAccount(gcpEmulatorProject, gcpEmulatorAccount)
		if err != nil {
			return err
		}
		keyFile = filepath.Join(dir, "platform-key.json")
		if err := emu.WriteServiceAccountKeyFile(email, keyFile); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "The platform's service account %s has its key file in %s.\n", email, keyFile)
	}
	fmt.Fprintf(stdout, `gcpkmsemu listening on %s (Cloud KMS, gRPC over TLS); token endpoint %s
CA certificate: %s

Go client options (cloud.google.com/go/kms/apiv1):
  option.WithEndpoint(%q)
  option.WithGRPCDialOption(grpc.WithTransportCredentials(<credentials trusting %s>))
  option.WithAuthCredentialsJSON(option.ServiceAccount, <a key file the emulator wrote>)
Press Ctrl-C to stop.
`, emu.Addr(), emu.TokenURI(), caFile, emu.Addr(), caFile)
	<-ctx.Done()
	fmt.Fprintln(stdout, "gcpkmsemu stopping")
	return emu.Close()
}
