package azurekv

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// EntraIssuer returns the issuer of a managed identity's token in Azure's
// public cloud, https://login.microsoftonline.com/{tenant}/v2.0: the
// issuer of the platform app's federated credential that trusts a managed
// identity of that directory (its subject is the identity's object id).
func EntraIssuer(tenantID string) string {
	return "https://login.microsoftonline.com/" + tenantID + "/v2.0"
}

// tokenExchangeAudience returns the token exchange audience of o's cloud:
// [FederatedAudience] in Azure's public cloud,
// api://AzureADTokenExchangeUSGov in Azure Government and
// api://AzureADTokenExchangeChina in Azure China.
func tokenExchangeAudience(o azcore.ClientOptions) string {
	switch o.Cloud.ActiveDirectoryAuthorityHost {
	case cloud.AzureGovernment.ActiveDirectoryAuthorityHost:
		return "api://AzureADTokenExchangeUSGov"
	case cloud.AzureChina.ActiveDirectoryAuthorityHost:
		return "api://AzureADTokenExchangeChina"
	}
	return FederatedAudience
}

// AssertionError is a failure to make the platform app's federated client
// assertion: the managed identity's token could not be had, or the
// workload identity token file could not be read. No token was sent to
// Entra ID. Err is the source's error (an
// *azidentity.AuthenticationFailedError of the managed identity endpoint,
// or a file error); neither holds a token.
type AssertionError struct {
	// Source is the managed identity (as [ManagedIdentity.String] shows
	// it) or "workload identity token file PATH".
	Source string
	Err    error
}

func (e *AssertionError) Error() string {
	return fmt.Sprintf("azurekv: the platform app's client assertion: the token of the %s: %s", e.Source, firstLine(e.Err.Error()))
}

func (e *AssertionError) Unwrap() error { return e.Err }

// presentedAssertion is what a federated client assertion claimed: its
// issuer, subject, audiences and expiry, never the token.
type presentedAssertion struct {
	Issuer, Subject string
	Audiences       []string
	ExpiresAt       time.Time
}

