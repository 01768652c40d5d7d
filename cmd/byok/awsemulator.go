package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/openbyok/byok/awsemu"
)

// awsemuFlags are the flags of byok aws-emulator.
type awsemuFlags struct {
	addr, data, seed string
	verbose          bool
}

// awsEmulatorPlatform is the platform's user aws-emulator creates when it
// has no seed.
const awsEmulatorPlatform = "arn:aws:iam::999988887777:user/byok-platform"

func awsEmulatorCmd() *cobra.Command {
	var f awsemuFlags
	c := &cobra.Command{
		Use:   "aws-emulator [--addr HOST:PORT] [--data DIR] [--seed FILE]",
		Short: "run awsemu, a local AWS KMS and STS",
		Long: `Runs awsemu, an emulator of AWS KMS and STS that the official AWS SDKs talk to
unchanged, with key policies, roles with trust policies and external ids
(docs/awsemu.md). Without a seed it creates the platform's IAM user and prints
its access key. It prints the aws: block of byok serve's configuration that
reaches it, and how to point the aws CLI at it.`,
		Example: `  byok aws-emulator --data ./awsemu-state --seed seed.yaml
  byok aws-emulator --addr 127.0.0.1:4566`,
		RunE: func(c *cobra.Command, _ []string) error {
			return awsEmulator(c.Context(), f, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.addr, "addr", "127.0.0.1:4566", "HTTPS `address` of KMS and STS")
	fs.StringVar(&f.data, "data", "", "`directory` for the CA file and the key store (keys, aliases, key policies); empty: a temporary one")
	fs.StringVar(&f.seed, "seed", "", "YAML seed `file` of users, roles and keys (docs/awsemu.md)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log every request to stderr")
	c.MarkFlagDirname("data")
	return c
}

// awsEmulator runs awsemu until ctx is done.
func awsEmulator(ctx context.Context, f awsemuFlags, stdout, stderr io.Writer) error {
	opts := awsemu.Options{Addr: f.addr}
	if f.seed != "" {
		r, err := os.Open(f.seed)
		if err != nil {
			return err
		}
		s, err := awsemu.LoadSeed(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("the seed %s: %w", f.seed, err)
		}
		opts.Seed = &s
	}
	opts.Logger = emulatorLogger(stderr, f.verbose)
	dir, cleanup, err := emulatorDir(f.data, "awsemu-")
	if err != nil {
		return err
	}
	defer cleanup()
	opts.DataDir = filepath.Join(dir, "kms")
	emu, err := awsemu.Start(opts)
	if err != nil {
		return err
	}
	defer emu.Close()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, emu.CACertPEM(), 0o644); err != nil {
		return err
	}
	key := awsemu.AccessKey{}
	if opts.Seed == nil {
		if key, err = emu.AddUser(awsEmulatorPlatform, awsemu.AccessKey{}); err != nil {
			return err
		}
	}
	printAWSEmulatorHelp(stdout, emu.Endpoint(), caFile, key)
	<-ctx.Done()
	fmt.Fprintln(stdout, "awsemu stopping")
	return emu.Close()
}

func printAWSEmulatorHelp(w io.Writer, endpoint, caFile string, key awsemu.AccessKey) {
	fmt.Fprintf(w, "awsemu listening on %s (KMS and STS)\nCA certificate: %s\n\n", endpoint, caFile)
	id, secret := "<access key id of a seeded user>", "<its secret>"
	if key.ID != "" {
		fmt.Fprintf(w, "The platform's user %s has the access key %s.\n\n", awsEmulatorPlatform, key.ID)
		id, secret = key.ID, key.Secret
	}
	fmt.Fprintf(w, `byok serve (configuration file), with BYOK_AWS_KEY_ID and BYOK_AWS_SECRET exported as below:
  aws:
    endpoint: %[1]s
    sts_endpoint: %[1]s
    ca_file: %[2]s
    credentials: {access_key: {id_env: BYOK_AWS_KEY_ID, secret_env: BYOK_AWS_SECRET}}

  export BYOK_AWS_KEY_ID=%[3]s BYOK_AWS_SECRET=%[4]s

aws CLI (keys and policies are made through the seed; the CLI calls KMS and STS):
  export AWS_CA_BUNDLE=%[2]s AWS_ACCESS_KEY_ID=%[3]s AWS_SECRET_ACCESS_KEY=%[4]s
  aws --endpoint-url %[1]s --region eu-west-1 sts get-caller-identity
Press Ctrl-C to stop.
`, endpoint, caFile, id, secret)
}
