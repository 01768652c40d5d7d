package azurekv

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// The checks of [TestConfiguration] that only the platform's own
// identities get: a [ManagedIdentity] or a [WorkloadIdentity]. They appear
// in a report only with those credentials.
const (
	// CheckIdentityDirectory (managed identity with
	// [Config.IdentityTenant], right after settings, no network call): the
	// key's directory is the identity's own, the only one whose vaults a
	// managed identity reaches.
	CheckIdentityDirectory = "identity-directory"
	// CheckFederatedToken (workload identity, right after settings, no
	// network call): the federated token file exists, is readable, holds
	// a JWT and has not expired; its issuer, subject and audience are
	// what the customer's app must trust.
	CheckFederatedToken = "federated-token"
	// CheckTokenAudience (both, right after authentication): the access
	// token Entra ID issued is for the vault's resource and was issued in
	// the vault's directory; its principal (object id) is the one the
	// vault sees, to which the role must be assigned.
	CheckTokenAudience = "token-audience"
)

// FederatedAudience is the audience a federated identity credential
// accepts by default, and the one byok's workload tokens carry.
const FederatedAudience = "api://AzureADTokenExchange"

// afterIdentity lists, in report order, the checks [TestConfiguration]
// runs after checkIdentity; they are skipped when it fails.
var afterIdentity = []string{CheckDNS, CheckTCP, CheckTLS, CheckVaultTenant, CheckAuthentication, CheckCredentialLife,
	CheckKeyRead, CheckOwnership, CheckPermissions, CheckKeyType, CheckKeyOperations, CheckKeyEnabled, CheckKeyValidity,
	CheckSoftDelete, CheckRoundTrip, CheckLatency, CheckThrottle, CheckClockSkew}

// checkIdentity runs the checks of the platform's identities that need no
// network call: identity-directory for a managed identity whose
// directory is known, federated-token for a workload identity. It adds
// nothing for other credentials. It returns false when one failed, after
// adding every later check as skipped: each would fail for the same
// reason, and the identity's failure says what to do.
func (t *tester) checkIdentity() bool {
	if t.status[CheckSettings] != Pass {
		return true // the settings check has said what is wrong
	}
	var failed string
	switch c := t.cfg.Credential.(type) {
	case ManagedIdentity:
		if t.cfg.IdentityTenant != "" && t.checkIdentityDirectory(c) == Fail {
			failed = CheckIdentityDirectory
		}
	case WorkloadIdentity:
		if t.checkFederatedToken(c) == Fail {
			failed = CheckFederatedToken
		}
	}
	if failed == "" {
		return true
	}
	for _, name := range afterIdentity {
		t.add(Check{Name: name, Status: Skip, Reason: "not run: the " + failed + " check did not pass"})
	}
	return false
}

// wrongDirectoryRemedy is the remedy when a managed identity would have to
// reach a vault of another directory.
const wrongDirectoryRemedy = "a managed identity only reaches vaults in its own directory; use platform-app consent or workload identity (your own app trusting the platform's workload) for a vault in another directory"

func (t *tester) checkIdentityDirectory(mi ManagedIdentity) Status {
	home, dir := t.cfg.IdentityTenant, t.cfg.TenantID
	if !isGUID(dir) {
		return t.add(Check{Name: CheckIdentityDirectory, Status: Warn, Value: dir,
			Reason: fmt.Sprintf("the directory %s is a domain name, which cannot be compared with the platform's directory %s", dir, home),
			Remedy: "enter the Directory (tenant) ID " + home + " instead of a domain name"})
	}
	if strings.EqualFold(home, dir) {
		return t.add(Check{Name: CheckIdentityDirectory, Status: Pass, Value: home,
			Reason: fmt.Sprintf("the key's directory is the directory of the platform's %s", mi)})
	}
	return t.add(Check{Name: CheckIdentityDirectory, Status: Fail, Value: dir,
		Reason: fmt.Sprintf("the key's directory %s is not the platform's directory %s, where its %s lives; no call was made", dir, home, mi),
		Remedy: wrongDirectoryRemedy})
}

// jwtClaims are the claims of a JWT that the identity checks read: those
// of a federated token (iss, sub, aud, exp) and of an Entra ID access
// token (aud, tid, oid, appid).
type jwtClaims struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Aud   audience `json:"aud"`
	Exp   int64    `json:"exp"`
	Tid   string   `json:"tid"`
	Oid   string   `json:"oid"`
	AppID string   `json:"appid"`
}

