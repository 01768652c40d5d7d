// Package client is a Go client of the byok HTTP API (package server,
// docs/api.md): one method per route, typed answers, and typed errors.
//
//	c, err := client.New("https://byok.example.com", os.Getenv("BYOK_TOKEN"), nil)
//	ct, err := c.Encrypt(ctx, "acme", "chat", []byte("hello"), nil)
//
// # Errors
//
// Every error answer of the server becomes an [*Error] carrying its HTTP
// status, its stable code, its message (which says what was wrong and how
// to fix it), the request field at fault and the Retry-After the server
// asked for. Branch on it with errors.As, or with errors.Is against the
// sentinels ([ErrNotFound], [ErrInvalidState], ...), which match by code.
// Failures that never reached the server (a refused connection, a
// cancelled context) are returned wrapped, as the net/http client gave
// them.
//
// # The token
//
// The bearer token is sent in the Authorization header of each request and
// nowhere else: it is never part of an error, a String or a log line.
// Net/http drops the header when a redirect leaves the server's host.
//
// The package imports only the standard library, so that programs that
// call the API do not link the server or the keyring.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options configure a [Client]. The zero value is usable.
type Options struct {
	// HTTPClient sends the requests; nil means a client with a 5 minute
	// overall timeout (each route has its own, shorter, server-side limit).
	HTTPClient *http.Client
	// UserAgent is sent as the User-Agent header; "" means "byok-client".
	UserAgent string
}

// DefaultTimeout is the overall timeout of the HTTP client New makes when
// Options.HTTPClient is nil: the longest route (an audit export) may run
// for 5 minutes.
const DefaultTimeout = 5 * time.Minute

// Client calls one byok server with one token. It is safe for concurrent
// use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	ua    string
}

// New returns a client of the server at baseURL (http or https, with an
// optional path prefix) that authenticates with token. An empty token is
// allowed: the probes need none, and every other route then answers
// [ErrUnauthenticated]. New makes no request.
func New(baseURL, token string, opts *Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q is not an http or https URL such as https://byok.example.com", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: server URL %q must not carry a query, a fragment or user info; give scheme, host and an optional path", baseURL)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return nil, errors.New("client: the token contains white space; copy it whole, without line breaks")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, token: token, hc: &http.Client{Timeout: DefaultTimeout}, ua: "byok-client"}
	if opts != nil {
		if opts.HTTPClient != nil {
			c.hc = opts.HTTPClient
		}
		if opts.UserAgent != "" {
			c.ua = opts.UserAgent
		}
	}
	return c, nil
}

// String names the server; it never shows the token.
func (c *Client) String() string { return "byok client of " + c.base.String() }

// request is one call to the API.
type request struct {
	method string
	path   string     // already escaped, see p
	query  url.Values // optional
	body   any        // JSON-encoded unless nil
}

// p joins path segments, escaping each: p("v1", "tenants", id).
func p(segs ...string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// send performs r and returns the response of a 2xx answer, whose body
// the caller closes; any other answer is decoded into an *Error.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	res, err := c.roundTrip(ctx, r)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 == 2 {
		return res, nil
	}
	defer res.Body.Close()
	return nil, decodeError(res)
}

// roundTrip performs r and returns the response, whatever its status.
func (c *Client) roundTrip(ctx context.Context, r request) (*http.Response, error) {
	u := c.base.String() + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("client: encode the body of %s %s: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	return res, nil
}

// do performs r and decodes the JSON answer into out (unless out is nil).
func (c *Client) do(ctx context.Context, r request, out any) error {
	res, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, res.Body)
		return err
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("client: %s %s: the answer (%d) is not the JSON expected: %w; is %s a byok server of a matching version?",
			r.method, r.path, res.StatusCode, err, c.base)
	}
	return nil
}

// maxErrorBody caps how much of an error answer is read.
const maxErrorBody = 64 << 10

// decodeError turns a non-2xx answer into an *Error. An answer that is not
// the server's error JSON (a proxy's page, say) keeps its status, with the
// code "http_<status>" and the start of its text as the message.
func decodeError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	e := &Error{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
	if s := res.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error != nil && env.Error.Code != "" {
		e.Code, e.Message, e.Field = env.Error.Code, env.Error.Message, env.Error.Field
		return e
	}
	e.Code = "http_" + strconv.Itoa(res.StatusCode)
	text := strings.TrimSpace(string(b))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if text == "" {
		text = http.StatusText(res.StatusCode)
	}
	e.Message = "the server answered " + res.Status + " without a byok error body: " + text + "; check that the URL points at a byok server"
	return e
}
