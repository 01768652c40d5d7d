package awsemu

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/handler"
	"github.com/nsmithuk/local-kms/src/service"
)

// kmsOp is a KMS operation awsemu serves: local-kms's handler, or nil for
// one awsemu answers itself; write says whether it changes the key.
type kmsOp struct {
	handle func(*handler.RequestHandler) handler.Response
	write  bool
}

// kmsOps are the KMS operations served; the others answer
// UnknownOperationException. Every one names a key (KeyId), whose policy
// must allow kms:<operation>.
var kmsOps = map[string]kmsOp{
	"Encrypt":              {handle: (*handler.RequestHandler).Encrypt},
	"Decrypt":              {handle: (*handler.RequestHandler).Decrypt},
	"GenerateDataKey":      {handle: (*handler.RequestHandler).GenerateDataKey},
	"DescribeKey":          {handle: (*handler.RequestHandler).DescribeKey},
	"GetKeyRotationStatus": {handle: (*handler.RequestHandler).GetKeyRotationStatus},
	"GetKeyPolicy":         {handle: (*handler.RequestHandler).GetKeyPolicy},
	"PutKeyPolicy":         {handle: (*handler.RequestHandler).PutKeyPolicy, write: true},
	"EnableKeyRotation":    {handle: (*handler.RequestHandler).EnableKeyRotation, write: true},
	"DisableKeyRotation":   {handle: (*handler.RequestHandler).DisableKeyRotation, write: true},
	"EnableKey":            {handle: (*handler.RequestHandler).EnableKey, write: true},
	"DisableKey":           {handle: (*handler.RequestHandler).DisableKey, write: true},
	"ScheduleKeyDeletion":  {handle: (*handler.RequestHandler).ScheduleKeyDeletion, write: true},
	"CancelKeyDeletion":    {handle: (*handler.RequestHandler).CancelKeyDeletion, write: true},
	"RotateKeyOnDemand":    {write: true},
}

var (
	keyARNRE   = regexp.MustCompile(`^arn:aws[\w-]*:kms:([a-z0-9-]+):(\d{12}):key/((?:mrk-)?[0-9a-fA-F-]{32,36})$`)
	aliasARNRE = regexp.MustCompile(`^arn:aws[\w-]*:kms:([a-z0-9-]+):(\d{12}):(alias/[\w/+=,.@-]+)$`)
	keyIDRE    = regexp.MustCompile(`^(?:mrk-)?[0-9a-fA-F-]{32,36}$`)
)

// kmsRequest is the part of a KMS request body awsemu reads.
type kmsRequest struct {
	KeyID             string            `json:"KeyId"`
	CiphertextBlob    []byte            `json:"CiphertextBlob"`
	EncryptionContext map[string]string `json:"EncryptionContext"`
	Policy            *string           `json:"Policy"`
	Algorithm         string            `json:"EncryptionAlgorithm"`
}

func (e *Emulator) serveKMS(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	call := Call{Service: "kms", Op: op, UserAgent: r.UserAgent(), RequestID: newRequestID()}
	status, out := e.kms(w, r, op, body, &call)
	if status == 0 { // the connection was reset, and the call recorded
		return
	}
	call.Status = status
	if status >= 300 {
		var env struct {
			Type string `json:"__type"`
		}
		json.Unmarshal(out, &env)
		call.ErrorCode = env.Type
	}
	e.record(call)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-RequestId", call.RequestID)
	w.WriteHeader(status)
	w.Write(out)
}

// kmsError is the JSON body of a KMS error; AccessDeniedException has a
// capital-M Message, as AWS sends it.
func kmsError(e *apiError) (int, []byte) {
	field := "message"
	if e.code == "AccessDeniedException" {
		field = "Message"
	}
	b, _ := json.Marshal(map[string]string{"__type": e.code, field: e.msg})
	return e.status, b
}