// audience is a JWT aud claim: one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

func (a audience) String() string { return strings.Join(a, ", ") }

// parseJWT returns the claims of a compact JWT without checking its
// signature: the issuer checks it; byok only reads what it will present
// or was given.
func parseJWT(tok string) (jwtClaims, error) {
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		return jwtClaims{}, errors.New("it is not a JWT (three base64url parts separated by dots)")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return jwtClaims{}, errors.New("its payload is not base64url")
	}
	var c jwtClaims
	if err := json.Unmarshal(b, &c); err != nil {
		return jwtClaims{}, errors.New("its payload is not a JSON object of claims")
	}
	return c, nil
}

// readFederatedToken reads and parses the token of a workload identity.
func readFederatedToken(file string) (jwtClaims, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return jwtClaims{}, err
	}
	return parseJWT(string(b))
}

// tokenFileRemedy tells the platform's operator how to provide the token.
const tokenFileRemedy = "the platform's operator mounts the workload's federated token at that path (on AKS: label the pod azure.workload.identity/use=true and annotate its service account with the workload identity, or project a service account token with audience " +
	FederatedAudience + "), or corrects the token file in byok's configuration (azure.workload_identity.token_file)"

func (t *tester) checkFederatedToken(w WorkloadIdentity) Status {
	b, err := os.ReadFile(w.TokenFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t.add(Check{Name: CheckFederatedToken, Status: Fail, Value: w.TokenFile,
			Reason: "the platform's federated token file does not exist; no call was made", Remedy: tokenFileRemedy})
	case errors.Is(err, fs.ErrPermission):
		return t.add(Check{Name: CheckFederatedToken, Status: Fail, Value: w.TokenFile,
			Reason: "byok may not read the platform's federated token file; no call was made",
			Remedy: "the platform's operator lets byok's user read the token file (the projected volume's defaultMode, or the file's owner)"})
	case err != nil:
		return t.add(Check{Name: CheckFederatedToken, Status: Fail, Value: w.TokenFile,
			Reason: "reading the platform's federated token file failed: " + err.Error(), Remedy: tokenFileRemedy})
	}
	c, err := parseJWT(string(b))
	if err != nil {
		return t.add(Check{Name: CheckFederatedToken, Status: Fail, Value: w.TokenFile,
			Reason: "the platform's federated token file holds no token: " + err.Error(), Remedy: tokenFileRemedy})
	}
	v := fmt.Sprintf("issuer %s, subject %s, audience %s", c.Iss, c.Sub, c.Aud)
	if c.Exp == 0 {
		return t.add(Check{Name: CheckFederatedToken, Status: Fail, Value: v,
			Reason: "the federated token has no expiry (exp); Entra ID refuses such tokens", Remedy: tokenFileRemedy})
	}
	exp := time.Unix(c.Exp, 0).UTC()
	v += ", expires " + exp.Format(time.RFC3339)
	if !time.Now().Before(exp) {
		return t.add(Check{Name: CheckFederatedToken, Status: Fail, Value: v,
			Reason: "the platform's federated token has expired: nothing refreshes the file",
			Remedy: "the platform's operator checks what writes the token file: kubelet rewrites a projected service account token before it expires (on AKS, the workload identity webhook sets this up); a copied token is never refreshed"})
	}
	return t.add(Check{Name: CheckFederatedToken, Status: Pass, Value: v,
		Reason: "the platform's federated token is readable and valid; the customer's app must trust this issuer, subject and audience"})
}

