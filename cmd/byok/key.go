package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openbyok/byok/client"
)

// keyCmd is "byok key ...": a tenant admin's commands on its tenant's
// customer-managed key.
func keyCmd() *cobra.Command {
	return group("key", "configure, test, schedule, rotate, re-key and disable a tenant's key (tenant admin)",
		`  export BYOK_SERVER=http://127.0.0.1:8080 BYOK_TENANT=acme
  export BYOK_TOKEN=$(cat acme-admin.token)
  byok key configure --key-id https://contoso.vault.azure.net/keys/byok --credential platform-app
  byok key test
  byok key proceed --in 72h
  byok key status`,
		keyStatusCmd(), keyIdentitiesCmd(), keyConfigureCmd(), keyTestCmd(), keyProceedCmd(), keyScopesCmd(),
		keyRotateCmd(), keyJobCmd("rekey"), keyJobCmd("disable"), keyInventoryCmd(), keyTimelineCmd(), keyAuditCmd())
}

// keyFlags are the flags of every key command: the client's and the
// tenant.
type keyFlags struct {
	clientFlags
	tenant string
}

func (f *keyFlags) register(fs *pflag.FlagSet) {
	f.clientFlags.register(fs)
	fs.StringVar(&f.tenant, "tenant", os.Getenv(envTenant), "the `tenant` whose key or data this is (default $"+envTenant+")")
}

// connect returns the client, once a tenant is given.
func (f *keyFlags) connect() (*client.Client, error) {
	if f.tenant == "" {
		return nil, usagef("no tenant: give --tenant or set %s", envTenant)
	}
	return f.client()
}

// keyCommand returns a key command whose flags are f's and those extra
// adds.
func keyCommand(f *keyFlags, c *cobra.Command, extra ...func(*pflag.FlagSet)) *cobra.Command {
	for _, add := range extra {
		add(c.Flags())
	}
	f.register(c.Flags())
	return c
}

// settingsFlags are the flags of a key's settings.
type settingsFlags struct {
	directoryID, clientID, credential, secretFile string
}

func (s *settingsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.directoryID, "directory-id", "", "the Entra directory (tenant) `id` of the key's vault (with managed-identity: the platform's, the default)")
	fs.StringVar(&s.clientID, "client-id", "", "the `app` id the platform signs in as (none with managed-identity)")
	fs.StringVar(&s.credential, "credential", "", "how the platform signs in: platform-app, client-secret, certificate, managed-identity or workload-identity")
	fs.StringVar(&s.secretFile, "secret-file", "", "read the client secret or the PEM key and certificate from `file` (- for stdin); omit to keep the stored one; none with platform-app, managed-identity and workload-identity")
}

// credentials are the values of --credential.
var credentials = []string{"platform-app", "client-secret", "certificate", "managed-identity", "workload-identity"}

// settings returns the settings of keyID with the flags'; stdin is read
// for --secret-file -.
func (s *settingsFlags) settings(keyID string, stdin io.Reader) (client.Settings, error) {
	// The flags are Azure's: name the provider, which a platform that
	// also offers AWS KMS (an aws: block) requires.
	st := client.Settings{Provider: "azure-key-vault", KeyID: keyID, DirectoryID: s.directoryID, ClientID: s.clientID, Credential: s.credential}
	var b []byte
	var err error
	switch s.secretFile {
	case "":
		return st, nil
	case "-":
		b, err = io.ReadAll(stdin)
	default:
		b, err = readPrivateFile(s.secretFile)
	}
	if err != nil {
		return st, usagef("cannot read the secret file: %v", err)
	}
	st.Secret = strings.TrimSpace(string(b))
	if st.Secret == "" {
		return st, usagef("the secret file %s is empty", s.secretFile)
	}
	return st, nil
}

func keyStatusCmd() *cobra.Command {
	var f keyFlags
	return keyCommand(&f, &cobra.Command{
		Use:     "status --tenant T",
		Short:   "show the key's state, settings, scopes and health, and what to do next",
		Example: "  byok key status --tenant acme\n  byok key status --tenant acme --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			k, err := c.Key(cmd.Context(), f.tenant)
			if err != nil {
				return apiError(err)
			}
			return printKey(cmd.OutOrStdout(), f.json, k)
		},
	})
}

