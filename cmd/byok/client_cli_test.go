package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbyok/byok/client"
	"github.com/openbyok/byok/client/clienttest"
)

// cli runs byok's command line in-process, as main does, with stdin as
// its standard input, and returns the exit code, its stdout and its
// stderr.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// runKVEmulator runs byok kv-emulator with args and returns its error.
func runKVEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, err := execute(ctx, append([]string{"kv-emulator"}, args...), strings.NewReader(""), stdout, stderr)
	return err
}

// as returns the flags that connect to srv with tok, which goes in a
// token file as recommended.
func as(t *testing.T, srv *clienttest.Server, tok string) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--server", srv.URL, "--token-file", f}
}

// args joins command words and flags.
func args(words string, flags ...[]string) []string {
	out := strings.Fields(words)
	for _, f := range flags {
		out = append(out, f...)
	}
	return out
}

// mustRun runs a command and fails t unless it exits 0.
func mustRun(t *testing.T, stdin string, a []string) string {
	t.Helper()
	code, out, errOut := cli(t, stdin, a...)
	if code != 0 {
		t.Fatalf("byok %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(a, " "), code, out, errOut)
	}
	return out
}

// mustFail runs a command and fails t unless it exits code with want in
// its stderr.
func mustFail(t *testing.T, code int, want string, stdin string, a []string) string {
	t.Helper()
	got, out, errOut := cli(t, stdin, a...)
	if got != code || !strings.Contains(errOut, want) {
		t.Fatalf("byok %s: exit %d, stderr %q; want exit %d and %q\nstdout: %s", strings.Join(a, " "), got, errOut, code, want, out)
	}
	return errOut
}

func TestTenantAndTokenCommands(t *testing.T) {
	srv := clienttest.New(t, 0)
	op := as(t, srv, srv.Operator)

	out := mustRun(t, "", args("tenant create acme --scopes chat,files", op))
	if !strings.Contains(out, "TENANT") || !strings.Contains(out, "acme") || !strings.Contains(out, "grace") || !strings.Contains(out, "none") {
		t.Fatalf("tenant create printed %q; want a table row acme grace none", out)
	}
	mustRun(t, "", args("tenant create globex --policy strict", op))
	errOut := mustFail(t, 1, "already_exists", "", args("tenant create acme", op))
	if !strings.Contains(errOut, "HTTP 409") {
		t.Fatalf("a taken id: stderr %q, want the HTTP status", errOut)
	}
	mustFail(t, 1, "invalid_input", "", args("tenant create bad --policy lenient", op))
	out = mustRun(t, "", args("tenant list", op))
	if strings.Count(out, "\n") != 3 || !strings.Contains(out, "globex") || !strings.Contains(out, "strict") {
		t.Fatalf("tenant list printed %q; want a header and two tenants", out)
	}
	var ts []client.Tenant
	if err := json.Unmarshal([]byte(mustRun(t, "", args("tenant list --json --after acme", op))), &ts); err != nil || len(ts) != 1 || ts[0].ID != "globex" {
		t.Fatalf("tenant list --json --after acme = %+v, %v; want globex", ts, err)
	}
	var tn client.Tenant
	if err := json.Unmarshal([]byte(mustRun(t, "", args("tenant show --json acme", op))), &tn); err != nil || tn.ID != "acme" {
		t.Fatalf("tenant show --json = %+v, %v", tn, err)
	}
	if out = mustRun(t, "", args("tenant policy acme strict", op)); !strings.Contains(out, "strict") {
		t.Fatalf("tenant policy printed %q; want strict", out)
	}
	errOut = mustFail(t, 1, "not_found", "", args("tenant show nobody", op))
	if !strings.Contains(errOut, "hint:") {
		t.Fatalf("not found: stderr %q, want a hint", errOut)
	}

	// token create prints the token alone on stdout, the notes on stderr.
	code, out, errOut := cli(t, "", args("token create --kind service --tenants acme,globex --name billing --ttl 48h", op)...)
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, "byok_service_") || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "shown this once") {
		t.Fatalf("token create: exit %d, stdout %q, stderr %q; want the token alone and a note", code, out, errOut)
	}
	id := strings.Split(tok, "_")[2]
	out = mustRun(t, "", args("token list", op))
	if !strings.Contains(out, id) || !strings.Contains(out, "billing") || strings.Contains(out, tok) {
		t.Fatalf("token list printed %q; want the billing token's id, never its text", out)
	}
	if out = mustRun(t, "", args("token revoke "+id, op)); !strings.Contains(out, "revoked") {
		t.Fatalf("token revoke printed %q; want revoked", out)
	}
	mustFail(t, 1, "token_revoked", "x", args("encrypt --tenant acme --scope chat", as(t, srv, tok)))
	mustFail(t, 2, "--kind is required", "", args("token create", op))
	mustFail(t, 1, "invalid_input", "", args("token revoke nothex", op))
	var created client.Token
	if err := json.Unmarshal([]byte(mustRun(t, "", args("token create --json --kind tenant-admin --tenants acme", op))), &created); err != nil || created.Token == "" {
		t.Fatalf("token create --json = %+v, %v; want the token's text in the JSON", created, err)
	}
}