// kms answers a KMS request: fault, signature, key, key policy, then
// local-kms (or awsemu's own operation). Status 0 means it reset the
// connection.
func (e *Emulator) kms(w http.ResponseWriter, r *http.Request, op string, body []byte, call *Call) (int, []byte) {
	f, err := e.fault(r.Context(), op)
	if err != nil {
		return kmsError(&apiError{500, "KMSInternalException", "the client went away"})
	}
	if f != nil {
		if f.Reset {
			call.ErrorCode = "ConnectionReset"
			e.record(*call) // before the client sees the reset
			reset(w)
			return 0, nil
		}
		return kmsError(faultError(f))
	}
	s, aerr := e.verify(r, body)
	if s.who != nil {
		call.Principal = s.who.arn
	}
	if aerr != nil {
		return kmsError(aerr)
	}
	o, ok := kmsOps[op]
	if !ok {
		return kmsError(&apiError{400, "UnknownOperationException", ""})
	}
	var in kmsRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return kmsError(&apiError{400, "SerializationException", "Start of structure or map found where not expected"})
	}
	call.EncryptionContext = in.EncryptionContext

	keyARN, aerr := e.targetKey(op, in, s)
	call.Resource = keyARN
	if aerr != nil {
		return kmsError(aerr)
	}
	if o.write {
		e.keyMu.Lock()
		defer e.keyMu.Unlock()
	} else {
		e.keyMu.RLock()
		defer e.keyMu.RUnlock()
	}
	key, err := e.db.LoadKey(keyARN)
	if err != nil || key == nil {
		return kmsError(&apiError{400, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", keyARN)})
	}
	if aerr := e.authorize(s.who, "kms:"+op, key, in.EncryptionContext); aerr != nil {
		return kmsError(aerr)
	}
	if _, rsa := key.(*cmk.RsaKey); rsa && (op == "Encrypt" || op == "Decrypt") && orDefault(in.Algorithm, "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT" {
		// local-kms would fail with a 500.
		return kmsError(&apiError{400, "InvalidKeyUsageException", fmt.Sprintf("%s key spec %s is not valid for the SYMMETRIC_DEFAULT encryption algorithm.", keyARN, key.GetMetadata().KeySpec)})
	}
	if op == "Decrypt" {
		if aerr := checkCiphertext(key, in); aerr != nil {
			return kmsError(aerr)
		}
	}
	if op == "PutKeyPolicy" && in.Policy != nil {
		if _, err := parsePolicy(*in.Policy); err != nil {
			return kmsError(&apiError{400, "MalformedPolicyDocumentException", err.Error()})
		}
	}
	if op == "RotateKeyOnDemand" {
		return e.rotateOnDemand(key)
	}
	// Hand local-kms the key's full ARN, so its own (process-wide) account
	// and region never apply.
	var raw map[string]json.RawMessage
	json.Unmarshal(body, &raw)
	raw["KeyId"], _ = json.Marshal(keyARN)
	fwd, _ := json.Marshal(raw)
	req := r.Clone(r.Context())
	req.Body = readCloser(fwd)
	resp := o.handle(handler.NewRequestHandler(req, e.kmsLog, e.db))
	out := []byte(resp.Body)
	if op == "DescribeKey" && resp.Code == http.StatusOK {
		out = describeExtras(out)
	}
	return resp.Code, out
}

// targetKey returns the ARN of the key a request names: its KeyId (a key
// or alias ARN, a key id or alias name in the caller's account and the
// request's region), or for Decrypt without KeyId the key the ciphertext
// names.
func (e *Emulator) targetKey(op string, in kmsRequest, s signed) (string, *apiError) {
	id := in.KeyID
	if id == "" && op == "Decrypt" {
		ident, _, _, ok := service.UnpackCiphertextBlob(in.CiphertextBlob)
		if !ok || !keyARNRE.MatchString(ident) {
			return "", &apiError{400, "InvalidCiphertextException", ""}
		}
		id = ident
	}
	if id == "" {
		return "", &apiError{400, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"}
	}
	prefix := "arn:aws:kms:" + s.region + ":" + s.who.account + ":"
	switch {
	case strings.HasPrefix(id, "alias/"):
		id = prefix + id
	case keyIDRE.MatchString(id):
		return prefix + "key/" + id, nil
	}
	if m := keyARNRE.FindStringSubmatch(id); m != nil {
		if m[1] != s.region {
			return id, &apiError{400, "NotFoundException", "Invalid arn " + m[1]}
		}
		return id, nil
	}
	m := aliasARNRE.FindStringSubmatch(id)
	if m == nil {
		return "", &apiError{400, "NotFoundException", "Invalid keyId '" + id + "'"}
	}
	if m[1] != s.region {
		return id, &apiError{400, "NotFoundException", "Invalid arn " + m[1]}
	}
	a, err := e.db.LoadAlias(id)
	if err != nil {
		return id, &apiError{400, "NotFoundException", fmt.Sprintf("Alias %s is not found.", id)}
	}
	return a.TargetKeyId, nil
}

// authorize evaluates the key's policy for who doing action, with the
// request's encryption context as condition keys.
func (e *Emulator) authorize(who *identity, action string, key cmk.Key, ec map[string]string) *apiError {
	res := key.GetArn()
	p, err := parsePolicy(key.GetPolicy())
	d := implicitDeny
	if err == nil {
		ctx := map[string]string{"kms:CallerAccount": who.account, "aws:PrincipalArn": principalARN(who), "aws:PrincipalAccount": who.account}
		for k, v := range ec {
			ctx["kms:EncryptionContext:"+k] = v
		}
		d = p.evaluate(request{caller: who, action: action, resource: res, context: ctx})
	}
	switch d {
	case allowed:
		return nil
	case explicitDeny:
		return &apiError{400, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s with an explicit deny in a resource-based policy", who.arn, action, res)}
	}
	return &apiError{400, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no resource-based policy allows the %s action", who.arn, action, res, action)}
}

// checkCiphertext answers, before local-kms sees a symmetric ciphertext,
// what AWS answers and local-kms does not: IncorrectKeyException for a
// ciphertext of another key, InvalidCiphertextException for one too short
// to hold a nonce and a tag (local-kms would panic).
func checkCiphertext(key cmk.Key, in kmsRequest) *apiError {
	if _, ok := key.(*cmk.AesKey); !ok || len(in.CiphertextBlob) == 0 {
		return nil
	}
	ident, _, ct, ok := service.UnpackCiphertextBlob(in.CiphertextBlob)
	switch {
	case !ok || len(ct) < 12+16:
		return &apiError{400, "InvalidCiphertextException", ""}
	case ident != key.GetArn():
		return &apiError{400, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation."}
	}
	return nil
}

// rotateOnDemand gives a symmetric key new backing key material
// (RotateKeyOnDemand, which local-kms lacks). Callers hold keyMu.
func (e *Emulator) rotateOnDemand(key cmk.Key) (int, []byte) {
	k, ok := key.(*cmk.AesKey)
	if !ok {
		return kmsError(&apiError{400, "UnsupportedOperationException", fmt.Sprintf("%s key spec %s does not support on-demand rotation.", key.GetArn(), key.GetMetadata().KeySpec)})
	}
	if aerr := usable(k); aerr != nil {
		return kmsError(aerr)
	}
	var b [32]byte
	rand.Read(b[:])
	k.BackingKeys = append(k.BackingKeys, b)
	if err := e.db.SaveKey(k); err != nil {
		return kmsError(&apiError{500, "KMSInternalException", err.Error()})
	}
	out, _ := json.Marshal(map[string]string{"KeyId": k.GetArn()})
	return http.StatusOK, out
}

// usable answers as AWS does for a key that is disabled or pending
// deletion.
func usable(k cmk.Key) *apiError {
	m := k.GetMetadata()
	switch {
	case m.DeletionDate != 0:
		return &apiError{400, "KMSInvalidStateException", k.GetArn() + " is pending deletion."}
	case !m.Enabled:
		return &apiError{400, "DisabledException", k.GetArn() + " is disabled."}
	}
	return nil
}

// describeExtras adds to DescribeKey's answer what local-kms leaves out:
// MultiRegion (true for mrk- keys, each its own primary here).
func describeExtras(out []byte) []byte {
	var env struct {
		KeyMetadata map[string]any
	}
	if json.Unmarshal(out, &env) != nil || env.KeyMetadata == nil {
		return out
	}
	m := env.KeyMetadata
	id, _ := m["KeyId"].(string)
	arn, _ := m["Arn"].(string)
	m["MultiRegion"] = strings.HasPrefix(id, "mrk-")
	if strings.HasPrefix(id, "mrk-") {
		region := ""
		if p := keyARNRE.FindStringSubmatch(arn); p != nil {
			region = p[1]
		}
		m["MultiRegionConfiguration"] = map[string]any{"MultiRegionKeyType": "PRIMARY",
			"PrimaryKey": map[string]string{"Arn": arn, "Region": region}}
	}
	b, err := json.Marshal(env)
	if err != nil {
		return out
	}
	return b
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func readCloser(b []byte) nopCloser { return nopCloser{bytes.NewReader(b)} }

// keyByARN loads a key for a control operation.
func (e *Emulator) keyByARN(arn string) (cmk.Key, error) {
	k, err := e.db.LoadKey(arn)
	if err != nil || k == nil {
		return nil, fmt.Errorf("%w: no key %s", ErrNotFound, arn)
	}
	return k, nil
}
