package main

import (
	"context"
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

// TestTenantAndTokenCommands and TestClientCommandErrors are the scripts
// testdata/script/tenant_token.txtar and errors.txtar (TestScripts).

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
