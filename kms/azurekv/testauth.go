package azurekv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/openbyok/byok/kms"
)

// vaultScope returns the token scope of the vault: the challenge's resource,
// else the cloud's Key Vault or Managed HSM resource.
func (t *tester) vaultScope() string {
	if r := t.probe.resource; r != "" {
		return strings.TrimSuffix(r, "/") + "/.default"
	}
	r := "https://vault.azure.net"
	switch {
	case t.id.ManagedHSM:
		r = "https://managedhsm.azure.net"
	case t.id.Cloud == CloudChina:
		r = "https://vault.azure.cn"
	case t.id.Cloud == CloudGovernment:
		r = "https://vault.usgovcloudapi.net"
	}
	return r + "/.default"
}

func (t *tester) checkAuthentication(ctx context.Context) {
	if !t.needs(CheckAuthentication, CheckVaultTenant) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.timeout())
	defer cancel()
	tok, err := t.p.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{t.vaultScope()}, TenantID: t.cfg.TenantID, EnableCAE: true})
	if err != nil {
		reason, remedy := t.explainAuth(err)
		t.add(Check{Name: CheckAuthentication, Status: Fail, Value: t.cfg.Credential.String(), Reason: reason, Remedy: remedy})
		return
	}
	v := fmt.Sprintf("%v signed in to tenant %s; token valid until %s", t.cfg.Credential, t.cfg.TenantID, tok.ExpiresOn.UTC().Format(time.RFC3339))
	t.add(Check{Name: CheckAuthentication, Status: Pass, Value: v, Reason: "Entra ID issued a Key Vault token"})
}

// explainAuth translates an authentication failure.
func (t *tester) explainAuth(err error) (reason, remedy string) {
	if reason, remedy, ok := t.explainPlatformFederated(err); ok { // platformfed.go
		return reason, remedy
	}
	if reason, remedy, ok := t.explainIdentity(err); ok { // testidentity.go
		return reason, remedy
	}
	ke := Classify("authenticate", t.cfg.KeyID, err)
	if ke.Class == kms.Transient {
		return "could not reach Entra ID: " + ke.Err.Error(),
			"allow outbound HTTPS from the platform to login.microsoftonline.com (and, for a managed identity, to the host's identity endpoint), then test again"
	}
	if errors.Is(err, errNoValidCertificate) {
		return "every certificate byok generated for the app has expired", "generate a new certificate in the console and upload it to the app's Certificates & secrets blade"
	}
	cred := t.cfg.Credential
	app, tenant := cred.AppID(), t.cfg.TenantID
	var afe *azidentity.AuthenticationFailedError
	code := 0
	if errors.As(err, &afe) {
		code, _ = authCode(afe)
	}
	reason = ke.Err.Error()
	blade := fmt.Sprintf("Microsoft Entra ID > App registrations > %s > Certificates & secrets", app)
	switch code {
	case 7000215:
		return fmt.Sprintf("AADSTS7000215: the client secret of app %s is wrong", app),
			"create a new client secret on " + blade + " and paste its Value (not its Secret ID)"
	case 7000222:
		return fmt.Sprintf("AADSTS7000222: the client secret of app %s has expired", app),
			"create a new client secret on " + blade + " and paste its Value"
	case 700016:
		if _, ok := cred.(PlatformApp); ok {
			return fmt.Sprintf("AADSTS700016: the app %s is not consented in tenant %s", app, tenant),
				fmt.Sprintf("open %s as a Global Administrator or Privileged Role Administrator of tenant %s, or run `%s`", AdminConsentURL(tenant, app), tenant, CreateServicePrincipalCommand(app))
		}
		return fmt.Sprintf("AADSTS700016: no app %s in tenant %s", app, tenant),
			"check the Application (client) ID and the Directory (tenant) ID on the app's Overview blade (Microsoft Entra ID > App registrations)"
	case 90002:
		return fmt.Sprintf("AADSTS90002: tenant %s does not exist", tenant),
			"enter the Directory (tenant) ID from Microsoft Entra ID > Overview"
	case 700027:
		return fmt.Sprintf("AADSTS700027: Entra ID does not accept the certificate of app %s (not uploaded to the app, removed, or expired)", app),
			"download byok's certificate (PEM or CER) from the console and upload it on " + blade + " > Certificates > Upload certificate"
	case 70021:
		return fmt.Sprintf("AADSTS70021: no federated credential of app %s matches the workload's token", app),
			"add a federated credential with the workload's issuer and subject on " + blade + " > Federated credentials"
	case 7000112:
		return fmt.Sprintf("AADSTS7000112: app %s is disabled", app), "enable the app's service principal (Enterprise applications > Properties > Enabled for users to sign-in)"
	}
	if _, ok := cred.(ManagedIdentity); ok {
		return reason, "assign the managed identity to the platform's host (the resource's Identity blade), and use its client id"
	}
	return reason, "check the app's client id, tenant and credential on " + blade
}

