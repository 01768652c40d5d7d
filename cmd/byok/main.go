// Command byok runs the byok service and its tools.
//
// It is the binary that runs serve in production, so it links no test code:
// no package testing, no kms/kmstest fake, no internal/bench (the module
// root's imports_test.go checks this). The benchmarks are cmd/byok-bench.
// demo and kv-emulator stay here: they run on kvemu, which links none of
// that, and demo starts the service through openApp, the code path of
// serve, so a platform team's first run is the binary it will deploy.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() { os.Exit(byokMain()) }

// byokMain is the process's entry point; the test scripts run it as their
// byok command.
func byokMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// run runs the command line args with the given streams and returns the
// process exit code (see exitCode). An error goes to stderr after the
// path of the command that failed.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, err := execute(ctx, args, stdin, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	}
	return exitCode(err)
}

// execute runs the command line args and returns the command it ran and
// its error.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (*cobra.Command, error) {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContextC(ctx)
}

func init() { cobra.EnableCommandSorting = false } // help lists commands as the tree has them

// newRoot returns byok's command tree. Dispatch, help and the shell
// completions all walk it.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "byok <command>",
		Short: "byok: Bring Your Own Key for multi-tenant SaaS platforms",
		Example: `  byok demo
  byok help key configure
  source <(byok completion bash)`,
		SilenceErrors: true, // run prints them
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return c.Help()
			}
			return usagef("unknown command %q; run 'byok help' for the list", args[0])
		},
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.AddCommand(
		versionCmd(),
		serveCmd(),
		demoCmd(),
		kvEmulatorCmd(),
		awsEmulatorCmd(),
		gcpkmsEmulatorCmd(),
		auditCmd(),
		tenantCmd(),
		tokenCmd(),
		platformKeyCmd(),
		keyCmd(),
		encryptCmd(),
		decryptCmd(),
		completionCmd(),
	)
	root.SetHelpCommand(helpCmd(root))
	root.SetHelpFunc(helpFunc(root.HelpFunc()))
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(flagError)
	walk(root, func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true // Use is the whole synopsis
		if c.Args == nil {
			c.Args = wantArgs()
		}
		if c.ValidArgsFunction == nil && c.ValidArgs == nil {
			c.ValidArgsFunction = cobra.NoFileCompletions
		}
	})
	return root
}

// walk calls f on c and every command under it.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		walk(s, f)
	}
}

// usageTemplate is the help of every command after its description: the
// synopsis, the subcommands (the root's by name, a group's by synopsis),
// the examples and the flags.
const usageTemplate = `Usage:
  {{.UseLine}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if .IsAvailableCommand}}{{if $.HasParent}}
  {{.UseLine}}
      {{.Short}}{{else}}
  {{rpad .Name .NamePadding}}  {{.Short}}{{end}}{{end}}{{end}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Run 'byok help {{if .HasParent}}{{.Name}} {{end}}<command>' for a command's flags and examples.{{end}}
`

// helpFunc returns the help printer: help asked for with -h or --help on
// a subcommand goes to stderr, as Go's flag package does, and all other
// help (byok help ..., byok GROUP help) to stdout.
func helpFunc(print func(*cobra.Command, []string)) func(*cobra.Command, []string) {
	return func(c *cobra.Command, args []string) {
		if f := c.Flags().Lookup("help"); f != nil && f.Changed && c.HasParent() {
			c.SetOut(c.ErrOrStderr())
		}
		print(c, args)
	}
}

// helpCmd is "byok help [command...]".
func helpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "show the help of byok or of a command, with examples",
		Example: `  byok help
  byok help key
  byok help key configure`,
		Args: cobra.ArbitraryArgs,
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			c, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, s := range c.Commands() {
				if s.IsAvailableCommand() {
					names = append(names, cobra.CompletionWithDesc(s.Name(), s.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			switch {
			case err != nil:
			case len(rest) > 0 && target == root:
				err = usagef("unknown command %q; run 'byok help' for the list", rest[0])
			case len(rest) > 0 && target.HasSubCommands():
				err = usagef("no command %q in byok %s; run 'byok help %s' for the list", rest[0], target.Name(), target.Name())
			}
			if err != nil {
				return err
			}
			target.InitDefaultHelpFlag() // listed with the flags, as on -h
			return target.Help()
		},
	}
}

// group returns a command that holds subcommands. Alone or with an
// unknown word it is a usage error; "byok NAME help [SUB]" shows help.
func group(name, short, example string, subs ...*cobra.Command) *cobra.Command {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.Name()
	}
	g := &cobra.Command{
		Use:     name + " <" + strings.Join(names, "|") + ">",
		Short:   short,
		Example: example,
		// The flags are the subcommands'; "byok key --bogus" is an unknown
		// subcommand, not an unknown flag.
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return usagef("name a subcommand: usage: %s; run 'byok help %s' for what each does", c.UseLine(), name)
			case args[0] == "help" && len(args) > 1:
				if s, _, err := c.Find(args[1:2]); err == nil && s != c {
					return s.Help()
				}
				return usagef("unknown subcommand %q; usage: %s", args[1], c.UseLine())
			case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
				return c.Help()
			}
			return usagef("unknown subcommand %q; usage: %s", args[0], c.UseLine())
		},
	}
	g.AddCommand(subs...)
	return g
}

// completionCmd is "byok completion bash|zsh|fish".
func completionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "print the shell completion script of byok for bash, zsh or fish",
		Long: `Prints the script that completes byok's commands, flags and flag values in
bash, zsh or fish. The script asks byok itself what to complete, so it
follows the binary it completes.`,
		Example: `  source <(byok completion bash)                                    # this bash session
  byok completion bash > ~/.local/share/bash-completion/completions/byok
  byok completion zsh > "${fpath[1]}/_byok"                          # zsh, then restart it
  byok completion fish > ~/.config/fish/completions/byok.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      wantArgs("bash|zsh|fish"),
		RunE: func(c *cobra.Command, args []string) error {
			w, root := c.OutOrStdout(), c.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			case "fish":
				return root.GenFishCompletion(w, true)
			}
			return usagef("no completion for %q: give bash, zsh or fish", args[0])
		},
	}
}
