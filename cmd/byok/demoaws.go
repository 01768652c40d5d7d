package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/kms/awskms"
	"github.com/openbyok/byok/lifecycle/aws"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

// The demo's AWS customer "Fabrikam": an account with a KMS key behind an
// alias in awsemu, whose key policy names the platform's principal. The
// access keys are the emulator's own, fixed so that a restart on the same
// directory finds the same principals (awsemu keeps IAM in memory; its
// keys, aliases and key policies persist in the directory).
const (
	demoAWSTenant    = "fabrikam"
	demoAWSAccount   = "111122223333"
	demoAWSRegion    = "eu-west-1"
	demoAWSKeyID     = "0f1e2d3c-4b5a-4697-a887-766554433221"
	demoAWSPlatform  = "arn:aws:iam::999988887777:user/byok-platform"
	demoAWSPlatformK = "AKIADEMOPLATFORM0001"
	demoAWSAdmin     = "arn:aws:iam::111122223333:user/fabrikam-admin"
	demoAWSAdminK    = "AKIADEMOFABRIKAM0001"
	demoAWSSecret    = "demo-secret-of-the-emulator-only"
)

// demoAWSKeyARN and demoAWSAlias name the demo customer's key.
const (
	demoAWSKeyARN = "arn:aws:kms:" + demoAWSRegion + ":" + demoAWSAccount + ":key/" + demoAWSKeyID
	demoAWSAlias  = "arn:aws:kms:" + demoAWSRegion + ":" + demoAWSAccount + ":alias/byok"
)

// startDemoAWS starts awsemu with its key store in dir/awsemu, adds the
// platform's and the customer admin's access keys, writes the emulator's
// CA to dir/awsemu/ca.pem (for the aws CLI) and returns the aws: block
// and environment that reach it.
func startDemoAWS(dir string, logger *slog.Logger) (*awsemu.Emulator, *config.AWS, map[string]string, error) {
	data := filepath.Join(dir, "awsemu")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, nil, nil, err
	}
	emu, err := awsemu.Start(awsemu.Options{DataDir: data, Logger: logger})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("starting the AWS KMS emulator: %w", err)
	}
	for _, u := range []struct{ arn, id string }{{demoAWSPlatform, demoAWSPlatformK}, {demoAWSAdmin, demoAWSAdminK}} {
		if _, err := emu.AddUser(u.arn, awsemu.AccessKey{ID: u.id, Secret: demoAWSSecret}); err != nil {
			emu.Close()
			return nil, nil, nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(data, "ca.pem"), emu.CACertPEM(), 0o600); err != nil {
		emu.Close()
		return nil, nil, nil, err
	}
	cfg := &config.AWS{Region: demoAWSRegion, Credentials: config.AWSCredentials{AccessKey: &config.AWSAccessKey{IDEnv: "BYOK_DEMO_AWS_KEY", SecretEnv: "BYOK_DEMO_AWS_SECRET"}}}
	env := map[string]string{"BYOK_DEMO_AWS_KEY": demoAWSPlatformK, "BYOK_DEMO_AWS_SECRET": demoAWSSecret}
	return emu, cfg, env, nil
}

// seedAWS creates Fabrikam's key (its policy: the customer's admin, and
// the statements byok's Test configuration asks for), the tenant, its
// settings and tokens, and runs Test configuration.
func (d *demo) seedAWS(ctx context.Context) error {
	doc := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Sid": "KeyAdministration", "Effect": "Allow", "Principal": map[string]string{"AWS": demoAWSAdmin}, "Action": "kms:*", "Resource": "*"}}}
	var grant []any
	if err := json.Unmarshal([]byte(awskms.KeyPolicyStatement(demoAWSPlatform, demoAWSTenant)), &grant); err != nil {
		return err
	}
	doc["Statement"] = append(doc["Statement"].([]any), grant...)
	policy, _ := json.Marshal(doc)
	if _, err := d.awsEmu.CreateKey(awsemu.KeySpec{Account: demoAWSAccount, Region: demoAWSRegion, ID: demoAWSKeyID,
		Aliases: []string{"alias/byok"}, Rotation: true, Policy: string(policy)}); err != nil {
		return err
	}
	operator := audit.Actor{Kind: "operator", ID: "demo"}
	admin := audit.Actor{Kind: "tenant-admin", ID: "demo"}
	if err := d.app.lc.CreateTenant(ctx, operator, demoAWSTenant, byok.Grace, demoScopes); err != nil {
		return err
	}
	if _, err := d.app.lc.Configure(ctx, admin, demoAWSTenant, aws.Settings(demoAWSAlias, aws.Options{})); err != nil {
		return err
	}
	report, err := d.app.lc.Test(ctx, admin, demoAWSTenant)
	if err != nil {
		return err
	}
	d.awsTestedOK = report.Passed()
	for _, k := range []token.Kind{token.TenantAdmin, token.Service} {
		text, _, err := server.IssueToken(ctx, d.app.db, k, []string{demoAWSTenant}, "demo "+demoAWSTenant+" "+string(k), 0)
		if err != nil {
			return err
		}
		d.awsTokens[k] = text
	}
	return nil
}

// awsEnv is the demo.env lines of the AWS tenant.
func (d *demo) awsEnv() string {
	return fmt.Sprintf("export BYOK_AWS_TENANT=%s\nexport BYOK_AWS_TOKEN=%s\nexport BYOK_AWS_SERVICE_TOKEN=%s\n",
		demoAWSTenant, d.awsTokens[token.TenantAdmin], d.awsTokens[token.Service])
}

// startAWS starts the demo's AWS KMS emulator (startDemoAWS) into d.
func (d *demo) startAWS(logger *slog.Logger) (*config.AWS, map[string]string, error) {
	emu, cfg, env, err := startDemoAWS(d.dir, logger)
	if err != nil {
		return nil, nil, err
	}
	d.awsEmu = emu
	return cfg, env, nil
}