func keyConfigureCmd() *cobra.Command {
	var f keyFlags
	var s settingsFlags
	var keyID string
	c := keyCommand(&f, &cobra.Command{
		Use:     "configure --tenant T --key-id URL [--directory-id D --client-id A --credential MODE --secret-file F]",
		Short:   "save the settings of the tenant's customer key (back to draft: test and proceed again)",
		Long:    configureLong,
		Example: configureExamples,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			if keyID == "" {
				return usagef("--key-id is required: the key identifier from the vault")
			}
			st, err := s.settings(keyID, cmd.InOrStdin())
			if err != nil {
				return err
			}
			k, err := c.Configure(cmd.Context(), f.tenant, st)
			if err != nil {
				return apiError(err)
			}
			if err := printKey(cmd.OutOrStdout(), f.json, k); err != nil {
				return err
			}
			if !f.json {
				fmt.Fprintln(cmd.ErrOrStderr(), "Saved. Next: byok key test, then byok key proceed --enforce-at <date>.")
			}
			return nil
		},
	}, func(fs *pflag.FlagSet) {
		fs.StringVar(&keyID, "key-id", "", "the key identifier, https://<vault>.vault.azure.net/keys/<name>[/<version>]; versionless follows rotations")
	}, s.register)
	completeWords(c, "credential", credentials...)
	return c
}

// configureLong explains the credential modes of byok key configure.
const configureLong = `Saves the settings of the tenant's customer key (back to draft: test and
proceed again). --credential is how byok signs in to the key's directory:

  platform-app       the platform's multi-tenant app, consented in your directory
  client-secret      your own app and a client secret (--secret-file)
  certificate        your own app and a certificate generated by byok (--secret-file: PEM key + certificate)
  managed-identity   the platform's managed identity, given a role on your vault; only
                     for vaults in the platform's own directory (the default --directory-id);
                     no --client-id, no secret
  workload-identity  your own app (--client-id) with a federated credential that trusts the
                     platform's workload (issuer, subject, audience api://AzureADTokenExchange
                     shown by byok key identities or the console); no secret

With platform-app, managed-identity and workload-identity the key must carry the
tag byok-tenant=<tenant>. The server refuses a mode its operator has not set up.
Then run byok key test: it says what is missing, e.g. the role or the federated
credential, and how to add it (docs/azure-setup.md).`

const configureExamples = `  byok key configure --tenant acme --key-id https://bu-vault.vault.azure.net/keys/byok --credential managed-identity
  byok key configure --tenant acme --key-id https://contoso.vault.azure.net/keys/byok \
    --directory-id 11111111-2222-3333-4444-555555555555 --client-id 66666666-7777-8888-9999-000000000000 --credential workload-identity
  byok key configure --tenant acme --key-id https://contoso.vault.azure.net/keys/byok \
    --directory-id 11111111-2222-3333-4444-555555555555 --client-id 66666666-7777-8888-9999-000000000000 --credential client-secret --secret-file secret.txt`

// errTestFailed is the error of a Test configuration that did not pass:
// the report has said why.
var errTestFailed = errors.New("Test configuration did not pass: fix the failed checks above, then run byok key test again")

