package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/openbyok/byok/internal/bench"
)

func runBench(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		io.WriteString(stderr, "usage: byok bench\n\nMeasures Encrypt and Decrypt against a plain AES-256-GCM seal in the same run\nand prints the ratios, allocations and provider calls per 10^6 warm operations.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "byok-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return bench.Run(stdout, dir)
}
