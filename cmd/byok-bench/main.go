// Command byok-bench measures byok: the data path against raw AES-256-GCM,
// the lifecycle against the Key Vault emulator, the HTTP routes against a
// minimal handler, and the keyring at many tenants.
//
// It is a command of its own, as age ships age-keygen beside age, so that
// the byok binary run in production links none of what it measures with:
// package testing (testing.Benchmark), the fake provider of kms/kmstest and
// internal/bench (imports_test.go at the module root checks this).
//
//	go run ./cmd/byok-bench
//	go run ./cmd/byok-bench lifecycle --deks 10000
//	go run ./cmd/byok-bench http --duration 5s --rounds 5
//	go run ./cmd/byok-bench scale [--cold]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/openbyok/byok/internal/bench"
)

func main() { os.Exit(benchMain()) }

// benchMain is the process's entry point; the test scripts run it as their
// byok-bench command.
func benchMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// run runs the command line args and returns the process exit code: 0, 2
// for a mistake in the command line, 1 for a failed measurement. An error
// goes to stderr after the path of the command that failed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	if errors.As(err, new(*usageError)) {
		return 2
	}
	return 1
}

// usageError is a mistake in the command line; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// newRoot returns byok-bench's command tree: the data path benchmark at the
// root, the others as subcommands.
func newRoot() *cobra.Command {
	c := &cobra.Command{
		Use:   "byok-bench [lifecycle [--deks N] | http [--duration D] [--rounds N] | scale [flags]]",
		Short: "measure Encrypt and Decrypt against raw AES-256-GCM",
		Long: `byok-bench            Encrypt and Decrypt against a plain AES-256-GCM seal in the same run:
                      ratios, allocations, provider calls per 10^6 warm operations.
byok-bench lifecycle  the lifecycle against the Key Vault emulator: vault calls of warm
                      operations and of a rotation, the re-key rate, revocation latency,
                      HTTP encrypt throughput and latency.
byok-bench http       the data routes over HTTP (8 keep-alive connections, 1 KiB) against a
                      minimal net/http handler doing the same JSON, base64 and one AES-GCM
                      seal in the same run: ops/s, p50, p99, byok/ceiling; the batch route.
byok-bench scale      the keyring at 100,000 tenants with Zipf traffic: peak RSS, vault calls
                      against their floor, p99 against one warm tenant, cache hit rates.`,
		Example: `  byok-bench
  byok-bench lifecycle --deks 10000
  byok-bench http --duration 5s --rounds 5`,
		SilenceErrors: true, // run prints them
		SilenceUsage:  true,
		Args: func(_ *cobra.Command, pos []string) error {
			if len(pos) > 0 {
				return usagef("unknown benchmark %q: give lifecycle, http, scale or nothing", pos[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			return inBenchDir(func(dir string) error { return bench.Run(c.OutOrStdout(), dir) })
		},
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}

	lifecycle := &cobra.Command{
		Use:     "lifecycle [--deks N]",
		Short:   "the lifecycle against the Key Vault emulator: vault calls, re-key rate, revocation latency, HTTP",
		Example: "  byok-bench lifecycle\n  byok-bench lifecycle --deks 10000",
		Args:    noArgs,
	}
	deks := lifecycle.Flags().Int("deks", 100_000, "the DEKs of the tenant that is rotated and re-keyed")
	lifecycle.RunE = func(c *cobra.Command, _ []string) error {
		return inBenchDir(func(dir string) error { return bench.RunLifecycle(c.OutOrStdout(), dir, *deks) })
	}

	http := &cobra.Command{
		Use:     "http [--duration D] [--rounds N]",
		Short:   "the data routes over HTTP against a minimal net/http handler doing the same work",
		Example: "  byok-bench http\n  byok-bench http --duration 5s --rounds 5",
		Args:    noArgs,
	}
	duration := http.Flags().Duration("duration", 3*time.Second, "the length of each load run")
	rounds := http.Flags().Int("rounds", bench.Rounds, "interleaved rounds; ratios are the medians of the rounds' ratios")
	http.RunE = func(c *cobra.Command, _ []string) error {
		if *rounds < 1 || *duration <= 0 {
			return usagef("--rounds and --duration must be positive")
		}
		return inBenchDir(func(dir string) error { return bench.RunHTTP(c.OutOrStdout(), dir, *rounds, *duration) })
	}

	scale := &cobra.Command{
		Use:   "scale [--cold] [--tenants N] [--byok-percent P] [--scopes N] [--latency D] [--duration D] [--callers N] [--check-interval D]",
		Short: "the keyring at many tenants: memory, vault calls against their floor, latency against one tenant",
		Long: `byok-bench scale builds a SQLite store of N tenants (10 % BYOK over a vault whose every call
takes --latency) and runs Zipf-distributed traffic over their scopes through one keyring with
its default cache limits, in three passes: cold, the same calls again warm, and a steady pass.
It prints ops/s, p50/p99 against one warm tenant, customer-vault calls per second against the
floor (BYOK tenants in use / check interval), platform root key calls, cache hit rates and the
process's peak RSS. Building 100,000 tenants takes a few minutes.`,
		Example: "  byok-bench scale\n  byok-bench scale --tenants 10000 --duration 10s\n  byok-bench scale --cold",
		Args:    noArgs,
	}
	var so bench.ScaleOptions
	scale.Flags().IntVar(&so.Tenants, "tenants", 100_000, "tenants in the store")
	scale.Flags().IntVar(&so.BYOKPercent, "byok-percent", 10, "the share of tenants with their own key, in percent")
	scale.Flags().IntVar(&so.Scopes, "scopes", 10, "scopes per tenant")
	scale.Flags().DurationVar(&so.Latency, "latency", 20*time.Millisecond, "the time each call to a customer's vault takes")
	scale.Flags().DurationVar(&so.Duration, "duration", 30*time.Second, "the length of the cold and the steady pass")
	scale.Flags().IntVar(&so.Workers, "callers", 8, "concurrent callers")
	scale.Flags().DurationVar(&so.CheckInterval, "check-interval", 10*time.Second, "the keyring's check interval")
	cold := scale.Flags().Bool("cold", false, "measure the lifecycle instead: 10,000 BYOK tenants (or --tenants) with one enforcement date, a replica's cold start (every key warm), the monitor's pass and the detection of an idle tenant's revocation, at --latency, check interval 60s (or --check-interval); about 8 minutes")
	scale.RunE = func(c *cobra.Command, _ []string) error {
		if *cold {
			mo := bench.MonitorOptions{Tenants: 10_000, Latency: so.Latency, Interval: time.Minute, Progress: c.ErrOrStderr()}
			if c.Flags().Changed("tenants") {
				mo.Tenants = so.Tenants
			}
			if c.Flags().Changed("check-interval") {
				mo.Interval = so.CheckInterval
			}
			if mo.Tenants < 1 || mo.Latency <= 0 || mo.Interval <= 0 {
				return usagef("--tenants, --latency and --check-interval must be positive")
			}
			return inBenchDir(func(dir string) error {
				mo.Dir = dir
				r, err := bench.MeasureMonitor(c.Context(), mo)
				if err != nil {
					return err
				}
				r.Print(c.OutOrStdout())
				return nil
			})
		}
		if so.Tenants < 1 || so.BYOKPercent < 1 || so.BYOKPercent > 100 || so.Scopes < 1 || so.Workers < 1 ||
			so.Latency <= 0 || so.Duration <= 0 || so.CheckInterval <= 0 {
			return usagef("--tenants, --scopes, --callers, --latency, --duration and --check-interval must be positive, --byok-percent 1 to 100")
		}
		return inBenchDir(func(dir string) error { return bench.RunScale(c.OutOrStdout(), dir, so) })
	}

	c.AddCommand(lifecycle, http, scale)
	c.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v; see %s -h", err, c.CommandPath())
	})
	for _, s := range c.Commands() {
		s.DisableFlagsInUseLine = true // Use is the whole synopsis
	}
	c.DisableFlagsInUseLine = true
	return c
}

// noArgs is the check of a subcommand, which takes no arguments.
func noArgs(_ *cobra.Command, pos []string) error {
	if len(pos) > 0 {
		return usagef("unexpected argument %q; see -h", pos[0])
	}
	return nil
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
