package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/openbyok/byok/internal/bench"
)

func benchCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bench [lifecycle [--deks N] | http [--duration D] [--rounds N]]",
		Short: "measure Encrypt and Decrypt against raw AES-256-GCM",
		Long: `byok bench            Encrypt and Decrypt against a plain AES-256-GCM seal in the same run:
                      ratios, allocations, provider calls per 10^6 warm operations.
byok bench lifecycle  the lifecycle against the Key Vault emulator: vault calls of warm
                      operations and of a rotation, the re-key rate, revocation latency,
                      HTTP encrypt throughput and latency.
byok bench http       the data routes over HTTP (8 keep-alive connections, 1 KiB) against a
                      minimal net/http handler doing the same JSON, base64 and one AES-GCM
                      seal in the same run: ops/s, p50, p99, byok/ceiling; the batch route.`,
		Example: `  byok bench
  byok bench lifecycle --deks 10000
  byok bench http --duration 5s --rounds 5`,
		Args: func(_ *cobra.Command, pos []string) error {
			if len(pos) > 0 {
				return usagef("unknown benchmark %q: give lifecycle, http or nothing", pos[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			return inBenchDir(func(dir string) error { return bench.Run(c.OutOrStdout(), dir) })
		},
	}

	lifecycle := &cobra.Command{
		Use:     "lifecycle [--deks N]",
		Short:   "the lifecycle against the Key Vault emulator: vault calls, re-key rate, revocation latency, HTTP",
		Example: "  byok bench lifecycle\n  byok bench lifecycle --deks 10000",
	}
	deks := lifecycle.Flags().Int("deks", 100_000, "the DEKs of the tenant that is rotated and re-keyed")
	lifecycle.RunE = func(c *cobra.Command, _ []string) error {
		return inBenchDir(func(dir string) error { return bench.RunLifecycle(c.OutOrStdout(), dir, *deks) })
	}

	http := &cobra.Command{
		Use:     "http [--duration D] [--rounds N]",
		Short:   "the data routes over HTTP against a minimal net/http handler doing the same work",
		Example: "  byok bench http\n  byok bench http --duration 5s --rounds 5",
	}
	duration := http.Flags().Duration("duration", 3*time.Second, "the length of each load run")
	rounds := http.Flags().Int("rounds", bench.Rounds, "interleaved rounds; the best of each target is kept")
	http.RunE = func(c *cobra.Command, _ []string) error {
		if *rounds < 1 || *duration <= 0 {
			return usagef("--rounds and --duration must be positive")
		}
		return inBenchDir(func(dir string) error { return bench.RunHTTP(c.OutOrStdout(), dir, *rounds, *duration) })
	}

	c.AddCommand(lifecycle, http)
	return c
}

// inBenchDir runs f in a temporary directory, removed afterwards.
func inBenchDir(f func(dir string) error) error {
	dir, err := os.MkdirTemp("", "byok-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return f(dir)
}
