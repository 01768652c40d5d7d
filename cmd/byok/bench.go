package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/openbyok/byok/internal/bench"
)

func runBench(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	deks := fs.Int("deks", 100_000, "with lifecycle: the DEKs of the tenant that is rotated and re-keyed")
	fs.Usage = func() {
		io.WriteString(stderr, `usage: byok bench [lifecycle] [--deks N]

byok bench            Encrypt and Decrypt against a plain AES-256-GCM seal in the same run:
                      ratios, allocations, provider calls per 10^6 warm operations.
byok bench lifecycle  the lifecycle against the Key Vault emulator: vault calls of warm
                      operations and of a rotation, the re-key rate, revocation latency,
                      HTTP encrypt throughput and latency.
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	lifecycle := false
	switch fs.Arg(0) {
	case "":
	case "lifecycle":
		lifecycle = true
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	default:
		fs.Usage()
		return &usageError{msg: fmt.Sprintf("unknown benchmark %q", fs.Arg(0))}
	}
	dir, err := os.MkdirTemp("", "byok-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if lifecycle {
		return bench.RunLifecycle(stdout, dir, *deks)
	}
	return bench.Run(stdout, dir)
}
