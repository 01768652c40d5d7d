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

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/internal/memlimit"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

func serveCmd() *cobra.Command {
	var path, tokenFile string
	var env []string
	for _, o := range config.Overrides {
		env = append(env, o.Env)
	}
	c := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "serve the HTTP API and run the scheduler, monitor and jobs",
		Long: "Serves the HTTP API and runs the scheduler, health monitor and jobs.\nEnvironment variables override the file: " +
			strings.Join(env, " ") + "\n(docs/operations.md).",
		Example: `  byok serve --config /etc/byok/config.yaml
  BYOK_CONFIG=/etc/byok/config.yaml byok serve`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), path, tokenFile, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&path, "config", os.Getenv("BYOK_CONFIG"), "the configuration `file` (default $BYOK_CONFIG)")
	c.Flags().StringVar(&tokenFile, "operator-token-file", "", "the `file` the first operator token is written to on first run (default: operator.token beside the SQLite file, or in the working directory)")
	return c
}

func serve(ctx context.Context, path, tokenFile string, stdout, stderr io.Writer) error {
	if path == "" {
		return usagef("no configuration: give --config FILE (see docs/operations.md for an example)")
	}
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)
	if limit := memlimit.Set(os.Getenv, memlimit.Cgroup); limit > 0 {
		logger.Info("Go memory limit set below the container's", "bytes", limit, "share", memlimit.Share)
	}
	if tokenFile == "" {
		tokenFile = "operator.token"
		if cfg.Store.SQLite != "" {
			tokenFile = filepath.Join(filepath.Dir(cfg.Store.SQLite), "operator.token")
		}
	}
	tracer, stopTracing, err := setupTracing(ctx, os.Getenv, logger)
	if err != nil {
		return err
	}
	defer stopTracing() // after the server's shutdown: flushes the last spans
	host, _ := os.Hostname()
	a, err := openApp(ctx, cfg, appOptions{getenv: os.Getenv, replicaID: fmt.Sprintf("%s-%d", host, os.Getpid()), tracer: tracer}, logger)
	if err != nil {
		return err
	}
	defer a.close()
	if err := bootstrapOperator(ctx, a.db, tokenFile, stdout); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	logger.Info("byok serving", "url", scheme+"://"+ln.Addr().String(), "platform_key", a.prk.id, "replicas", a.pg != nil)
	return a.run(ctx, ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
}

// bootstrapOperator creates the first operator token when the database
// has no token at all, and writes it, readable by its owner only, to path:
// only its digest is stored, so this is the one time it can be read. The
// file must not exist yet (an existing file would keep its mode, or could
// be a link to elsewhere), and it is created before the token is stored,
// so that a path that cannot be written stores no token and the next
// start bootstraps again.
func bootstrapOperator(ctx context.Context, db server.Store, path string, stdout io.Writer) error {
	existing, err := db.ListTokens(ctx, "", 1)
	if err != nil || len(existing) > 0 {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating the first operator token's file (it must not exist; remove it or give another --operator-token-file): %w", err)
	}
	text, _, err := server.IssueToken(ctx, db, token.Operator, nil, "bootstrap", 0)
	if err == nil {
		_, err = f.WriteString(text + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing the first operator token: %w", err)
	}
	fmt.Fprintf(stdout, "first operator token written to %s (mode 0600); create others with it and delete the file\n", path)
	return nil
}