func keyTestCmd() *cobra.Command {
	var f keyFlags
	return keyCommand(&f, &cobra.Command{
		Use:   "test --tenant T",
		Short: "run Test configuration: each check with its remedy; exit 1 unless it passes",
		Example: `  byok key test --tenant acme
  byok key test --tenant acme --json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			r, err := c.Test(cmd.Context(), f.tenant)
			if err != nil {
				return apiError(err)
			}
			if f.json {
				err = printJSON(cmd.OutOrStdout(), r)
			} else {
				err = printReport(cmd.OutOrStdout(), r)
			}
			if err != nil {
				return err
			}
			if !r.Passed {
				return errTestFailed
			}
			return nil
		},
	})
}

// printReport prints a Test configuration report, one ✓ (pass), ! (warn)
// or ✗ (fail) line per check with its detail, and the remedy below.
func printReport(w io.Writer, r client.Report) error {
	width := 0
	for _, ch := range r.Checks {
		width = max(width, len(ch.Name))
	}
	for _, ch := range r.Checks {
		mark := map[string]string{"pass": "✓", "warn": "!", "fail": "✗"}[ch.Outcome]
		if mark == "" {
			mark = "?"
		}
		fmt.Fprintf(w, "%s %-*s  %s (%.0f ms)\n", mark, width, ch.Name, ch.Detail, ch.DurationMS)
		if ch.Remedy != "" && ch.Outcome != "pass" {
			fmt.Fprintf(w, "  %-*s  remedy: %s\n", width, "", ch.Remedy)
		}
	}
	verdict := "passed"
	if !r.Passed {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, "Test configuration %s for %s\n", verdict, orDash(r.KeyID))
	return err
}

// coverageFlags select the scopes a key covers.
type coverageFlags struct{ include, exclude string }

func (c *coverageFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.include, "include", "", "cover only these scopes, comma-separated")
	fs.StringVar(&c.exclude, "exclude", "", "cover every scope but these, comma-separated")
}

// coverage returns the selection: every scope but --exclude, or only
// --include.
func (c *coverageFlags) coverage() (client.Coverage, error) {
	in, ex := list(c.include), list(c.exclude)
	if in != nil && ex != nil {
		return client.Coverage{}, usagef("--include and --exclude exclude each other: cover only some scopes, or all but some")
	}
	return client.Coverage{All: in == nil, Include: in, Exclude: ex}, nil
}

func keyProceedCmd() *cobra.Command {
	var f keyFlags
	var cf coverageFlags
	var at string
	var in time.Duration
	return keyCommand(&f, &cobra.Command{
		Use:   "proceed --tenant T (--enforce-at TIME | --in DURATION) [--include a,b | --exclude a,b]",
		Short: "schedule the enforcement date of a tested key, and the scopes it covers",
		Example: `  byok key proceed --tenant acme --enforce-at 2026-07-01T00:00:00Z
  byok key proceed --tenant acme --in 72h --exclude analytics`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			var enforce time.Time
			switch {
			case at != "" && in != 0:
				return usagef("--enforce-at and --in exclude each other; give one")
			case at != "":
				if enforce, err = time.Parse(time.RFC3339, at); err != nil {
					return usagef("--enforce-at %q is not an RFC 3339 time such as 2026-07-01T00:00:00Z", at)
				}
			case in > 0:
				enforce = time.Now().Add(in)
			default:
				return usagef("give the enforcement date: --enforce-at 2026-07-01T00:00:00Z or --in 72h")
			}
			cov, err := cf.coverage()
			if err != nil {
				return err
			}
			k, err := c.Proceed(cmd.Context(), f.tenant, enforce, &cov)
			if err != nil {
				return apiError(err)
			}
			return printKey(cmd.OutOrStdout(), f.json, k)
		},
	}, func(fs *pflag.FlagSet) {
		fs.StringVar(&at, "enforce-at", "", "the enforcement date, RFC 3339 (2026-07-01T00:00:00Z)")
		fs.DurationVar(&in, "in", 0, "the enforcement date as a delay from now (72h)")
	}, cf.register)
}

// waitFlags are the flags of commands that start a job.
type waitFlags struct {
	wait bool
	poll time.Duration
}

func (w *waitFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&w.wait, "wait", false, "wait for the job to finish, showing its progress")
	fs.DurationVar(&w.poll, "poll", time.Second, "how often --wait reads the job's progress")
}

// check refuses a poll interval that is not positive.
func (w *waitFlags) check() error {
	if w.poll <= 0 {
		return usagef("--poll is %s; give a positive interval such as 1s", w.poll)
	}
	return nil
}

func keyScopesCmd() *cobra.Command {
	var f keyFlags
	var cf coverageFlags
	var wf waitFlags
	return keyCommand(&f, &cobra.Command{
		Use:   "scopes --tenant T [--include a,b | --exclude a,b] [--wait]",
		Short: "change the scopes an active key covers; a job moves their data keys",
		Example: `  byok key scopes --tenant acme --include chat,files --wait
  byok key scopes --tenant acme --exclude analytics`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			if err := wf.check(); err != nil {
				return err
			}
			cov, err := cf.coverage()
			if err != nil {
				return err
			}
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			k, err := c.SetScopes(ctx, f.tenant, cov)
			if err != nil {
				return apiError(err)
			}
			if err := printKey(stdout, f.json, k); err != nil {
				return err
			}
			if k.Job != nil && wf.wait && !f.json {
				_, err = followJob(ctx, c, f.tenant, *k.Job, wf.poll, stdout)
			}
			return err
		},
	}, cf.register, wf.register)
}

func keyRotateCmd() *cobra.Command {
	var f keyFlags
	var s settingsFlags
	var wf waitFlags
	var keyID, newKey string
	c := keyCommand(&f, &cobra.Command{
		Use:   "rotate --tenant T [--key-id VERSIONED-ID | --new-key URL [settings flags]] [--wait]",
		Short: "move the tenant's key onto a new version of the same key, or onto another key",
		Example: `  byok key rotate --tenant acme --wait
  byok key rotate --tenant acme --key-id https://contoso.vault.azure.net/keys/byok/0123456789abcdef0123456789abcdef
  byok key rotate --tenant acme --new-key https://contoso-eu.vault.azure.net/keys/byok --credential platform-app --wait`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			if err := wf.check(); err != nil {
				return err
			}
			var r client.Rotation
			switch {
			case keyID != "" && newKey != "":
				return usagef("--key-id (a new version of the same key) and --new-key (another key) exclude each other")
			case newKey != "":
				st, err := s.settings(newKey, cmd.InOrStdin())
				if err != nil {
					return err
				}
				r.Settings = &st
			case s != settingsFlags{}:
				return usagef("the settings flags go with --new-key; for a new version of the same key give --key-id only")
			default:
				r.KeyID = keyID
			}
			j, err := c.Rotate(cmd.Context(), f.tenant, r)
			if err != nil {
				return apiError(err)
			}
			return finishJob(cmd.Context(), c, f, wf, j, cmd.OutOrStdout())
		},
	}, func(fs *pflag.FlagSet) {
		fs.StringVar(&keyID, "key-id", "", "rotate to this new `version` of the same key (a versioned id); omit for the key's current version")
		fs.StringVar(&newKey, "new-key", "", "rotate to another key or vault (`URL`), tested first, with the settings flags")
	}, s.register, wf.register)
	completeWords(c, "credential", credentials...)
	return c
}

