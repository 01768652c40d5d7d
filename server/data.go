package server

import (
	"fmt"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// Data operations, as the batch route and the metrics name them.
const (
	opEncrypt   = "encrypt"
	opDecrypt   = "decrypt"
	opReencrypt = "reencrypt"
)

// dataItem is one data operation: the body of encrypt, decrypt and
// reencrypt, and one item of a batch (which adds Op). Plaintext,
// Ciphertext and AAD are standard base64.
type dataItem struct {
	Op         string  `json:"op,omitempty"`
	Scope      *string `json:"scope"`
	Plaintext  *string `json:"plaintext,omitempty"`
	Ciphertext *string `json:"ciphertext,omitempty"`
	AAD        string  `json:"aad,omitempty"`
}

// dataResult is the answer of one data operation; in a batch, exactly one
// of its output and Error is set.
type dataResult struct {
	Plaintext  []byte `json:"plaintext,omitempty"`
	Ciphertext []byte `json:"ciphertext,omitempty"`
	Error      *Error `json:"error,omitempty"`
}

// do runs one data operation of tenant.
func (s *server) do(c *call, op string, it dataItem) (dataResult, error) {
	if err := required("scope", it.Scope); err != nil {
		return dataResult{}, err
	}
	scope := *it.Scope
	if err := checkID("scope", scope); err != nil {
		return dataResult{}, err
	}
	aad, err := b64("aad", it.AAD)
	if err != nil {
		return dataResult{}, err
	}
	in, inField := it.Ciphertext, "ciphertext"
	if op == opEncrypt {
		in, inField = it.Plaintext, "plaintext"
		if it.Ciphertext != nil {
			return dataResult{}, &byok.InputError{Arg: "ciphertext", Reason: "is not taken by encrypt; send plaintext"}
		}
	} else if it.Plaintext != nil {
		return dataResult{}, &byok.InputError{Arg: "plaintext", Reason: "is not taken by " + op + "; send ciphertext"}
	}
	if err := required(inField, in); err != nil {
		return dataResult{}, err
	}
	data, err := b64(inField, *in)
	if err != nil {
		return dataResult{}, err
	}
	tenant := c.tenant()
	calls := s.m.providerCalls()
	start := time.Now()
	var out []byte
	switch op {
	case opEncrypt:
		out, err = s.kr.Encrypt(c.ctx, tenant, scope, data, aad)
	case opDecrypt:
		out, err = s.kr.Decrypt(c.ctx, tenant, scope, data, aad)
	default:
		out, err = s.kr.Reencrypt(c.ctx, tenant, scope, data, aad)
	}
	s.m.observeOp(op, err, time.Since(start), calls == s.m.providerCalls())
	if err != nil {
		return dataResult{}, err
	}
	s.countUsage(tenant, scope, op)
	if op == opDecrypt {
		return dataResult{Plaintext: out}, nil
	}
	return dataResult{Ciphertext: out}, nil
}

// dataRoute returns the handler of a single data operation.
func (s *server) dataRoute(op string) func(c *call) (any, error) {
	return func(c *call) (any, error) {
		var it dataItem
		if err := decodeData(c, &it); err != nil {
			return nil, err
		}
		if it.Op != "" {
			return nil, &Error{Status: 400, Code: CodeUnknownField, Field: "op",
				Message: `field "op" is taken by the batch route only; this route is ` + op}
		}
		return s.do(c, op, it)
	}
}

// batchRequest is the body of the batch route.
type batchRequest struct {
	Items []dataItem `json:"items"`
}

// batchResponse has one result per item, in order.
type batchResponse struct {
	Results []dataResult `json:"results"`
}

// batch runs up to MaxBatch data operations of one tenant. Each item gets
// its own result or error, as Vault's transit batches do; only an
// internal error fails the whole request.
func (s *server) batch(c *call) (any, error) {
	var req batchRequest
	if err := decodeData(c, &req); err != nil {
		return nil, err
	}
	if len(req.Items) == 0 {
		return nil, &byok.InputError{Arg: "items", Reason: "is empty; send 1 to " + fmt.Sprint(s.cfg.MaxBatch) + " items"}
	}
	if len(req.Items) > s.cfg.MaxBatch {
		return nil, &byok.InputError{Arg: "items", Reason: fmt.Sprintf("has %d items, the limit is %d; split the batch", len(req.Items), s.cfg.MaxBatch)}
	}
	resp := batchResponse{Results: make([]dataResult, len(req.Items))}
	for i, it := range req.Items {
		var err error
		switch it.Op {
		case opEncrypt, opDecrypt, opReencrypt:
			resp.Results[i], err = s.do(c, it.Op, it)
		default:
			err = &byok.InputError{Arg: "op", Reason: fmt.Sprintf("is %q; it must be %q, %q or %q", it.Op, opEncrypt, opDecrypt, opReencrypt)}
		}
		if err == nil {
			continue
		}
		e, internal := errorFor(err)
		if internal {
			return nil, err
		}
		if e.Field != "" {
			e = &Error{Status: e.Status, Code: e.Code, Message: e.Message, Field: fmt.Sprintf("items[%d].%s", i, e.Field)}
		}
		resp.Results[i] = dataResult{Error: e}
	}
	return resp, nil
}

// countUsage counts one successful operation in the usage counters; a
// re-encryption is a decryption and an encryption.
func (s *server) countUsage(tenant, scope, op string) {
	u := s.cfg.Usage
	if u == nil {
		return
	}
	if op != opEncrypt {
		u.Add(tenant, scope, audit.Decrypt)
	}
	if op != opDecrypt {
		u.Add(tenant, scope, audit.Encrypt)
	}
}
