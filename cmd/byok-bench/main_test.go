package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"
)

// TestMain makes the test binary the byok-bench command of the scripts as
// well: run as "byok-bench", it is byok-bench's real entry point.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"byok-bench": func() { os.Exit(benchMain()) },
	})
}

// TestScripts runs the command line scripts of testdata/script, each in a
// process of its own through benchMain.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			if os.Getenv("GORACE") == "" {
				env.Setenv("GORACE", "atexit_sleep_ms=0") // each run would sleep 1 s at exit
			}
			return nil
		},
	})
}

// TestExitCodes checks that a mistake in the command line exits 2 before
// anything is measured, and that help exits 0.
func TestExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-h"}, 0, ""},
		{[]string{"help", "scale"}, 0, ""},
		{[]string{"scale", "-h"}, 0, ""},
		{[]string{"nosuch"}, 2, `byok-bench: unknown benchmark "nosuch": give lifecycle, http, scale or nothing`},
		{[]string{"--deks", "5"}, 2, "byok-bench: unknown flag: --deks; see byok-bench -h"},
		{[]string{"lifecycle", "extra"}, 2, `byok-bench lifecycle: unexpected argument "extra"; see -h`},
		{[]string{"lifecycle", "--deks", "many"}, 2, "byok-bench lifecycle: invalid argument"},
		{[]string{"http", "--rounds", "0"}, 2, "byok-bench http: --rounds and --duration must be positive"},
		{[]string{"http", "--duration", "-1s"}, 2, "byok-bench http: --rounds and --duration must be positive"},
		{[]string{"scale", "--byok-percent", "101"}, 2, "byok-bench scale: --tenants, --scopes"},
		{[]string{"scale", "--cold", "--tenants", "0"}, 2, "byok-bench scale: --tenants, --latency and --check-interval must be positive"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, &stdout, &stderr)
		if code != tt.code || !strings.HasPrefix(stderr.String(), tt.err) || tt.err == "" && tt.code != 0 {
			t.Errorf("byok-bench %s: exit %d, stderr %q; want %d, %q", strings.Join(tt.args, " "), code, stderr.String(), tt.code, tt.err)
		}
	}
}

// TestExamples checks that every command has a summary and examples, and
// that each example names a command of the tree, with flags it has and
// the arguments it wants.
func TestExamples(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Short == "" || !strings.Contains(c.Example, c.CommandPath()) {
			t.Errorf("%s: summary %q, examples %q; want both, the examples with %q", c.CommandPath(), c.Short, c.Example, c.CommandPath())
		}
		for _, line := range strings.Split(c.Example, "\n") {
			words := strings.Fields(line)
			if len(words) == 0 || words[0] != "byok-bench" {
				t.Errorf("%s: example %q does not run byok-bench", c.CommandPath(), line)
				continue
			}
			cmd, rest, err := newRoot().Find(words[1:])
			if err == nil {
				if err = cmd.ParseFlags(rest); err == nil {
					err = cmd.ValidateArgs(cmd.Flags().Args())
				}
			}
			if err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), line, err)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	root := newRoot()
	walk(root)
	if got := len(root.Commands()); got != 3 {
		t.Errorf("byok-bench has %d subcommands; want lifecycle, http and scale", got)
	}
}
