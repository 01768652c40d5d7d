package awsemu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// apiError is an AWS error answer: its HTTP status, error code and
// message.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// signed is what a verified SigV4 request tells.
type signed struct {
	who     *identity
	keyID   string
	region  string
	service string
}

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	maxSkew      = 15 * time.Minute
)

// Messages AWS answers for signature failures.
const (
	msgBadSignature = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgBadToken     = "The security token included in the request is invalid."
	msgExpiredToken = "The security token included in the request is expired"
)

// verify checks the SigV4 signature of r (whose body is body) and returns
// the signer. The errors are those of KMS's JSON protocol; sts.go maps the
// codes to STS's.
func (e *Emulator) verify(r *http.Request, body []byte) (signed, *apiError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return signed{}, &apiError{400, "MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != sigAlgorithm {
		return signed{}, &apiError{400, "IncompleteSignatureException", fmt.Sprintf("Unsupported AWS 'algorithm': '%s'", alg)}
	}
	var cred, signedHeaders, sig string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			sig = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || signedHeaders == "" || sig == "" {
		return signed{}, &apiError{400, "IncompleteSignatureException", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."}
	}
	s := signed{keyID: scope[0], region: scope[2], service: scope[3]}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, scope[1]) {
		return s, &apiError{400, "IncompleteSignatureException", "Date must be in ISO-8601 'basic format'. Got '" + amzDate + "'."}
	}
	now := e.now().UTC()
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return s, &apiError{400, "InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-maxSkew).Format("20060102T150405Z"), now.Format("20060102T150405Z"))}
	}

	e.mu.Lock()
	c := e.creds[s.keyID]
	var secret, token string
	var expires time.Time
	if c != nil {
		secret, token, expires, s.who = c.secret, c.token, c.expires, c.who
	}
	e.mu.Unlock()
	if c == nil {
		return s, &apiError{400, "UnrecognizedClientException", msgBadToken}
	}
	if token != "" && r.Header.Get("X-Amz-Security-Token") != token {
		return s, &apiError{400, "UnrecognizedClientException", msgBadToken}
	}

	payload := sha256.Sum256(body)
	creq := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL),
		canonicalQuery(r.URL.Query()),
		canonicalHeaders(r, strings.Split(signedHeaders, ";")),
		signedHeaders,
		hex.EncodeToString(payload[:]),
	}, "\n")
	hreq := sha256.Sum256([]byte(creq))
	sts := strings.Join([]string{sigAlgorithm, amzDate, strings.Join(scope[1:], "/"), hex.EncodeToString(hreq[:])}, "\n")
	k := hmacSHA256([]byte("AWS4"+secret), scope[1])
	for _, part := range scope[2:] {
		k = hmacSHA256(k, part)
	}
	want := hex.EncodeToString(hmacSHA256(k, sts))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return s, &apiError{400, "InvalidSignatureException", msgBadSignature}
	}
	if token != "" && !now.Before(expires) {
		return s, &apiError{400, "ExpiredTokenException", msgExpiredToken}
	}
	return s, nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return p
}

func canonicalQuery(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// uriEncode is SigV4's URI encoding: RFC 3986 unreserved characters stay.
func uriEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func canonicalHeaders(r *http.Request, names []string) string {
	var b strings.Builder
	for _, n := range names {
		var v string
		switch n {
		case "host":
			v = r.Host
		case "content-length":
			v = fmt.Sprint(r.ContentLength)
		default:
			vs := slices.Clone(r.Header.Values(n))
			for i := range vs {
				vs[i] = strings.Join(strings.Fields(vs[i]), " ")
			}
			v = strings.Join(vs, ",")
		}
		b.WriteString(n + ":" + v + "\n")
	}
	return b.String()
}
