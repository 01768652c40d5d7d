package awsemu

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

// stsCodes maps the signature errors of verify (KMS's codes) to STS's.
var stsCodes = map[string]apiError{
	"MissingAuthenticationTokenException": {403, "MissingAuthenticationToken", "Request is missing Authentication Token"},
	"IncompleteSignatureException":        {400, "IncompleteSignature", ""},
	"UnrecognizedClientException":         {403, "InvalidClientTokenId", msgBadToken},
	"InvalidSignatureException":           {403, "SignatureDoesNotMatch", ""},
	"ExpiredTokenException":               {400, "ExpiredToken", "The security token included in the request is expired"},
	"ThrottlingException":                 {400, "Throttling", "Rate exceeded"},
	"KMSInternalException":                {500, "InternalFailure", "An internal error occurred"},
	"ServiceUnavailableException":         {503, "ServiceUnavailable", "Service Unavailable"},
}

func stsError(e *apiError) *apiError {
	if m, ok := stsCodes[e.code]; ok {
		out := m
		if out.msg == "" {
			out.msg = e.msg
		}
		return &out
	}
	return e
}

type stsErrorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	NS        string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

type assumeRoleResponse struct {
	XMLName       xml.Name `xml:"AssumeRoleResponse"`
	NS            string   `xml:"xmlns,attr"`
	Arn           string   `xml:"AssumeRoleResult>AssumedRoleUser>Arn"`
	AssumedRoleID string   `xml:"AssumeRoleResult>AssumedRoleUser>AssumedRoleId"`
	AccessKeyID   string   `xml:"AssumeRoleResult>Credentials>AccessKeyId"`
	Secret        string   `xml:"AssumeRoleResult>Credentials>SecretAccessKey"`
	Token         string   `xml:"AssumeRoleResult>Credentials>SessionToken"`
	Expiration    string   `xml:"AssumeRoleResult>Credentials>Expiration"`
	RequestID     string   `xml:"ResponseMetadata>RequestId"`
}

type callerIdentityResponse struct {
	XMLName   xml.Name `xml:"GetCallerIdentityResponse"`
	NS        string   `xml:"xmlns,attr"`
	Arn       string   `xml:"GetCallerIdentityResult>Arn"`
	UserID    string   `xml:"GetCallerIdentityResult>UserId"`
	Account   string   `xml:"GetCallerIdentityResult>Account"`
	RequestID string   `xml:"ResponseMetadata>RequestId"`
}

// serveSTS answers STS's Query protocol: AssumeRole and
// GetCallerIdentity.
func (e *Emulator) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) {
	form, _ := url.ParseQuery(string(body))
	op := form.Get("Action")
	call := Call{Service: "sts", Op: op, UserAgent: r.UserAgent(), RequestID: newRequestID()}
	status, out := e.sts(w, r, op, form, body, &call)
	if status == 0 { // the connection was reset, and the call recorded
		return
	}
	call.Status = status
	e.record(call)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", call.RequestID)
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(out)
}

func (e *Emulator) sts(w http.ResponseWriter, r *http.Request, op string, form url.Values, body []byte, call *Call) (int, []byte) {
	fail := func(ae *apiError) (int, []byte) {
		ae = stsError(ae)
		call.ErrorCode = ae.code
		typ := "Sender"
		if ae.status >= 500 {
			typ = "Receiver"
		}
		out, _ := xml.Marshal(stsErrorResponse{NS: stsNS, Type: typ, Code: ae.code, Message: ae.msg, RequestID: call.RequestID})
		return ae.status, out
	}
	f, err := e.fault(r.Context(), op)
	if err != nil {
		return fail(&apiError{500, "KMSInternalException", "the client went away"})
	}
	if f != nil {
		if f.Reset {
			call.ErrorCode = "ConnectionReset"
			e.record(*call) // before the client sees the reset
			reset(w)
			return 0, nil
		}
		return fail(faultError(f))
	}
	s, aerr := e.verify(r, body)
	if s.who != nil {
		call.Principal = s.who.arn
	}
	if aerr != nil {
		return fail(aerr)
	}
	switch op {
	case "GetCallerIdentity":
		out, _ := xml.Marshal(callerIdentityResponse{NS: stsNS, Arn: s.who.arn, UserID: s.who.userID, Account: s.who.account, RequestID: call.RequestID})
		return http.StatusOK, out
	case "AssumeRole":
		roleARN := form.Get("RoleArn")
		call.Resource = roleARN
		d := time.Hour
		if v := form.Get("DurationSeconds"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fail(&apiError{400, "ValidationError", fmt.Sprintf("Value '%s' at 'durationSeconds' is not a number", v)})
			}
			d = time.Duration(n) * time.Second
		}
		if roleARN == "" {
			return fail(&apiError{400, "ValidationError", "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"})
		}
		c, who, ae := e.assumeRole(s.who, roleARN, form.Get("RoleSessionName"), form.Get("ExternalId"), d)
		if ae != nil {
			return fail(ae)
		}
		out, _ := xml.Marshal(assumeRoleResponse{NS: stsNS, Arn: who.arn, AssumedRoleID: who.userID,
			AccessKeyID: c.AccessKeyID, Secret: c.SecretAccessKey, Token: c.SessionToken,
			Expiration: c.Expires.Format(time.RFC3339), RequestID: call.RequestID})
		return http.StatusOK, out
	}
	return fail(&apiError{400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version 2011-06-15", op)})
}