// keyJobCmd is "key rekey" or "key disable", which start a job.
func keyJobCmd(name string) *cobra.Command {
	var f keyFlags
	var wf waitFlags
	c := &cobra.Command{
		Use:   name + " --tenant T [--wait] [--poll 1s]",
		Short: "re-wrap every data key of the tenant under its current key, in a job",
		Example: `  byok key rekey --tenant acme --wait
  byok key rekey --tenant acme --json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			if err := wf.check(); err != nil {
				return err
			}
			start := c.Rekey
			if name == "disable" {
				start = c.Disable
			}
			j, err := start(cmd.Context(), f.tenant)
			if err != nil {
				return apiError(err)
			}
			return finishJob(cmd.Context(), c, f, wf, j, cmd.OutOrStdout())
		},
	}
	if name == "disable" {
		c.Short = "stop using the customer key: its data moves back under the platform key, in a job"
		c.Example = "  byok key disable --tenant acme --wait"
	}
	return keyCommand(&f, c, wf.register)
}

// finishJob prints a job just started, and waits for it with --wait.
func finishJob(ctx context.Context, c *client.Client, f keyFlags, wf waitFlags, j client.Job, stdout io.Writer) error {
	if f.json && !wf.wait {
		return printJSON(stdout, j)
	}
	if wf.wait {
		var err error
		out := stdout
		if f.json {
			out = io.Discard
		}
		j, err = followJob(ctx, c, f.tenant, j, wf.poll, out)
		if f.json {
			if perr := printJSON(stdout, j); perr != nil {
				return perr
			}
		}
		return err
	}
	fmt.Fprintf(stdout, "%s job %s: %s, %d/%d\n", j.Kind, j.ID, j.State, j.Done, j.Total)
	if !j.Finished() {
		fmt.Fprintf(stdout, "follow it with: byok key %s --wait, or byok key status --tenant %s\n", j.Kind, f.tenant)
	}
	return jobError(j)
}
