package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/openbyok/byok/client"
	"github.com/openbyok/byok/kms/awskms"
)

// The providers of --provider.
const (
	providerAzure = "azure-key-vault"
	providerAWS   = "aws-kms"
	providerGCP   = "gcp-kms"
)

var providers = []string{providerAzure, providerAWS, providerGCP}

// settingsFlags are the flags of a key's settings: the provider, and each
// provider's own.
type settingsFlags struct {
	provider string
	// Azure Key Vault's.
	directoryID, clientID, credential, secretFile string
	// AWS KMS's.
	roleARN, externalID string
}

func (s *settingsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.provider, "provider", providerAzure, "the key's `provider`: azure-key-vault, aws-kms or gcp-kms")
	fs.StringVar(&s.directoryID, "directory-id", "", "Azure Key Vault: the Entra directory (tenant) `id` of the key's vault (with managed-identity: the platform's, the default)")
	fs.StringVar(&s.clientID, "client-id", "", "Azure Key Vault: the `app` id the platform signs in as (none with managed-identity)")
	fs.StringVar(&s.credential, "credential", "", "Azure Key Vault: how the platform signs in: platform-app, client-secret, certificate, managed-identity or workload-identity")
	fs.StringVar(&s.secretFile, "secret-file", "", "Azure Key Vault: read the client secret or the PEM key and certificate from `file` (- for stdin); omit to keep the stored one; none with platform-app, managed-identity and workload-identity")
	fs.StringVar(&s.roleARN, "role-arn", "", "AWS KMS: the `ARN` of your role that byok assumes (arn:aws:iam::<account>:role/<name>); omit when the key policy names the platform's principal")
	fs.StringVar(&s.externalID, "external-id", "", "AWS KMS: the external `id` the role's trust policy requires; omit to keep the tenant's saved one, or have one generated")
}

// credentials are the values of --credential.
var credentials = []string{"platform-app", "client-secret", "certificate", "managed-identity", "workload-identity"}

// given reports whether any settings flag is given (--provider only when
// it is not the default).
func (s settingsFlags) given() bool { return s != settingsFlags{provider: providerAzure} }

// check refuses an unknown provider, and the flags of the other provider.
func (s *settingsFlags) check() error {
	var foreign []string
	add := func(name, v string) {
		if v != "" {
			foreign = append(foreign, "--"+name)
		}
	}
	switch s.provider {
	case providerAzure:
		add("role-arn", s.roleARN)
		add("external-id", s.externalID)
		if len(foreign) > 0 {
			return usagef("%s: AWS KMS's, not Azure Key Vault's; give --provider aws-kms for a key in AWS KMS", strings.Join(foreign, ", "))
		}
	case providerAWS:
		add("directory-id", s.directoryID)
		add("client-id", s.clientID)
		add("credential", s.credential)
		add("secret-file", s.secretFile)
		if len(foreign) > 0 {
			return usagef("%s: Azure Key Vault's, not AWS KMS's; with --provider aws-kms give --key-id (the key or alias ARN) and, for a role byok assumes, --role-arn", strings.Join(foreign, ", "))
		}
		if s.externalID != "" && s.roleARN == "" {
			return usagef("--external-id goes with --role-arn: it is what the role's trust policy requires; without a role the key policy names the platform's principal")
		}
	case providerGCP:
		add("directory-id", s.directoryID)
		add("client-id", s.clientID)
		add("credential", s.credential)
		add("secret-file", s.secretFile)
		if len(foreign) > 0 {
			return usagef("%s: Azure Key Vault's, not Google Cloud KMS's; with --provider gcp-kms give only --key-id (the key's resource name)", strings.Join(foreign, ", "))
		}
		add("role-arn", s.roleARN)
		add("external-id", s.externalID)
		if len(foreign) > 0 {
			return usagef("%s: AWS KMS's, not Google Cloud KMS's; with --provider gcp-kms give only --key-id (the key's resource name): byok calls Cloud KMS as the platform's service account, which you grant on the key", strings.Join(foreign, ", "))
		}
	default:
		return usagef("--provider %q: give azure-key-vault, aws-kms or gcp-kms", s.provider)
	}
	return nil
}

// settings returns the settings of keyID with the flags'; stdin is read
// for --secret-file -. For a role without --external-id, it keeps the
// tenant's saved external id (read with c), or generates one; generated
// says which.
func (s *settingsFlags) settings(ctx context.Context, c *client.Client, tenant, keyID string, stdin io.Reader) (st client.Settings, generated bool, err error) {
	if err := s.check(); err != nil {
		return st, false, err
	}
	if s.provider == providerGCP {
		return client.Settings{Provider: providerGCP, KeyID: keyID}, false, nil
	}
	if s.provider == providerAWS {
		st = client.Settings{Provider: providerAWS, KeyID: keyID, RoleARN: s.roleARN, ExternalID: s.externalID}
		if st.RoleARN == "" || st.ExternalID != "" {
			return st, false, nil
		}
		k, err := c.Key(ctx, tenant)
		if err != nil {
			return st, false, apiError(err)
		}
		if k.Settings.Provider == providerAWS && k.Settings.ExternalID != "" {
			st.ExternalID = k.Settings.ExternalID
			return st, false, nil
		}
		st.ExternalID = awskms.NewExternalID()
		return st, true, nil
	}
	st = client.Settings{Provider: providerAzure, KeyID: keyID, DirectoryID: s.directoryID, ClientID: s.clientID, Credential: s.credential}
	var b []byte
	switch s.secretFile {
	case "":
		return st, false, nil
	case "-":
		b, err = io.ReadAll(stdin)
	default:
		b, err = readPrivateFile(s.secretFile)
	}
	if err != nil {
		return st, false, usagef("cannot read the secret file: %v", err)
	}
	st.Secret = strings.TrimSpace(string(b))
	if st.Secret == "" {
		return st, false, usagef("the secret file %s is empty", s.secretFile)
	}
	return st, false, nil
}

// printTrustStep tells the customer to put the external id of st, which
// byok generated (or kept), in the role's trust policy.
func printTrustStep(w io.Writer, st client.Settings, generated bool) {
	if st.RoleARN == "" {
		return
	}
	how := "the tenant's saved one"
	if generated {
		how = "generated by byok for the tenant"
	}
	fmt.Fprintf(w, "put this external id in the role's trust policy: %s (%s)\n", st.ExternalID, how)
	fmt.Fprintf(w, "  IAM > Roles > %s > Trust relationships: the condition \"sts:ExternalId\": %q; byok key test prints the whole trust policy if the role does not trust the platform yet\n",
		roleName(st.RoleARN), st.ExternalID)
}

// roleName is the name of the role ARN (its last path element).
func roleName(arn string) string {
	return arn[strings.LastIndex(arn, "/")+1:]
}
