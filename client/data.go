package client

import (
	"context"
	"fmt"
	"net/http"
)

// The data routes a service token may call. Bytes travel as standard
// base64 (encoding/json's form of []byte); a data call carries up to about
// 6 MiB of payload, larger data goes through the Go library's streams.

// dataBody is the body of a data call and one item of a batch.
type dataBody struct {
	Op         string  `json:"op,omitempty"`
	Scope      string  `json:"scope"`
	Plaintext  *[]byte `json:"plaintext,omitempty"`
	Ciphertext *[]byte `json:"ciphertext,omitempty"`
	AAD        []byte  `json:"aad,omitempty"`
}

// dataAnswer is the answer of a data call and one result of a batch.
type dataAnswer struct {
	Plaintext  []byte `json:"plaintext"`
	Ciphertext []byte `json:"ciphertext"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// nonNil returns a pointer to b, or to an empty slice for nil: an empty
// plaintext is still a plaintext.
func nonNil(b []byte) *[]byte {
	if b == nil {
		b = []byte{}
	}
	return &b
}

func (c *Client) data(ctx context.Context, op, tenant string, body dataBody) (dataAnswer, error) {
	var a dataAnswer
	err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tenants", tenant, op), body: body}, &a)
	return a, err
}

// Encrypt seals plaintext for tenant's scope, binding aad (which Decrypt
// must be given again), and returns the ciphertext.
func (c *Client) Encrypt(ctx context.Context, tenant, scope string, plaintext, aad []byte) ([]byte, error) {
	a, err := c.data(ctx, "encrypt", tenant, dataBody{Scope: scope, Plaintext: nonNil(plaintext), AAD: aad})
	return a.Ciphertext, err
}

// Decrypt opens a ciphertext of tenant's scope made with aad. A ciphertext
// of another tenant, scope or aad, or an altered one, answers
// [ErrDecryptFailed]; a revoked customer key [ErrKeyRevoked].
func (c *Client) Decrypt(ctx context.Context, tenant, scope string, ciphertext, aad []byte) ([]byte, error) {
	a, err := c.data(ctx, "decrypt", tenant, dataBody{Scope: scope, Ciphertext: nonNil(ciphertext), AAD: aad})
	if err != nil {
		return nil, err
	}
	if a.Plaintext == nil {
		a.Plaintext = []byte{}
	}
	return a.Plaintext, nil
}

// Reencrypt opens a ciphertext and seals it again under the scope's
// current key, on the server: the plaintext never travels.
func (c *Client) Reencrypt(ctx context.Context, tenant, scope string, ciphertext, aad []byte) ([]byte, error) {
	a, err := c.data(ctx, "reencrypt", tenant, dataBody{Scope: scope, Ciphertext: nonNil(ciphertext), AAD: aad})
	return a.Ciphertext, err
}

// Data operations of a batch.
const (
	OpEncrypt   = "encrypt"
	OpDecrypt   = "decrypt"
	OpReencrypt = "reencrypt"
)

// BatchItem is one operation of a batch: Op is OpEncrypt (Data is the
// plaintext), OpDecrypt or OpReencrypt (Data is the ciphertext).
type BatchItem struct {
	Op    string
	Scope string
	Data  []byte
	AAD   []byte
}

// BatchResult is the result of one batch item: Data (the ciphertext, or
// the plaintext of a decrypt) or Err, an *Error with the item's own code.
type BatchResult struct {
	Data []byte
	Err  error
}

// Batch runs up to the server's limit (256 by default) data operations of
// tenant in one request. Each item gets its own result, in order; the
// returned error is set only when the whole request failed.
func (c *Client) Batch(ctx context.Context, tenant string, items []BatchItem) ([]BatchResult, error) {
	body := struct {
		Items []dataBody `json:"items"`
	}{Items: make([]dataBody, len(items))}
	for i, it := range items {
		b := dataBody{Op: it.Op, Scope: it.Scope, AAD: it.AAD}
		if it.Op == OpEncrypt {
			b.Plaintext = nonNil(it.Data)
		} else {
			b.Ciphertext = nonNil(it.Data)
		}
		body.Items[i] = b
	}
	var out struct {
		Results []dataAnswer `json:"results"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: p("v1", "tenants", tenant, "batch"), body: body}, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(items) {
		return nil, fmt.Errorf("client: the batch answer has %d results for %d items; is the server a byok server of a matching version?", len(out.Results), len(items))
	}
	rs := make([]BatchResult, len(items))
	for i, a := range out.Results {
		switch {
		case a.Error != nil:
			rs[i].Err = &Error{Status: statusOf(a.Error.Code), Code: a.Error.Code, Message: a.Error.Message, Field: a.Error.Field}
		case items[i].Op == OpDecrypt:
			rs[i].Data = a.Plaintext
			if rs[i].Data == nil {
				rs[i].Data = []byte{}
			}
		default:
			rs[i].Data = a.Ciphertext
		}
	}
	return rs, nil
}

// statusOf is the HTTP status the server gives code, for the errors of
// batch items, which carry no status of their own.
func statusOf(code string) int {
	switch code {
	case CodeInvalidInput, CodeBadJSON, CodeUnknownField, CodeDecryptFailed, CodeInvalidCiphertext:
		return http.StatusBadRequest
	case CodeKeyRevoked, CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeInvalidState, CodeExists, CodeConflict:
		return http.StatusConflict
	case CodeKeyUnavailable, CodeTimeout, CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