func TestClientCommandErrors(t *testing.T) {
	srv := clienttest.New(t, 0)
	t.Setenv(envServer, "")
	t.Setenv(envToken, "")
	t.Setenv(envTenant, "")
	op := as(t, srv, srv.Operator)
	mustFail(t, 2, "no server", "", args("tenant list"))
	mustFail(t, 2, "no token", "", args("tenant list --server", []string{srv.URL}))
	mustFail(t, 2, "not an http or https URL", "", args("tenant list --server ftp://x --token t"))
	mustFail(t, 2, "cannot read the token file", "", args("tenant list --server", []string{srv.URL, "--token-file", "/nonexistent/token"}))
	open := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(open, []byte(srv.Operator), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustFail(t, 2, "chmod 600", "", args("tenant list --server", []string{srv.URL, "--token-file", open})); strings.Contains(out, srv.Operator) {
		t.Fatal("the refusal of a readable token file shows the token")
	}
	errOut := mustFail(t, 1, "unauthenticated", "", args("tenant list --server", []string{srv.URL, "--token", "byok_operator_wrong"}))
	if !strings.Contains(errOut, "hint: check $BYOK_TOKEN") || strings.Contains(errOut, "byok_operator_wrong") {
		t.Fatalf("a wrong token: stderr %q; want the token hint and never the token", errOut)
	}
	mustFail(t, 2, "flag provided but not defined", "", args("tenant list --colour", op))
	mustFail(t, 2, "want 1 argument(s): ID", "", args("tenant show", op))
	mustFail(t, 2, "unexpected argument", "", args("tenant list extra", op))
	mustFail(t, 2, "unknown subcommand", "", args("tenant destroy", op))
	mustFail(t, 2, "usage: byok key", "", args("key"))
	mustFail(t, 2, "no tenant", "", args("key status", op))
	if code, out, _ := cli(t, "", "token", "help"); code != 0 || !strings.Contains(out, "create|list|revoke") {
		t.Fatalf("token help: exit %d, %q", code, out)
	}
	if code, _, errOut := cli(t, "", "tenant", "create", "-h"); code != 0 || !strings.Contains(errOut, "--policy") && !strings.Contains(errOut, "-policy") {
		t.Fatalf("tenant create -h: exit %d, %q; want 0 and the flags", code, errOut)
	}
	// A tenant-admin token on an operator route: 403 and the kind's hint.
	mustRun(t, "", args("tenant create acme", op))
	admin := srv.Token(t, "tenant-admin", 0, "acme")
	mustFail(t, 1, "forbidden", "", args("tenant list", as(t, srv, admin)))

	// The environment: BYOK_SERVER, BYOK_TOKEN and BYOK_TENANT are the defaults.
	t.Setenv(envServer, srv.URL)
	t.Setenv(envToken, srv.Operator)
	if out := mustRun(t, "", args("tenant show acme")); !strings.Contains(out, "acme") {
		t.Fatalf("tenant show from the environment printed %q", out)
	}
	t.Setenv(envToken, admin)
	t.Setenv(envTenant, "acme")
	if out := mustRun(t, "", args("key status")); !strings.Contains(out, "none") {
		t.Fatalf("key status from the environment printed %q", out)
	}
}

// TestDataInputLimit checks that encrypt refuses, before any request, an
// input over what one data call carries.
func TestDataInputLimit(t *testing.T) {
	big := strings.Repeat("a", maxDataInput+1)
	mustFail(t, 1, "over 6 MiB", big, args("encrypt --server http://127.0.0.1:1 --token t --tenant acme --scope chat"))
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{usagef("bad flag"), 2},
		{apiError(&client.Error{Status: 409, Code: client.CodeInvalidState, Message: "m"}), 1},
		{errors.New("connection refused"), 1},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	e := apiError(&client.Error{Status: 503, Code: client.CodeKeyUnavailable, Message: "vault down", RetryAfter: 30e9})
	if !errors.Is(e, client.ErrKeyUnavailable) || !strings.Contains(e.Error(), "retry in 30s") {
		t.Fatalf("apiError = %q; want it to unwrap to the client error and give the retry delay", e)
	}
	if e := apiError(&client.Error{Status: 500, Code: client.CodeInternal, Message: "internal error", RequestID: "r-42"}); !strings.Contains(e.Error(), "r-42") {
		t.Fatalf("apiError of an internal error = %q; want the request id", e)
	}
}
