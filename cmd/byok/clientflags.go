package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openbyok/byok/client"
)

// The commands that talk to a byok server (tenant, token, key, encrypt,
// decrypt) share the flags and helpers of this file.

// Environment variables of the client commands.
const (
	envServer = "BYOK_SERVER" // the server's base URL
	envToken  = "BYOK_TOKEN"  // the bearer token
	envTenant = "BYOK_TENANT" // the tenant of key, encrypt and decrypt
)

// usageError is a mistake in the command line: a missing or bad flag or
// argument, or no server or token given. It maps to exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a *usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode is the process exit code of a client command's error: 0 for
// none (and for -h), 2 for a usage error, 1 for anything else, above all
// an error answer of the server.
func exitCode(err error) int {
	var u *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}

// clientFlags are the flags of every client command.
type clientFlags struct {
	server    string
	token     string
	tokenFile string
	json      bool
}

func (f *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.server, "server", os.Getenv(envServer), "the byok server's base `URL` (default $"+envServer+")")
	fs.StringVar(&f.tokenFile, "token-file", "", "read the bearer token from `file` (default $"+envToken+")")
	fs.StringVar(&f.token, "token", "", "the bearer `token`; visible to other users in the process list: prefer $"+envToken+" or --token-file")
	fs.BoolVar(&f.json, "json", false, "print the server's answer as JSON, for scripts")
}

// client returns a client of the flags' server and token. The token comes
// from --token-file, else --token, else $BYOK_TOKEN.
func (f *clientFlags) client() (*client.Client, error) {
	if f.server == "" {
		return nil, usagef("no server: set %s or give --server, e.g. --server http://127.0.0.1:8080", envServer)
	}
	tok := f.token
	switch {
	case f.tokenFile != "":
		b, err := readPrivateFile(f.tokenFile)
		if err != nil {
			return nil, usagef("cannot read the token file: %v", err)
		}
		tok = strings.TrimSpace(string(b))
	case tok == "":
		tok = strings.TrimSpace(os.Getenv(envToken))
	}
	if tok == "" {
		return nil, usagef("no token: set %s, or give --token-file FILE", envToken)
	}
	c, err := client.New(f.server, tok, nil)
	if err != nil {
		return nil, usagef("%s", strings.TrimPrefix(err.Error(), "client: "))
	}
	return c, nil
}

// pageFlags are the flags of a listing in pages, by id.
type pageFlags struct {
	after string
	limit int
}

func (p *pageFlags) register(fs *pflag.FlagSet, what string) {
	fs.StringVar(&p.after, "after", "", "list the "+what+" after this `id`")
	fs.IntVar(&p.limit, "limit", 0, "list at most `n` "+what+" (server default 100, at most 1000)")
}

func (p *pageFlags) page() client.Page { return client.Page{After: p.after, Limit: p.limit} }

// wantArgs returns the check of a command that takes exactly the named
// positional arguments (none by default).
func wantArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, pos []string) error {
		switch {
		case len(pos) == len(names):
			return nil
		case len(names) == 0:
			return usagef("unexpected argument %q; see -h", pos[0])
		}
		return usagef("want %d argument(s): %s; got %d (see -h)", len(names), strings.Join(names, " "), len(pos))
	}
}

// flagError turns an error of the flag parser into a usage error, in the
// words of Go's flag package.
func flagError(c *cobra.Command, err error) error {
	var nf *pflag.NotExistError
	if errors.As(err, &nf) {
		name := "--" + nf.GetSpecifiedName()
		if short := nf.GetSpecifiedShortnames(); short != "" {
			name = "-" + nf.GetSpecifiedName()
			if len(short) > 1 && c.Flags().Lookup(short) != nil {
				return usagef("flag provided but not defined: -%s; did you mean --%s?", short, short)
			}
		}
		return usagef("flag provided but not defined: %s; see %s -h", name, c.CommandPath())
	}
	return usagef("%v; see %s -h", err, c.CommandPath())
}

// completeWords completes a flag's value with one of words.
func completeWords(c *cobra.Command, flag string, words ...string) {
	c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp))
}

// apiError adds to an error answer of the server what the user can do
// about it from the command line. Other errors are returned as they are.
func apiError(err error) error {
	var e *client.Error
	if !errors.As(err, &e) {
		return err
	}
	hint := ""
	switch e.Code {
	case client.CodeUnauthenticated:
		hint = "check $" + envToken + " or --token-file: it must hold a whole byok_<kind>_<id>_<secret> token"
	case client.CodeTokenExpired, client.CodeTokenRevoked:
		hint = "ask an operator for a new token (byok token create)"
	case client.CodeForbidden:
		hint = "operators manage tenants and tokens, tenant admins their key, services encrypt and decrypt"
	case client.CodeNotFound:
		hint = "check the tenant id and the token: a token sees only its own tenants"
	case client.CodeInvalidState:
		hint = "byok key status shows the key's state"
	case client.CodeKeyUnavailable, client.CodeTimeout, client.CodeUnavailable:
		if e.RetryAfter > 0 {
			hint = "retry in " + e.RetryAfter.String()
		}
	case client.CodeInternal:
		hint = "quote request id " + e.RequestID + " to the operator"
	}
	msg := fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
	if hint != "" {
		msg += "\n  hint: " + hint
	}
	return &cliError{msg: msg, err: err}
}

// cliError is an error answer explained for the command line; it unwraps
// to the *client.Error.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes rows as aligned columns, the first being the header.
func table(w io.Writer, rows ...[]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// when formats a time for humans: RFC 3339 in UTC, or "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// list splits a comma-separated flag value; "" is no items.
func list(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// orDash returns s, or "-" if it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readPrivateFile reads a file that holds a secret, refusing one that
// users other than its owner may read or write: a secret there may already
// have leaked, and should be replaced.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o, so other users can read it: run chmod 600 %s (and replace the secret if it may have been read)", path, perm, path)
	}
	return io.ReadAll(f)
}
