package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/store/sqlite"
)

// auditCmd is "byok audit verify|export": operator tools that read the
// SQLite database directly.
func auditCmd() *cobra.Command {
	return group("audit", "verify or export the audit log of a SQLite database",
		"  byok audit verify --db /var/lib/byok/byok.db\n  byok audit export --db /var/lib/byok/byok.db --tenant acme --since 24h --out acme.jsonl",
		auditVerifyCmd(), auditExportCmd())
}

// auditFlags are the flags verify and export share.
type auditFlags struct {
	db       string
	tenant   string
	platform bool
}

func (f *auditFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.db, "db", "", "the byok SQLite database `file` (required)")
	fs.StringVar(&f.tenant, "tenant", "", "only the chain of this `tenant`")
	fs.BoolVar(&f.platform, "platform", false, "only the platform chain")
}

// filter returns the chains the flags select: all by default.
func (f *auditFlags) filter() (audit.Filter, error) {
	switch {
	case f.tenant != "" && f.platform:
		return audit.Filter{}, usagef("--tenant and --platform exclude each other: give one, or neither for every chain")
	case f.tenant != "":
		return audit.Filter{Tenant: f.tenant}, nil
	case f.platform:
		return audit.Filter{Platform: true}, nil
	}
	return audit.Filter{All: true}, nil
}

// open opens the database read for the tools; unlike sqlite.Open, it
// refuses a path where no database exists instead of creating one.
func (f *auditFlags) open(ctx context.Context) (*sqlite.DB, error) {
	if f.db == "" {
		return nil, usagef("--db is required: give the path of the byok SQLite database")
	}
	if _, err := os.Stat(f.db); err != nil {
		return nil, fmt.Errorf("no database at %s: %w", f.db, err)
	}
	return sqlite.Open(ctx, f.db)
}

func auditVerifyCmd() *cobra.Command {
	var af auditFlags
	var head string
	c := &cobra.Command{
		Use:   "verify --db FILE [--tenant T | --platform] [--head SEQ:HASH]",
		Short: "check every hash chain of the audit log; exit 1 if a row was altered outside byok",
		Example: `  byok audit verify --db /var/lib/byok/byok.db
  byok audit verify --db /var/lib/byok/byok.db --tenant acme --head 42:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return auditVerify(cmd.Context(), af, head, cmd.OutOrStdout())
		},
	}
	af.register(c.Flags())
	c.Flags().StringVar(&head, "head", "", "`SEQ:HASH` of the chain's head recorded earlier (needs --tenant or --platform): fails if those rows were deleted or changed")
	return c
}

func auditVerify(ctx context.Context, af auditFlags, head string, stdout io.Writer) error {
	f, err := af.filter()
	if err != nil {
		return err
	}
	var want audit.Head
	if head != "" {
		if f.All {
			return usagef("--head needs --tenant or --platform: a head belongs to one chain")
		}
		if want, err = parseHead(head); err != nil {
			return err
		}
	}
	db, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	r, verr := audit.New(db, nil).Verify(ctx, f)
	for _, c := range r.Chains {
		fmt.Fprintf(stdout, "%s: %d events, head seq %d hash %s\n", chainLabel(c.Tenant), c.Events, c.Head.Seq, c.Head.Hash)
	}
	for _, fd := range r.Findings {
		fmt.Fprintf(stdout, "BROKEN %s\n", fd)
	}
	if r.MoreFindings > 0 {
		fmt.Fprintf(stdout, "BROKEN … and %d more problems\n", r.MoreFindings)
	}
	var te *audit.TamperError
	switch {
	case errors.As(verr, &te):
		return fmt.Errorf("the audit log of %s was altered outside byok: %d problem(s), listed above; restore the database from a backup and investigate",
			af.db, len(te.Findings)+te.More)
	case verr != nil:
		return verr
	}
	if head != "" {
		if err := checkHead(ctx, db, f, r, want); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, "OK: every chain verifies")
	return nil
}

// parseHead parses SEQ:HASH.
func parseHead(s string) (audit.Head, error) {
	seq, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil || n == 0 || len(hash) != 64 {
		return audit.Head{}, usagef("--head %q is not SEQ:HASH (a sequence number and a 64-digit hash, as verify prints them)", s)
	}
	return audit.Head{Seq: n, Hash: strings.ToLower(hash)}, nil
}

// checkHead checks that the event at want.Seq of the verified chain still
// has hash want.Hash: the chain has not been cut back to before it.
func checkHead(ctx context.Context, db *sqlite.DB, f audit.Filter, r audit.Report, want audit.Head) error {
	c := r.Chains[0]
	if c.Head.Seq < want.Seq {
		return fmt.Errorf("%s ends at seq %d, before the recorded head seq %d: its newest %d event(s) were deleted",
			chainLabel(c.Tenant), c.Head.Seq, want.Seq, want.Seq-c.Head.Seq)
	}
	es, err := db.AuditEvents(ctx, audit.Query{Tenant: f.Tenant, After: audit.Position{Tenant: f.Tenant, Seq: want.Seq - 1}, Limit: 1})
	if err != nil {
		return err
	}
	if len(es) != 1 || es[0].Hash != want.Hash {
		return fmt.Errorf("%s seq %d does not have the recorded hash %s: the chain was rewritten from there on", chainLabel(c.Tenant), want.Seq, want.Hash)
	}
	return nil
}

func chainLabel(tenant string) string {
	if tenant == "" {
		return "platform chain"
	}
	return fmt.Sprintf("tenant %q", tenant)
}

func auditExportCmd() *cobra.Command {
	var af auditFlags
	var since, until, action, out string
	c := &cobra.Command{
		Use:   "export --db FILE [--tenant T | --platform] [--since T] [--until T] [--action PREFIX] [--out FILE]",
		Short: "write the audit events as JSON lines, which byok audit verify and jq read",
		Example: `  byok audit export --db /var/lib/byok/byok.db --since 24h > last-day.jsonl
  byok audit export --db /var/lib/byok/byok.db --tenant acme --action key. --out acme-keys.jsonl`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := af.filter()
			if err != nil {
				return err
			}
			now := time.Now()
			if f.Since, err = parseWhen("--since", since, now); err != nil {
				return err
			}
			if f.Until, err = parseWhen("--until", until, now); err != nil {
				return err
			}
			f.ActionPrefix = action
			return auditExport(cmd.Context(), af, f, out, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := c.Flags()
	af.register(fs)
	fs.StringVar(&since, "since", "", "only events at or after `T`: RFC 3339 (2026-07-01T00:00:00Z) or a duration before now (24h)")
	fs.StringVar(&until, "until", "", "only events before `T`, as --since")
	fs.StringVar(&action, "action", "", "only events whose action starts with `PREFIX` (key., vault., usage)")
	fs.StringVar(&out, "out", "", "write to `file` instead of stdout")
	return c
}

func auditExport(ctx context.Context, af auditFlags, f audit.Filter, out string, stdout, stderr io.Writer) error {
	db, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	w := stdout
	if out != "" {
		file, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("--out: %w (export never overwrites a file)", err)
		}
		defer file.Close()
		w = file
	}
	n, err := audit.New(db, nil).Export(ctx, w, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d events\n", n)
	if out != "" {
		return w.(*os.File).Close()
	}
	return nil
}

// parseWhen parses an RFC 3339 time or a duration before now; "" is the
// zero time.
func parseWhen(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("%s %q is neither an RFC 3339 time (2026-07-01T00:00:00Z) nor a positive duration (24h)", name, s)
}
