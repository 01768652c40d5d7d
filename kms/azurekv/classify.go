package azurekv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/openbyok/byok/kms"
)

// callError is the concise form of an SDK error: one line saying what the
// vault or Entra ID answered. The SDK's error stays reachable through
// Unwrap (errors.As to *azcore.ResponseError or
// *azidentity.AuthenticationFailedError).
type callError struct {
	msg string
	err error
}

func (e *callError) Error() string { return e.msg }
func (e *callError) Unwrap() error { return e.err }

// Classify maps an error of the Azure SDK (or of this package) met during
// op on keyID to a [*kms.Error] with its class and reason:
//
//   - Authoritative: 401 and Entra ID refusals (wrong secret, app not
//     consented, unknown tenant, expired certificate: AADSTS codes), a
//     vault whose challenge names another tenant than the credential's,
//     403 (role or access policy missing, firewall, key disabled, expired or
//     not yet valid, operation not in the key's key_ops), 404 (key, version
//     or vault gone);
//   - Transient: timeouts, cancellation, connection and DNS failures
//     (including reaching the token endpoint), 408, 429 (with the
//     Retry-After hint), 5xx, and anything unrecognised;
//   - Invalid: malformed key ids, 400 (bad ciphertext, bad algorithm).
//
// It returns nil for a nil err, and err itself if it already is a
// *kms.Error.
func Classify(op, keyID string, err error) *kms.Error {
	if err == nil {
		return nil
	}
	var ke *kms.Error
	if errors.As(err, &ke) {
		return ke
	}
	e := &kms.Error{Op: op, KeyID: keyID, Class: kms.Transient, Reason: kms.ReasonUnavailable, Err: err}
	var (
		kerr *KeyIDError
		re   *azcore.ResponseError
		afe  *azidentity.AuthenticationFailedError
	)
	switch {
	case errors.As(err, &kerr):
		e.Class, e.Reason = kms.Invalid, kms.ReasonBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		e.Reason = kms.ReasonTimeout
	case errors.Is(err, context.Canceled):
		e.Reason = kms.ReasonCanceled
	case errors.As(err, &re):
		classifyResponse(e, op, re)
	case errors.As(err, &afe):
		classifyAuth(e, afe)
	case errors.Is(err, errNoValidCertificate):
		e.Class, e.Reason = kms.Authoritative, kms.ReasonUnauthenticated
	case isForeignTenant(err):
		e.Class, e.Reason = kms.Authoritative, kms.ReasonUnauthenticated
		e.Err = &callError{msg: "the vault belongs to another tenant than the configured one: " + firstLine(err.Error()), err: err}
	}
	return e
}

// foreignTenantText is the part of azidentity's error that says a
// credential was asked for a token of a tenant it is not configured for.
// The Key Vault challenge policy of azkeys (sdk/security/keyvault/internal
// v1.2.0) asks for the tenant the vault's 401 challenge names, so the
// error means that the vault belongs to another directory than
// [Config.TenantID] (byok's credentials set no AdditionallyAllowedTenants).
//
// The SDK offers no type, sentinel or code to match: resolveTenant in
// azidentity.go of github.com/Azure/azure-sdk-for-go/sdk/azidentity
// v1.15.0 returns a plain
//
//	fmt.Errorf(`%s isn't configured to acquire tokens for tenant %q. To enable acquiring tokens for this tenant add it to the AdditionallyAllowedTenants on the credential options, or add "*" to allow acquiring tokens for any tenant`, credName, specified)
//
// which azcore's BearerTokenPolicy passes on wrapped only in
// errorinfo.NonRetriableError (no request reached Entra ID, so it is no
// *azidentity.AuthenticationFailedError). TestForeignTenantSDKText drives
// the SDK into it through kvemu and fails if a new version words it
// otherwise.
const foreignTenantText = "isn't configured to acquire tokens for tenant"

// isForeignTenant reports whether err is azidentity's refusal to get a
// token for another tenant than the credential's (see foreignTenantText):
// the one classification made on an error's text, for want of anything
// else in the SDK.
func isForeignTenant(err error) bool {
	return strings.Contains(err.Error(), foreignTenantText)
}

// vaultError is Key Vault's error envelope.
type vaultError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