// peekAssertion reads the claims of a JWT without verifying it; Entra ID
// verifies. ok is false if tok is not a JWT.
func peekAssertion(tok string) (presentedAssertion, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return presentedAssertion{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return presentedAssertion{}, false
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp json.Number     `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil {
		return presentedAssertion{}, false
	}
	p := presentedAssertion{Issuer: c.Iss, Subject: c.Sub}
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		p.Audiences = []string{one}
	} else {
		_ = json.Unmarshal(c.Aud, &p.Audiences)
	}
	if exp, err := c.Exp.Int64(); err == nil {
		p.ExpiresAt = time.Unix(exp, 0)
	}
	return p, true
}

// refusedAssertion is Entra ID's refusal of a federated client assertion,
// with what the assertion claimed (for the remedy). Err stays reachable.
type refusedAssertion struct {
	err       error
	presented presentedAssertion
}

func (e *refusedAssertion) Error() string { return e.err.Error() }
func (e *refusedAssertion) Unwrap() error { return e.err }

// assertionCredential is the platform app's credential whose client
// assertion is a federated token (a managed identity's, or a workload
// identity token file's), presented through azidentity's
// ClientAssertionCredential. It tells apart a failure to get the token
// ([AssertionError]) from Entra ID's refusal of it.
type assertionCredential struct {
	inner *azidentity.ClientAssertionCredential
}

// assertionCallKey keys the *assertionCall of one GetToken in its context.
type assertionCallKey struct{}

type assertionCall struct {
	mu        sync.Mutex
	err       error
	presented *presentedAssertion
}

func newAssertionCredential(tenant, clientID string, o azcore.ClientOptions, get func(context.Context) (string, error)) (azcore.TokenCredential, error) {
	cb := func(ctx context.Context) (string, error) {
		tok, err := get(ctx)
		if c, _ := ctx.Value(assertionCallKey{}).(*assertionCall); c != nil {
			c.mu.Lock()
			if err != nil {
				c.err = err
			} else if p, ok := peekAssertion(tok); ok {
				c.presented = &p
			}
			c.mu.Unlock()
		}
		return tok, err
	}
	inner, err := azidentity.NewClientAssertionCredential(tenant, clientID, cb,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: o})
	if err != nil {
		return nil, err
	}
	return &assertionCredential{inner: inner}, nil
}

// GetToken implements azcore.TokenCredential.
func (a *assertionCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c := &assertionCall{}
	tok, err := a.inner.GetToken(context.WithValue(ctx, assertionCallKey{}, c), opts)
	if err == nil {
		return tok, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return tok, c.err
	case c.presented != nil:
		return tok, &refusedAssertion{err: err, presented: *c.presented}
	}
	return tok, err
}

// newMIAssertionCredential: the platform app authenticated by the managed
// identity's token for the token exchange audience.
func newMIAssertionCredential(tenant, clientID string, mi ManagedIdentity, o azcore.ClientOptions) (azcore.TokenCredential, error) {
	miCred, err := mi.tokenCredential("", o)
	if err != nil {
		return nil, err
	}
	scope := tokenExchangeAudience(o) + "/.default"
	return newAssertionCredential(tenant, clientID, o, func(ctx context.Context) (string, error) {
		tok, err := miCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		if err != nil {
			return "", &AssertionError{Source: mi.String(), Err: err}
		}
		return tok.Token, nil
	})
}

// errEmptyTokenFile: the workload identity token file is empty.
var errEmptyTokenFile = errors.New("the file is empty")

// newFileAssertionCredential: the platform app authenticated by the token
// in a workload identity token file, read again for every assertion (the
// kubelet replaces it before it expires).
func newFileAssertionCredential(tenant, clientID, file string, o azcore.ClientOptions) (azcore.TokenCredential, error) {
	source := "workload identity token file " + file
	return newAssertionCredential(tenant, clientID, o, func(context.Context) (string, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", &AssertionError{Source: source, Err: err}
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", &AssertionError{Source: source, Err: errEmptyTokenFile}
		}
		return tok, nil
	})
}

// operatorFix prefixes remedies that only the platform's operator can
// apply: the customer cannot change the platform app's credentials.
const operatorFix = "this is for the platform's operator to fix, not the customer: "

// explainPlatformFederated explains an authentication failure of the
// platform app's federated credential (PlatformApp.ManagedIdentity or
// PlatformApp.FederatedTokenFile): the token source failing, or Entra ID
// finding no federated credential of the app that matches the token.
func (t *tester) explainPlatformFederated(err error) (reason, remedy string, ok bool) {
	pa, isPA := t.cfg.Credential.(PlatformApp)
	if !isPA || (pa.ManagedIdentity == nil && pa.FederatedTokenFile == "") {
		return "", "", false
	}
	var ae *AssertionError
	if errors.As(err, &ae) {
		reason, remedy = explainAssertionSource(pa, ae)
		return reason, remedy, true
	}
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) {
		return "", "", false
	}
	code, _ := authCode(afe)
	var ra *refusedAssertion
	var p presentedAssertion
	if errors.As(err, &ra) {
		p = ra.presented
	}
	aud := tokenExchangeAudience(t.cfg.clientOptions())
	blade := fmt.Sprintf("Microsoft Entra ID > App registrations > %s > Certificates & secrets > Federated credentials, in the platform's directory", pa.ClientID)
	want, whose := fmt.Sprintf("issuer %s, subject %s", orUnknown(p.Issuer), orUnknown(p.Subject)), "the workload's token"
	if pa.ManagedIdentity != nil {
		whose = "the managed identity"
		want = fmt.Sprintf("issuer %s (the managed identity's directory), subject %s (the managed identity's Object (principal) ID)", orUnknown(p.Issuer), orUnknown(p.Subject))
	}
	switch code {
	case 70021, 700211, 700212, 700213, 7002138:
		reason = fmt.Sprintf("AADSTS%d: the platform app %s's federated credential does not match %s: it presented issuer %s, subject %s, audience %s",
			code, pa.ClientID, whose, orUnknown(p.Issuer), orUnknown(p.Subject), orUnknown(strings.Join(p.Audiences, ",")))
		remedy = operatorFix + fmt.Sprintf("on %s, the federated credential must have %s and audience %s (issuer and subject match case-sensitively); e.g. `%s`",
			blade, want, aud, FederatedCredentialCommand(pa.ClientID, orUnknown(p.Issuer), orUnknown(p.Subject), aud))
		return reason, remedy, true
	case 700236:
		return fmt.Sprintf("AADSTS700236: Entra ID does not accept the token of %s (issuer %s) for the platform app %s, which is registered in another directory", whose, orUnknown(p.Issuer), pa.ClientID),
			operatorFix + "register the multi-tenant app in the managed identity's own directory (the issuer's tenant) and give it the federated credential there; customers consent to that app", true
	case 700024:
		if pa.FederatedTokenFile != "" {
			return fmt.Sprintf("AADSTS700024: the token in %s expired at %s", pa.FederatedTokenFile, p.ExpiresAt.UTC().Format(time.RFC3339)),
				operatorFix + "the token file is not being refreshed: in AKS the workload identity webhook projects a new token before the old one expires; check that the pod's service account is annotated azure.workload.identity/client-id and the pod labelled azure.workload.identity/use: \"true\"", true
		}
		return "AADSTS700024: Entra ID found the managed identity's token outside its validity", operatorFix + "check the host's clock (NTP), then test again", true
	}
	return "", "", false
}

// explainAssertionSource explains a failure to get the federated token.
func explainAssertionSource(pa PlatformApp, ae *AssertionError) (reason, remedy string) {
	if pa.FederatedTokenFile != "" {
		reason = fmt.Sprintf("byok cannot read the workload identity token file %s: %s", pa.FederatedTokenFile, firstLine(ae.Err.Error()))
		return reason, operatorFix + "run byok in a pod labelled azure.workload.identity/use: \"true\" whose service account is annotated azure.workload.identity/client-id: " + pa.ClientID +
			" (AKS projects the token and sets AZURE_FEDERATED_TOKEN_FILE), and give that path; the app must have a federated credential with the cluster's OIDC issuer and subject system:serviceaccount:NAMESPACE:NAME"
	}
	mi := pa.ManagedIdentity.String()
	var afe *azidentity.AuthenticationFailedError
	if errors.As(ae.Err, &afe) && afe.RawResponse != nil && afe.RawResponse.StatusCode >= 400 && afe.RawResponse.StatusCode < 500 {
		reason = fmt.Sprintf("the %s is not assigned to the host running byok (the managed identity endpoint answered %d: %s)", mi, afe.RawResponse.StatusCode, firstLine(managedIdentityMessage(afe)))
		return reason, operatorFix + "assign the identity to the host (the resource's Identity blade: System assigned > On, or User assigned > Add), or correct its client id or resource id in byok's azure.credential; then test again"
	}
	reason = fmt.Sprintf("byok could not get a token of the %s from the managed identity endpoint: %s", mi, firstLine(ae.Err.Error()))
	return reason, operatorFix + "run byok on an Azure host with a managed identity (IMDS at 169.254.169.254, or IDENTITY_ENDPOINT on App Service, Functions and Container Apps) and allow it to reach that endpoint; then test again"
}

// managedIdentityMessage returns the error text of a managed identity
// endpoint's answer (IMDS: error_description; App Service: message).
func managedIdentityMessage(afe *azidentity.AuthenticationFailedError) string {
	var body struct {
		Description string `json:"error_description"`
		Message     string `json:"message"`
	}
	if b, err := runtime.Payload(afe.RawResponse); err == nil && json.Unmarshal(b, &body) == nil {
		if body.Description != "" {
			return body.Description
		}
		if body.Message != "" {
			return body.Message
		}
	}
	return afe.Error()
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