// checkTokenAudience decodes the access token of a managed or workload
// identity (the credential's cache answers; no new sign-in) and checks its
// audience and directory against the vault's.
func (t *tester) checkTokenAudience(ctx context.Context) {
	switch t.cfg.Credential.(type) {
	case ManagedIdentity, WorkloadIdentity:
	default:
		return
	}
	if !t.needs(CheckTokenAudience, CheckAuthentication) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.timeout())
	defer cancel()
	scope := t.vaultScope()
	tok, err := t.p.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}, TenantID: t.cfg.TenantID, EnableCAE: true})
	if err != nil {
		t.add(Check{Name: CheckTokenAudience, Status: Fail, Reason: "a second token request failed: " + err.Error(),
			Remedy: "test again; if it persists, check the platform's identity endpoint"})
		return
	}
	c, err := parseJWT(tok.Token)
	if err != nil {
		t.add(Check{Name: CheckTokenAudience, Status: Warn, Reason: "the access token cannot be read (" + err.Error() + "), so its audience and directory are not checked"})
		return
	}
	resource := strings.TrimSuffix(scope, "/.default")
	v := fmt.Sprintf("audience %s, directory %s, principal (object id) %s", c.Aud, c.Tid, c.Oid)
	vaultTenant := t.probe.tenant
	switch {
	case !audienceMatches(c.Aud, resource):
		t.add(Check{Name: CheckTokenAudience, Status: Fail, Value: v,
			Reason: fmt.Sprintf("the token is for %s, not for the vault's resource %s: the vault would refuse it", c.Aud, resource),
			Remedy: "the platform's identity endpoint issued a token for another resource; the platform's operator checks that byok reaches the real identity endpoint (IMDS or App Service) and not a proxy"})
	case vaultTenant != "" && c.Tid != "" && !strings.EqualFold(c.Tid, vaultTenant):
		remedy := wrongDirectoryRemedy
		if _, ok := t.cfg.Credential.(WorkloadIdentity); ok {
			remedy = "register the app in the vault's directory " + vaultTenant + " and enter that directory's ID"
		}
		t.add(Check{Name: CheckTokenAudience, Status: Fail, Value: v,
			Reason: fmt.Sprintf("the token was issued in directory %s, but the vault belongs to directory %s: the vault would refuse it", c.Tid, vaultTenant),
			Remedy: remedy})
	default:
		t.add(Check{Name: CheckTokenAudience, Status: Pass, Value: v,
			Reason: "the token is for the vault's resource and its directory; the vault sees the principal " + c.Oid})
	}
}

// audienceMatches reports whether aud names resource (with or without a
// trailing slash).
func audienceMatches(aud audience, resource string) bool {
	for _, a := range aud {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(resource, "/")) {
			return true
		}
	}
	return false
}

// explainIdentity translates a sign-in failure of a managed or workload
// identity; ok is false for other credentials, or errors it does not
// know, which explainAuth then translates.
func (t *tester) explainIdentity(err error) (reason, remedy string, ok bool) {
	switch c := t.cfg.Credential.(type) {
	case ManagedIdentity:
		return explainManagedIdentity(c, err)
	case WorkloadIdentity:
		return explainWorkloadIdentity(c, t.cfg.TenantID, err)
	}
	return "", "", false
}

func explainManagedIdentity(mi ManagedIdentity, err error) (reason, remedy string, ok bool) {
	msg := err.Error()
	assign := "the platform's operator assigns it to the host running byok (the virtual machine's, App Service's or AKS node pool's Identity blade > User assigned > Add), or corrects azure.managed_identity in byok's configuration"
	switch {
	case strings.Contains(msg, "isn't assigned to this resource") || strings.Contains(msg, "Identity not found"):
		return fmt.Sprintf("the %s is not assigned to the platform's host: its identity endpoint answered \"Identity not found\"", mi), assign, true
	case strings.Contains(msg, "failed to authenticate a system assigned identity"):
		return "the platform's host has no system-assigned managed identity: its identity endpoint refused the request",
			"the platform's operator turns on the system-assigned identity of the host running byok (Identity blade > System assigned > On), or names a user-assigned one in azure.managed_identity", true
	}
	return "", "", false
}

func explainWorkloadIdentity(w WorkloadIdentity, tenant string, err error) (reason, remedy string, ok bool) {
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) {
		if strings.Contains(err.Error(), w.TokenFile) || errors.Is(err, fs.ErrNotExist) {
			return "the platform's federated token could not be read: " + err.Error(), tokenFileRemedy, true
		}
		return "", "", false
	}
	code, _ := authCode(afe)
	switch code {
	case 70021, 700211, 700212, 700213, 7002138:
		iss, sub, aud := "<the platform's issuer>", "<byok's service account>", FederatedAudience
		if c, err := readFederatedToken(w.TokenFile); err == nil {
			iss, sub = c.Iss, c.Sub
			if len(c.Aud) == 1 {
				aud = c.Aud[0]
			}
		}
		what := map[int]string{70021: "names the platform's issuer and subject", 700211: "names the platform's issuer", 700212: "accepts the audience of the platform's token",
			700213: "names the platform's subject", 7002138: "names the platform's subject in the same letter case"}[code]
		return fmt.Sprintf("AADSTS%d: no federated credential of app %s in directory %s %s", code, w.ClientID, tenant, what),
			fmt.Sprintf("on Microsoft Entra ID > App registrations > %s > Certificates & secrets > Federated credentials > Add credential (scenario: Other issuer), enter exactly Issuer %s, Subject identifier %s, Audience %s; or run `%s`",
				w.ClientID, iss, sub, aud, FederatedCredentialCommand(w.ClientID, iss, sub, aud)), true
	case 700016:
		return fmt.Sprintf("AADSTS700016: there is no app %s in directory %s", w.ClientID, tenant),
			"register your own app in the vault's directory (Microsoft Entra ID > App registrations > New registration) and enter its Application (client) ID and that Directory (tenant) ID", true
	case 700024:
		return fmt.Sprintf("AADSTS700024: the platform's federated token is outside its validity window: %s", err.Error()), tokenFileRemedy, true
	}
	return "", "", false
}

