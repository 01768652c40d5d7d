package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/openbyok/byok/internal/bench"
)

func runBench(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	deks := fs.Int("deks", 100_000, "with lifecycle: the DEKs of the tenant that is rotated and re-keyed")
	duration := fs.Duration("duration", 3*time.Second, "with http: the length of each load run")
	rounds := fs.Int("rounds", bench.Rounds, "with http: interleaved rounds; the best of each target is kept")
	fs.Usage = func() {
		io.WriteString(stderr, `usage: byok bench [lifecycle [--deks N] | http [--duration D] [--rounds N]]

byok bench            Encrypt and Decrypt against a plain AES-256-GCM seal in the same run:
                      ratios, allocations, provider calls per 10^6 warm operations.
byok bench lifecycle  the lifecycle against the Key Vault emulator: vault calls of warm
                      operations and of a rotation, the re-key rate, revocation latency,
                      HTTP encrypt throughput and latency.
byok bench http       the data routes over HTTP (8 keep-alive connections, 1 KiB) against a
                      minimal net/http handler doing the same JSON, base64 and one AES-GCM
                      seal in the same run: ops/s, p50, p99, byok/ceiling; the batch route.
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	which := fs.Arg(0)
	switch which {
	case "":
	case "lifecycle", "http":
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			fs.Usage()
			return &usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
		}
		if *rounds < 1 || *duration <= 0 {
			return &usageError{msg: "--rounds and --duration must be positive"}
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
	switch which {
	case "lifecycle":
		return bench.RunLifecycle(stdout, dir, *deks)
	case "http":
		return bench.RunHTTP(stdout, dir, *rounds, *duration)
	}
	return bench.Run(stdout, dir)
}