// responseCodes returns the error code, inner code and message of a vault
// error response.
func responseCodes(re *azcore.ResponseError) (code, inner, msg string) {
	code = re.ErrorCode
	if re.RawResponse == nil {
		return code, "", ""
	}
	body, err := runtime.Payload(re.RawResponse)
	if err != nil {
		return code, "", ""
	}
	var env vaultError
	if json.Unmarshal(body, &env) == nil {
		if env.Error.InnerError != nil {
			inner = env.Error.InnerError.Code
		}
		msg = env.Error.Message
	}
	return code, inner, msg
}

func classifyResponse(e *kms.Error, op string, re *azcore.ResponseError) {
	code, inner, msg := responseCodes(re)
	summary := fmt.Sprintf("Key Vault answered %d %s", re.StatusCode, code)
	if inner != "" {
		summary += "/" + inner
	}
	if msg != "" {
		summary += ": " + firstLine(msg)
	}
	e.Err = &callError{msg: summary, err: re}
	lmsg := strings.ToLower(msg)
	switch s := re.StatusCode; {
	case s == http.StatusUnauthorized:
		e.Class, e.Reason = kms.Authoritative, kms.ReasonUnauthenticated
	case s == http.StatusForbidden:
		e.Class, e.Reason = kms.Authoritative, kms.ReasonDenied
		switch {
		case inner == "KeyDisabled" || strings.Contains(lmsg, "disabled key"):
			e.Reason = kms.ReasonDisabled
		case inner == "KeyExpired" || strings.Contains(lmsg, "expired"):
			e.Reason = kms.ReasonExpired
		case inner == "KeyNotYetValid" || strings.Contains(lmsg, "not yet valid"):
			e.Reason = kms.ReasonNotYetValid
		case inner == "KeyOperationForbidden" || strings.Contains(lmsg, "not permitted on this key"):
			e.Reason = kms.ReasonOpForbidden
		}
	case s == http.StatusNotFound:
		e.Class, e.Reason = kms.Authoritative, kms.ReasonNotFound
	case s == http.StatusBadRequest:
		e.Class, e.Reason = kms.Invalid, kms.ReasonBadRequest
		if op == "unwrap" {
			e.Reason = kms.ReasonUnwrapFailed
		}
	case s == http.StatusRequestTimeout:
		e.Reason = kms.ReasonTimeout
	case s == http.StatusTooManyRequests:
		e.Reason = kms.ReasonThrottled
		e.RetryAfter = retryAfter(re.RawResponse)
	case s >= 500:
		e.Reason = kms.ReasonUnavailable
	case s >= 400:
		e.Class, e.Reason = kms.Invalid, kms.ReasonBadRequest
	}
}

// aadError is the body of an Entra ID token error.
type aadError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Codes       []int  `json:"error_codes"`
}

// authCode returns the AADSTS code and first description line of an Entra
// ID error, if the response has them.
func authCode(afe *azidentity.AuthenticationFailedError) (code int, desc string) {
	if afe.RawResponse == nil {
		return 0, ""
	}
	body, err := runtime.Payload(afe.RawResponse)
	if err != nil {
		return 0, ""
	}
	var ae aadError
	if json.Unmarshal(body, &ae) != nil {
		return 0, ""
	}
	if len(ae.Codes) > 0 {
		code = ae.Codes[0]
	}
	return code, firstLine(ae.Description)
}

func classifyAuth(e *kms.Error, afe *azidentity.AuthenticationFailedError) {
	if afe.RawResponse == nil {
		// MSAL could not reach the token endpoint (its transport error
		// became the message).
		e.Err = &callError{msg: "could not reach the token endpoint: " + firstLine(afe.Error()), err: afe}
		return
	}
	code, desc := authCode(afe)
	summary := fmt.Sprintf("Entra ID answered %d", afe.RawResponse.StatusCode)
	if desc != "" {
		summary += ": " + desc
	} else if code != 0 {
		summary += fmt.Sprintf(": AADSTS%d", code)
	}
	e.Err = &callError{msg: summary, err: afe}
	switch s := afe.RawResponse.StatusCode; {
	case s == http.StatusTooManyRequests:
		e.Reason = kms.ReasonThrottled
		e.RetryAfter = retryAfter(afe.RawResponse)
	case s == http.StatusRequestTimeout || s >= 500:
	default:
		e.Class, e.Reason = kms.Authoritative, kms.ReasonUnauthenticated
	}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