// FederatedCredentialCommand returns the Azure CLI command that adds to
// the app clientID a federated identity credential trusting tokens of
// issuer for subject and audience (FederatedAudience when empty).
func FederatedCredentialCommand(clientID, issuer, subject, audience string) string {
	if audience == "" {
		audience = FederatedAudience
	}
	params, _ := json.Marshal(map[string]any{"name": "byok", "issuer": issuer, "subject": subject, "audiences": []string{audience}})
	return "az ad app federated-credential create --id " + clientID + " --parameters '" + string(params) + "'"
}

// Principal is who a credential signs in as, read from an access token
// that Entra ID issued to it.
type Principal struct {
	// TenantID is the directory that issued the token (tid).
	TenantID string
	// ObjectID is the principal's object id (oid): the assignee of role
	// assignments on vaults.
	ObjectID string
	// ClientID is the app or managed identity's client id (appid).
	ClientID string
}

// WhoAmI signs in with cfg's credential for Key Vault (the resource of
// cfg.KeyID's cloud; the public cloud's when KeyID is empty) and returns
// the principal of the token, e.g. to show a tenant the object id of the
// platform's managed identity. It makes one token request, unless the
// credential's cache answers.
func WhoAmI(ctx context.Context, cfg Config) (Principal, error) {
	p, err := New(cfg)
	if err != nil {
		return Principal{}, err
	}
	t := &tester{cfg: cfg, p: p}
	if id, err := ParseKeyID(cfg.KeyID); err == nil {
		t.id = id
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	tok, err := p.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{t.vaultScope()}, TenantID: cfg.TenantID})
	if err != nil {
		return Principal{}, Classify("authenticate", cfg.KeyID, err)
	}
	c, err := parseJWT(tok.Token)
	if err != nil {
		return Principal{}, fmt.Errorf("azurekv: the access token cannot be read: %v", err)
	}
	return Principal{TenantID: c.Tid, ObjectID: c.Oid, ClientID: c.AppID}, nil
}

// FederatedTokenClaims returns the issuer, subject and audience of the
// federated token in file, as a customer's federated identity credential
// must name them.
func FederatedTokenClaims(file string) (issuer, subject string, audience []string, err error) {
	c, err := readFederatedToken(file)
	if err != nil {
		return "", "", nil, fmt.Errorf("azurekv: the federated token file %s: %w", file, err)
	}
	return c.Iss, c.Sub, c.Aud, nil
}

// RoleAssignmentCommand returns the Azure CLI command that gives a
// principal the least-privilege role byok needs on the key id names: Key
// Vault Crypto Service Encryption User on a vault's key, Managed HSM
// Crypto Service Encryption User on a Managed HSM's. principal is an
// object id when objectID is true (the form that needs no directory
// lookup), else a client id.
func RoleAssignmentCommand(id KeyID, principal string, objectID bool) string {
	who := "--assignee " + principal
	if objectID {
		who = "--assignee-object-id " + principal + " --assignee-principal-type ServicePrincipal"
	}
	if id.ManagedHSM {
		return "az keyvault role assignment create --hsm-name " + id.Vault + ` --role "Managed HSM Crypto Service Encryption User" ` + who + " --scope /keys/" + id.Name
	}
	return `az role assignment create --role "Key Vault Crypto Service Encryption User" ` + who +
		` --scope "$(az keyvault show --name ` + id.Vault + ` --query id -o tsv)/keys/` + id.Name + `"`
}
