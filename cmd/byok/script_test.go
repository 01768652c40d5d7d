package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"

	"github.com/openbyok/byok/client/clienttest"
	"github.com/openbyok/byok/internal/pgtest"
	"github.com/openbyok/byok/kms"
)

// TestMain makes the test binary the byok command of the scripts as well:
// run as "byok", it is byok's real entry point.
func TestMain(m *testing.M) {
	testscript.Main(pgtestRun{m}, map[string]func(){
		"byok": func() { os.Exit(byokMain()) },
	})
}

// pgtestRun runs the tests under pgtest, which stops its PostgreSQL
// server after them.
type pgtestRun struct{ m *testing.M }

func (r pgtestRun) Run() int { return pgtest.Run(r.m) }

// TestScripts runs the command line scripts of testdata/script. Each gets
// its own API server (clienttest): $BYOK_SERVER is its URL, $OPERATOR and
// operator.token (in the script's directory) an operator token, $CMK the
// customer key in its fake vault and $TOMORROW a day after its clock's
// now. The commands vault, clock and tick act on that server; auditdb
// FILE writes the audit log of TestAuditVerifyCommand.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			tb, ok := env.T().(testing.TB)
			if !ok {
				return fmt.Errorf("testscript's T is not a testing.TB")
			}
			srv := clienttest.New(tb, 0)
			env.Values[serverKey{}] = srv
			env.Setenv(envServer, srv.URL)
			env.Setenv("CMK", srv.CMK)
			env.Setenv("TOMORROW", srv.Now().Add(24*time.Hour).Format(time.RFC3339))
			env.Setenv("OPERATOR", srv.Operator)
			if os.Getenv("GORACE") == "" {
				env.Setenv("GORACE", "atexit_sleep_ms=0") // each byok run would sleep 1 s at exit
			}
			return os.WriteFile(filepath.Join(env.WorkDir, "operator.token"), []byte(srv.Operator+"\n"), 0o600)
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exits": cmdExits,
			"grab":  cmdGrab,
			"vault": cmdVault,
			"clock": cmdClock,
			"tick":  cmdTick,
			"auditdb": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: auditdb FILE")
				}
				ts.Check(writeAuditDB(ts.MkAbs(args[0])))
			},
		},
	})
}

// serverKey is the key of a script's *clienttest.Server in its Values.
type serverKey struct{}

func scriptServer(ts *testscript.TestScript) *clienttest.Server {
	return ts.Value(serverKey{}).(*clienttest.Server)
}

// cmdVault is "vault fail|heal": the customer's vault refuses the
// platform its key ($CMK), as when the customer removes its role, or
// serves it again.
func cmdVault(ts *testscript.TestScript, neg bool, args []string) {
	srv := scriptServer(ts)
	switch {
	case neg || len(args) != 1:
		ts.Fatalf("usage: vault fail|heal")
	case args[0] == "fail":
		srv.Customer.FailKey(srv.CMK, kms.Authoritative, kms.ReasonDenied)
	case args[0] == "heal":
		srv.Customer.HealKey(srv.CMK)
	default:
		ts.Fatalf("usage: vault fail|heal")
	}
}

// cmdClock is "clock DURATION": the server's clock moves on.
func cmdClock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: clock DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	scriptServer(ts).Advance(d)
}

// cmdTick is "tick": one pass of the server's background work
// (activation, jobs, health checks).
func cmdTick(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: tick")
	}
	ts.Check(scriptServer(ts).Lifecycle.Tick(context.Background()))
}

// cmdExits is "exits CODE PROGRAM [ARGS...]": it runs the program like
// exec, and fails unless it exits with CODE.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil || want == 0 {
		ts.Fatalf("exits: %q is no non-zero exit code; use exec for a success", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		ts.Fatalf("%s exited with %v; want exit code %d", args[1], err, want)
	}
	if ee.ExitCode() != want {
		ts.Fatalf("%s exited with code %d; want %d", args[1], ee.ExitCode(), want)
	}
}

// cmdGrab is "grab NAME REGEXP": it sets $NAME to the first group of
// REGEXP (multi-line) in the last command's stdout.
func cmdGrab(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: grab NAME REGEXP")
	}
	m := regexp.MustCompile("(?m)" + args[1]).FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("grab: no match of %s (with a group) in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// TestExamples checks that every command has a summary and examples, and
// that each example of a byok command line names a command of the tree,
// with flags it has and the arguments it wants.
func TestExamples(t *testing.T) {
	root := newRoot()
	root.InitDefaultHelpCmd()
	walk(root, func(c *cobra.Command) {
		if c.Short == "" || !strings.Contains(c.Example, c.CommandPath()) {
			t.Errorf("%s: summary %q, examples %q; want both, the examples with %q", c.CommandPath(), c.Short, c.Example, c.CommandPath())
		}
		for _, line := range strings.Split(strings.ReplaceAll(c.Example, "\\\n", " "), "\n") {
			words := exampleWords(line)
			if words == nil {
				continue
			}
			cmd, rest, err := newRoot().Find(words[1:])
			if err == nil && !cmd.DisableFlagParsing {
				if err = cmd.ParseFlags(rest); err == nil {
					err = cmd.ValidateArgs(cmd.Flags().Args())
				}
			}
			if err != nil || (cmd.DisableFlagParsing && len(rest) > 0) {
				t.Errorf("%s: example %q: %v (reached %s, left %q)", c.CommandPath(), line, err, cmd.CommandPath(), rest)
			}
		}
	})
}

// exampleWords returns the words of the byok command line in an example
// line: after a pipe, sudo and variable assignments, before a redirection
// or a comment; nil if it runs no byok.
func exampleWords(line string) []string {
	if i := strings.LastIndex(line, "| "); i >= 0 {
		line = line[i+2:]
	}
	for _, stop := range []string{" >", " <", " #", ";"} {
		line, _, _ = strings.Cut(line, stop)
	}
	var words []string
	for _, w := range regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(line, -1) {
		words = append(words, strings.Trim(w, `"`))
	}
	for len(words) > 0 && (words[0] == "sudo" || strings.Contains(words[0], "=")) {
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "byok" {
		return nil
	}
	return words
}
