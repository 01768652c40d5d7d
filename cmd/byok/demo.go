package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/gcpkmsemu"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

// The demo's fixed names: a customer "Contoso" with its own Entra
// directory, app registration, vault and key in the emulator.
const (
	demoTenant    = "contoso"
	demoDirectory = "7d5c2f3e-8a41-4b6e-9c1d-2f0a3b4c5d6e"
	demoVault     = "contoso-byok"
	demoKey       = "cmk"
)

var demoScopes = []string{"chat", "files", "analytics"}

// demo is a running demo: the emulator, the service and the tokens that
// reach it.
type demo struct {
	dir      string
	emu      *kvemu.Emulator
	app      *app
	ln       net.Listener
	url      string
	roleID   string // the role assignment that lets the platform use the key
	tokens   map[token.Kind]string
	fresh    bool
	testedOK bool

	// The AWS customer (demoaws.go).
	awsEmu      *awsemu.Emulator
	awsTokens   map[token.Kind]string
	awsTestedOK bool

	// The Google Cloud customer (demogcp.go).
	gcpEmu      *gcpkmsemu.Emulator
	gcpTokens   map[token.Kind]string
	gcpTestedOK bool
}

// startDemo starts the emulator and the service in dir (created if
// missing) and, on first use of dir, seeds the demo customer. It writes a
// line to progress as each part comes up.
func startDemo(ctx context.Context, dir, addr string, logger *slog.Logger, progress io.Writer) (*demo, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := &demo{dir: dir, tokens: map[token.Kind]string{}, awsTokens: map[token.Kind]string{}, gcpTokens: map[token.Kind]string{}}
	_, err := os.Stat(filepath.Join(dir, "byok.db"))
	d.fresh = errors.Is(err, os.ErrNotExist)

	d.emu, err = kvemu.Start(kvemu.Options{StateDir: filepath.Join(dir, "kvemu"), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("starting the Key Vault emulator: %w", err)
	}
	fmt.Fprintf(progress, "  Key Vault emulator   up on https://%s\n", d.emu.Addr())
	awsCfg, awsEnv, err := d.startAWS(logger)
	if err != nil {
		d.emu.Close()
		return nil, err
	}
	fmt.Fprintf(progress, "  AWS KMS emulator     up on %s\n", d.awsEmu.Endpoint())
	gcpCfg, err := d.startGCP(logger)
	if err != nil {
		d.emu.Close()
		d.awsEmu.Close()
		return nil, err
	}
	fmt.Fprintf(progress, "  Cloud KMS emulator   up on %s\n", d.gcpEmu.Addr())
	cfg := config.Default()
	cfg.Store.SQLite = filepath.Join(dir, "byok.db")
	cfg.PlatformKey.File = filepath.Join(dir, "platform.key")
	cfg.Keyring.CheckInterval = 5 * time.Second // revocations show within seconds
	cfg.Keyring.MaxStaleness = time.Minute
	cfg.AWS = awsCfg
	cfg.GCP = gcpCfg
	getenv := func(k string) string {
		if v, ok := awsEnv[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	d.app, err = openApp(ctx, cfg, appOptions{azureTransport: d.emu.HTTPClient(), awsHTTPClient: d.awsEmu.HTTPClient(), getenv: getenv}, logger)
	if err != nil {
		d.emu.Close()
		d.awsEmu.Close()
		d.gcpEmu.Close()
		return nil, err
	}
	fmt.Fprintf(progress, "  store                open: %s (SQLite), platform key %s\n", cfg.Store.SQLite, cfg.PlatformKey.File)
	if d.ln, err = net.Listen("tcp", addr); err != nil {
		d.close()
		return nil, fmt.Errorf("listening on %s: %w (choose another with --addr)", addr, err)
	}
	d.url = "http://" + d.ln.Addr().String()
	fmt.Fprintf(progress, "  byok server          listening on %s\n", d.url)
	if d.fresh {
		fmt.Fprintf(progress, "  demo tenant          seeding %q: directory, app, vault, key, role, Test configuration…\n", demoTenant)
		if err := d.seed(ctx); err != nil {
			d.close()
			return nil, fmt.Errorf("seeding the demo: %w", err)
		}
		verdict := "passed"
		if !d.testedOK {
			verdict = "FAILED"
		}
		fmt.Fprintf(progress, "  demo tenant          %q ready (Test configuration %s)\n", demoTenant, verdict)
		if verdict = "passed"; !d.awsTestedOK {
			verdict = "FAILED"
		}
		fmt.Fprintf(progress, "  demo tenant          %q ready on AWS KMS (Test configuration %s)\n", demoAWSTenant, verdict)
		if verdict = "passed"; !d.gcpTestedOK {
			verdict = "FAILED"
		}
		fmt.Fprintf(progress, "  demo tenant          %q ready on Google Cloud KMS (Test configuration %s)\n", demoGCPTenant, verdict)
	} else {
		fmt.Fprintf(progress, "  demo tenants         %q, %q and %q reused from %s\n", demoTenant, demoAWSTenant, demoGCPTenant, dir)
	}
	return d, nil
}

// seed creates the customer's directory, app, secret, vault, key and role
// in the emulator, and the tenant, its key settings and tokens in byok.
func (d *demo) seed(ctx context.Context) error {
	if _, err := d.emu.CreateTenant(kvemu.Tenant{ID: demoDirectory, Name: "Contoso"}); err != nil {
		return err
	}
	app, err := d.emu.CreateApp(kvemu.App{TenantID: demoDirectory, DisplayName: "byok at SaaS Inc."})
	if err != nil {
		return err
	}
	secret, err := d.emu.AddSecret(app.ClientID, kvemu.Secret{ExpiresAt: time.Now().AddDate(1, 0, 0)})
	if err != nil {
		return err
	}
	if err := d.emu.CreateVault(kvemu.VaultConfig{Name: demoVault, TenantID: demoDirectory, PurgeProtection: true}); err != nil {
		return err
	}
	if _, err := d.emu.CreateKey(demoVault, demoKey, kvemu.KeySpec{Type: "RSA", Size: 3072}); err != nil {
		return err
	}
	if d.roleID, err = d.emu.AssignRole(demoVault, kvemu.RoleAssignment{PrincipalID: app.ObjectID, Role: "Key Vault Crypto Service Encryption User"}); err != nil {
		return err
	}
	if err := d.emu.Save(); err != nil {
		return err
	}

	operator := audit.Actor{Kind: "operator", ID: "demo"}
	admin := audit.Actor{Kind: "tenant-admin", ID: "demo"}
	if err := d.app.lc.CreateTenant(ctx, operator, demoTenant, byok.Grace, demoScopes); err != nil {
		return err
	}
	_, err = d.app.lc.Configure(ctx, admin, demoTenant, azure.Settings("https://"+demoVault+".vault.azure.net/keys/"+demoKey, azure.Options{DirectoryID: demoDirectory, ClientID: app.ClientID, Credential: azure.CredentialClientSecret}, lifecycle.NewSecret(secret.Value)))
	if err != nil {
		return err
	}
	report, err := d.app.lc.Test(ctx, admin, demoTenant)
	if err != nil {
		return err
	}
	d.testedOK = report.Passed()
	if err := d.seedAWS(ctx); err != nil {
		return fmt.Errorf("the AWS tenant: %w", err)
	}
	if err := d.seedGCP(ctx); err != nil {
		return fmt.Errorf("the Google Cloud tenant: %w", err)
	}

	for _, k := range []token.Kind{token.Operator, token.TenantAdmin, token.Service} {
		var tenants []string
		if k != token.Operator {
			tenants = []string{demoTenant}
		}
		text, _, err := server.IssueToken(ctx, d.app.db, k, tenants, "demo "+string(k), 0)
		if err != nil {
			return err
		}
		d.tokens[k] = text
	}
	env := fmt.Sprintf("export BYOK_SERVER=%s\nexport BYOK_TENANT=%s\nexport BYOK_TOKEN=%s\nexport BYOK_OPERATOR_TOKEN=%s\nexport BYOK_SERVICE_TOKEN=%s\n",
		d.url, demoTenant, d.tokens[token.TenantAdmin], d.tokens[token.Operator], d.tokens[token.Service]) + d.awsEnv() + d.gcpEnv()
	return os.WriteFile(filepath.Join(d.dir, "demo.env"), []byte(env), 0o600)
}

func (d *demo) close() {
	if d.ln != nil {
		d.ln.Close()
	}
	d.app.close()
	d.emu.Close()
	d.awsEmu.Close()
	d.gcpEmu.Close()
}

var demoBanner = template.Must(template.New("banner").Parse(`
byok demo is running.

  console        {{.URL}}/console/   (sign in with the tenant admin token below)
  API            {{.URL}}/v1/…   (docs/api.md)
  metrics        {{.URL}}/metrics
  Key Vault      emulated: https://{{.Vault}}.vault.azure.net/keys/{{.Key}} (kvemu on {{.Emu}})
  state          {{.Dir}}
{{if .Fresh}}
Tenant "{{.Tenant}}" has scopes {{.Scopes}}, a customer key configured in its vault
(client-secret credential) and a Test configuration that {{if .Tested}}passed{{else}}FAILED{{end}}.
Tokens (also in {{.Dir}}/demo.env):

  operator       {{.Operator}}
  tenant admin   {{.Admin}}
  service        {{.Service}}

Try, in another shell in this repository:

  source {{.Dir}}/demo.env     # BYOK_SERVER, BYOK_TENANT, BYOK_TOKEN (tenant admin), BYOK_SERVICE_TOKEN
  go run ./cmd/byok key status
  go run ./cmd/byok key proceed --in 10s        # then, 10 s later: key status shows "active"
  echo hello | BYOK_TOKEN=$BYOK_SERVICE_TOKEN go run ./cmd/byok encrypt --scope chat > /tmp/ct
  BYOK_TOKEN=$BYOK_SERVICE_TOKEN go run ./cmd/byok decrypt --scope chat < /tmp/ct

Revoke the platform's access in the emulated vault and the covered scopes fail closed
within 5 s (the check interval); restore it and they come back by themselves:

  curl -s --cacert {{.Dir}}/kvemu/ca.pem -X POST https://{{.Emu}}/control/vaults/{{.Vault}}/roles/{{.Role}}/revoke
  curl -s --cacert {{.Dir}}/kvemu/ca.pem -X POST https://{{.Emu}}/control/vaults/{{.Vault}}/roles/{{.Role}}/restore

Tenant "{{.AWSTenant}}" keeps its customer key in AWS KMS (emulated: awsemu on {{.AWSEndpoint}}):
{{.AWSAlias}} → {{.AWSKey}}, whose key policy names the platform's principal {{.AWSPlatform}}
(Test configuration {{if .AWSTested}}passed{{else}}FAILED{{end}}; docs/aws-setup.md). Its tokens:

  tenant admin   {{.AWSAdmin}}
  service        {{.AWSService}}

  BYOK_TENANT=$BYOK_AWS_TENANT BYOK_TOKEN=$BYOK_AWS_TOKEN go run ./cmd/byok key proceed --in 10s

Revoke as the customer would, with the aws CLI against the emulator (the customer's admin key):

  export AWS_ACCESS_KEY_ID={{.AWSAdminKey}} AWS_SECRET_ACCESS_KEY={{.AWSSecret}} AWS_CA_BUNDLE={{.Dir}}/awsemu/ca.pem
  aws kms disable-key --region {{.AWSRegion}} --endpoint-url {{.AWSEndpoint}} --key-id {{.AWSKey}}
  aws kms enable-key  --region {{.AWSRegion}} --endpoint-url {{.AWSEndpoint}} --key-id {{.AWSKey}}

Tenant "{{.GCPTenant}}" keeps its customer key in Google Cloud KMS (emulated: gcpkmsemu on {{.GCPEndpoint}}):
{{.GCPKey}}, on which the platform's service account {{.GCPPlatform}} holds
roles/cloudkms.cryptoKeyEncrypterDecrypter and roles/cloudkms.viewer
(Test configuration {{if .GCPTested}}passed{{else}}FAILED{{end}}; docs/gcp-setup.md). Its tokens:

  tenant admin   {{.GCPAdmin}}
  service        {{.GCPService}}

  BYOK_TENANT=$BYOK_GCP_TENANT BYOK_TOKEN=$BYOK_GCP_TOKEN go run ./cmd/byok key proceed --in 10s

Revoke as the customer would, by removing the platform's IAM binding on the key (the emulator's
control API; gcloud kms keys remove-iam-policy-binding in Google Cloud), and grant it again:

  curl -s --cacert {{.Dir}}/gcpkmsemu/ca.pem -X DELETE {{.GCPControl}}/bindings -d '{"resource":"{{.GCPKey}}","role":"roles/cloudkms.cryptoKeyEncrypterDecrypter","member":"serviceAccount:{{.GCPPlatform}}"}'
  curl -s --cacert {{.Dir}}/gcpkmsemu/ca.pem -X POST   {{.GCPControl}}/bindings -d '{"resource":"{{.GCPKey}}","role":"roles/cloudkms.cryptoKeyEncrypterDecrypter","member":"serviceAccount:{{.GCPPlatform}}"}'

The Cloud KMS emulator keeps its keys in memory: a restart of the demo on the same --dir makes
the key anew, so what was wrapped under the old one no longer unwraps.
{{else}}
Reusing the state in {{.Dir}}: the tokens are in {{.Dir}}/demo.env.
{{end}}
Stop with Ctrl-C.
`))

func (d *demo) printBanner(w io.Writer) error {
	return demoBanner.Execute(w, map[string]any{
		"URL": d.url, "Vault": demoVault, "Key": demoKey, "Emu": d.emu.Addr(), "Dir": d.dir, "Fresh": d.fresh,
		"Tenant": demoTenant, "Scopes": strings.Join(demoScopes, ", "), "Tested": d.testedOK, "Role": d.roleID,
		"Operator": d.tokens[token.Operator], "Admin": d.tokens[token.TenantAdmin], "Service": d.tokens[token.Service],
		"AWSTenant": demoAWSTenant, "AWSEndpoint": d.awsEmu.Endpoint(), "AWSAlias": demoAWSAlias, "AWSKey": demoAWSKeyARN,
		"AWSPlatform": demoAWSPlatform, "AWSTested": d.awsTestedOK, "AWSAdmin": d.awsTokens[token.TenantAdmin],
		"AWSService": d.awsTokens[token.Service], "AWSAdminKey": demoAWSAdminK, "AWSSecret": demoAWSSecret, "AWSRegion": demoAWSRegion,
		"GCPTenant": demoGCPTenant, "GCPEndpoint": d.gcpEmu.Addr(), "GCPKey": demoGCPKeyName, "GCPPlatform": demoGCPPlatform,
		"GCPTested": d.gcpTestedOK, "GCPAdmin": d.gcpTokens[token.TenantAdmin], "GCPService": d.gcpTokens[token.Service], "GCPControl": d.gcpControl(),
	})
}

func demoCmd() *cobra.Command {
	var dir, addr string
	c := &cobra.Command{
		Use:   "demo [--dir DIR] [--addr HOST:PORT]",
		Short: "run byok with Key Vault, AWS KMS and Cloud KMS emulators and three demo tenants",
		Long: `Starts a Key Vault emulator, an AWS KMS emulator, a Cloud KMS emulator, a
SQLite-backed byok server and three demo tenants (one with its key in Azure Key
Vault, one in AWS KMS, one in Google Cloud KMS), and prints where to look.`,
		Example: `  byok demo
  byok demo --dir ./demo-state --addr 127.0.0.1:9090`,
		RunE: func(c *cobra.Command, _ []string) error {
			return runDemo(c.Context(), dir, addr, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "keep the demo's state in this `directory` (default: a new temporary one)")
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "the API's listen `address`")
	c.MarkFlagDirname("dir")
	return c
}

func runDemo(ctx context.Context, dir, addr string, stdout, stderr io.Writer) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "byok-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	fmt.Fprintf(stdout, "byok demo starting in %s\n", dir)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := startDemo(ctx, dir, addr, logger, stdout)
	if err != nil {
		return err
	}
	defer d.close()
	if err := d.printBanner(stdout); err != nil {
		return err
	}
	return d.app.run(ctx, d.ln, "", "")
}