func (t *tester) checkCredentialLife() {
	if !t.needs(CheckCredentialLife, CheckAuthentication) {
		return
	}
	now := time.Now()
	days := func(d time.Duration) int { return int(d.Hours() / 24) }
	var set *CertificateSet
	switch c := t.cfg.Credential.(type) {
	case ClientSecret:
		if c.ExpiresAt.IsZero() {
			t.add(Check{Name: CheckCredentialLife, Status: Warn, Value: "unknown",
				Reason: "the client secret's expiry date was not entered, so byok cannot warn before it expires",
				Remedy: "enter the secret's Expires date from the app's Certificates & secrets blade, or switch to a certificate generated by byok"})
			return
		}
		left := c.ExpiresAt.Sub(now)
		v := fmt.Sprintf("client secret expires %s (%d days left)", c.ExpiresAt.UTC().Format(time.DateOnly), days(left))
		if left < expiryWarn {
			t.add(Check{Name: CheckCredentialLife, Status: Warn, Value: v, Reason: "the client secret expires within 30 days",
				Remedy: "create a new client secret on the app's Certificates & secrets blade and update it here before " + c.ExpiresAt.UTC().Format(time.DateOnly)})
			return
		}
		t.add(Check{Name: CheckCredentialLife, Status: Pass, Value: v, Reason: "the client secret is valid for more than 30 days"})
		return
	case ClientCertificate:
		set = &c.Certificates
	case PlatformApp:
		set = c.Certificates
	}
	if set == nil {
		t.add(Check{Name: CheckCredentialLife, Status: Pass, Value: "no expiring credential", Reason: fmt.Sprintf("%s credentials are rotated by Azure or by the platform", t.cfg.Credential.Kind())})
		return
	}
	cur := set.Current.Cert.NotAfter
	v := fmt.Sprintf("certificate %s expires %s (%d days left)", set.Current.ThumbprintSHA256()[:16], cur.UTC().Format(time.DateOnly), days(cur.Sub(now)))
	if set.Next != nil {
		state := "not yet accepted by Entra ID"
		if cc, ok := t.p.cred.(*certCredential); ok && cc.inUse() == set.Next {
			state = "in use"
		}
		v += fmt.Sprintf("; next certificate %s %s", set.Next.ThumbprintSHA256()[:16], state)
		if state != "in use" {
			t.add(Check{Name: CheckCredentialLife, Status: Warn, Value: v, Reason: "a certificate rollover is in progress and the next certificate is not uploaded yet",
				Remedy: "upload the next certificate (PEM or CER from the console) on the app's Certificates & secrets blade before " + cur.UTC().Format(time.DateOnly)})
			return
		}
	} else if cur.Sub(now) < expiryWarn {
		t.add(Check{Name: CheckCredentialLife, Status: Warn, Value: v, Reason: "the certificate expires within 30 days",
			Remedy: "start a certificate rollover in the console and upload the new certificate to the app"})
		return
	}
	t.add(Check{Name: CheckCredentialLife, Status: Pass, Value: v, Reason: "the certificate is valid for more than 30 days"})
}
