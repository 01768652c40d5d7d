package vault

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"
)

// handlers maps each operation to the function that runs it once the
// request has passed every check.
var handlers = map[Op]func(*Service, *request) (result, *apiError){
	OpCreateKey:               (*Service).createKey,
	OpImportKey:               (*Service).importKey,
	OpGetKey:                  (*Service).getKey,
	OpUpdateKey:               (*Service).updateKey,
	OpListKeys:                (*Service).listKeys,
	OpListKeyVersions:         (*Service).listKeyVersions,
	OpDeleteKey:               (*Service).deleteKey,
	OpGetDeletedKey:           (*Service).getDeletedKey,
	OpListDeletedKeys:         (*Service).listDeletedKeys,
	OpRecoverDeletedKey:       (*Service).recoverDeletedKey,
	OpPurgeDeletedKey:         (*Service).purgeDeletedKey,
	OpRotateKey:               (*Service).rotateKey,
	OpGetKeyRotationPolicy:    (*Service).getRotationPolicy,
	OpUpdateKeyRotationPolicy: (*Service).updateRotationPolicy,
	OpBackupKey:               (*Service).backupKey,
	OpRestoreKey:              (*Service).restoreKey,
	OpEncrypt:                 (*Service).crypto,
	OpDecrypt:                 (*Service).crypto,
	OpWrapKey:                 (*Service).crypto,
	OpUnwrapKey:               (*Service).crypto,
	OpSign:                    (*Service).crypto,
	OpVerify:                  (*Service).crypto,
	OpGetRandomBytes:          (*Service).randomBytes,
}

// Wire shapes.

type jsonAttributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         *int64 `json:"created,omitempty"`
	Updated         *int64 `json:"updated,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	RecoverableDays *int   `json:"recoverableDays,omitempty"`
	Exportable      *bool  `json:"exportable,omitempty"`
}

type jsonKey struct {
	Kid    string   `json:"kid,omitempty"`
	Kty    string   `json:"kty,omitempty"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	// Import only.
	D  string `json:"d,omitempty"`
	P  string `json:"p,omitempty"`
	Q  string `json:"q,omitempty"`
	DP string `json:"dp,omitempty"`
	DQ string `json:"dq,omitempty"`
	QI string `json:"qi,omitempty"`
	K  string `json:"k,omitempty"` // oct-HSM
}

type jsonBundle struct {
	Key                jsonKey           `json:"key"`
	Attributes         jsonAttributes    `json:"attributes"`
	Tags               map[string]string `json:"tags,omitempty"`
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        *int64            `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64            `json:"scheduledPurgeDate,omitempty"`
}

type jsonItem struct {
	Kid                string            `json:"kid"`
	Attributes         jsonAttributes    `json:"attributes"`
	Tags               map[string]string `json:"tags,omitempty"`
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        *int64            `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64            `json:"scheduledPurgeDate,omitempty"`
}

type jsonList struct {
	Value    []jsonItem `json:"value"`
	NextLink *string    `json:"nextLink"`
}

// createParams is the body of POST /keys/{name}/create.
type createParams struct {
	Kty        string            `json:"kty"`
	KeySize    *int              `json:"key_size"`
	PublicExp  *int              `json:"public_exponent"`
	Crv        string            `json:"crv"`
	KeyOps     []string          `json:"key_ops"`
	Attributes *jsonAttributes   `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

// importParams is the body of PUT /keys/{name}.
type importParams struct {
	Key        *jsonKey          `json:"key"`
	HSM        *bool             `json:"Hsm"`
	Attributes *jsonAttributes   `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

// updateParams is the body of PATCH /keys/{name}[/{version}].
type updateParams struct {
	KeyOps     []string          `json:"key_ops"`
	Attributes *jsonAttributes   `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

func unix(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeB64 reads base64url, padded or not.
func decodeB64(field, s string) ([]byte, *apiError) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, badParameter("Content of '%s' is not base64url.", field)
	}
	return b, nil
}

// decodeJSON parses a request body into v, answering Key Vault's 400 for
// anything that is not a JSON object of the right shape.
func decodeJSON(body []byte, v any) *apiError {
	if len(strings.TrimSpace(string(body))) == 0 {
		return badParameter("The request body is empty; a JSON object is required.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badParameter("Property '%s' has an invalid value: expected %s.", te.Field, te.Type)
		}
		return badParameter("The request body is not a valid JSON object.")
	}
	return nil
}

func (v *vaultState) attributes(kv *keyVersion) jsonAttributes {
	days := v.cfg.retention()
	exportable := false
	return jsonAttributes{
		Enabled: &kv.enabled, NotBefore: unix(kv.nbf), Expires: unix(kv.exp),
		Created: unix(kv.created), Updated: unix(kv.updated),
		RecoveryLevel: v.cfg.RecoveryLevel(), RecoverableDays: &days, Exportable: &exportable,
	}
}

func jwkOf(kid string, kv *keyVersion) jsonKey {
	k := jsonKey{Kid: kid, Kty: kv.kty, KeyOps: slices.Clone(kv.ops)}
	switch {
	case kv.oct != nil:
		// Never k: the key material stays in the HSM.
	case kv.rsa != nil:
		k.N = b64(kv.rsa.N.Bytes())
		k.E = b64(big.NewInt(int64(kv.rsa.E)).Bytes())
	default:
		pub, err := kv.ec.PublicKey.Bytes()
		if err == nil && len(pub) > 1 {
			n := (len(pub) - 1) / 2
			k.Crv, k.X, k.Y = curveName(kv.ec.Curve), b64(pub[1:1+n]), b64(pub[1+n:])
		}
	}
	return k
}

func (req *request) kid(k *keyState, kv *keyVersion) string {
	return req.base + "/keys/" + k.name + "/" + kv.version
}

func (req *request) bundle(k *keyState, kv *keyVersion) jsonBundle {
	b := jsonBundle{Key: jwkOf(req.kid(k, kv), kv), Attributes: req.vault.attributes(kv), Tags: kv.tags}
	if !k.deletedAt.IsZero() {
		b.RecoveryID = req.base + "/deletedkeys/" + k.name
		b.DeletedDate, b.ScheduledPurgeDate = unix(k.deletedAt), unix(k.purgeAt)
	}
	return b
}

// lookup finds the key (and version) a request names; the caller holds s.mu.
func (s *Service) lookup(req *request) (*keyState, *keyVersion, *apiError) {
	v := req.vault
	v.purgeExpired(s.now())
	k := v.keys[strings.ToLower(req.key)]
	if k == nil {
		return nil, nil, keyNotFound(req.key)
	}
	v.autoRotate(k, s.now())
	kv := k.version(req.version)
	if kv == nil {
		return nil, nil, keyNotFound(req.key + "/" + req.version)
	}
	return k, kv, nil
}

func checkKeyName(name string) *apiError {
	if !keyNameRE.MatchString(name) {
		return badParameter("The request URI contains an invalid name: %s", clip(name))
	}
	return nil
}

// applyAttributes sets request attributes on kv.
func applyAttributes(kv *keyVersion, a *jsonAttributes) {
	if a == nil {
		return
	}
	if a.Enabled != nil {
		kv.enabled = *a.Enabled
	}
	if a.NotBefore != nil {
		kv.nbf = time.Unix(*a.NotBefore, 0).UTC()
	}
	if a.Expires != nil {
		kv.exp = time.Unix(*a.Expires, 0).UTC()
	}
}

func (s *Service) createKey(req *request) (result, *apiError) {
	if aerr := checkKeyName(req.key); aerr != nil {
		return result{}, aerr
	}
	var p createParams
	if aerr := decodeJSON(req.body, &p); aerr != nil {
		return result{}, aerr
	}
	if p.Kty == "" {
		return result{}, badParameter("Property 'kty' is required.")
	}
	if p.PublicExp != nil && *p.PublicExp != 65537 {
		return result{}, badParameter("Public exponent %d is not supported; kvemu creates keys with 65537.", *p.PublicExp)
	}
	switch p.Kty {
	case "RSA", "RSA-HSM", "EC", "EC-HSM", "oct-HSM":
	case "oct":
		// The service's answer for a software AES key (Azure/azure-sdk-for-net#13437).
		return result{}, &apiError{status: http.StatusBadRequest, code: "BadParameter", inner: "KeyTypeNotSupported", msg: "Invalid kty value: oct"}
	default:
		return result{}, badParameter("Key type %q is not supported by a vault; use RSA, RSA-HSM, EC, EC-HSM or oct-HSM.", p.Kty)
	}
	if aerr := req.vault.cfg.checkKind(p.Kty); aerr != nil {
		return result{}, aerr
	}
	size := 0
	if p.KeySize != nil {
		if strings.HasPrefix(p.Kty, "EC") {
			return result{}, badParameter("Property 'key_size' is not valid for key type %s; use 'crv'.", p.Kty)
		}
		size = *p.KeySize
	}
	kv, err := generate(p.Kty, size, p.Crv)
	if err != nil {
		return result{}, badParameter("%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	return s.store(req, kv, p.KeyOps, p.Attributes, p.Tags)
}

// store adds kv, with request ops, attributes and tags, as the newest
// version of the request's key.
func (s *Service) store(req *request, kv *keyVersion, ops []string, a *jsonAttributes, tags map[string]string) (result, *apiError) {
	if ops != nil {
		valid, err := validOps(ops)
		if err != nil {
			return result{}, badParameter("Property 'key_ops' has an unknown operation: %s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
		kv.ops = valid
	}
	kv.enabled = true
	applyAttributes(kv, a)
	kv.tags = tags
	s.mu.Lock()
	defer s.mu.Unlock()
	req.vault.purgeExpired(s.now())
	k, aerr := req.vault.addVersion(req.key, kv, s.now())
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.bundle(k, kv)}, nil
}

func (s *Service) importKey(req *request) (result, *apiError) {
	if aerr := checkKeyName(req.key); aerr != nil {
		return result{}, aerr
	}
	var p importParams
	if aerr := decodeJSON(req.body, &p); aerr != nil {
		return result{}, aerr
	}
	if p.Key == nil {
		return result{}, badParameter("Property 'key' is required.")
	}
	priv, aerr := parsePrivateJWK(p.Key)
	if aerr != nil {
		return result{}, aerr
	}
	hsm := (p.HSM != nil && *p.HSM) || strings.HasSuffix(p.Key.Kty, "-HSM")
	kv, err := fromPrivate(priv, hsm)
	if err == nil {
		if aerr := req.vault.cfg.checkKind(kv.kty); aerr != nil {
			return result{}, aerr
		}
	}
	if err != nil {
		return result{}, badParameter("%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	return s.store(req, kv, p.Key.KeyOps, p.Attributes, p.Tags)
}

// parsePrivateJWK reads an RSA or EC private key from an import JWK.
func parsePrivateJWK(k *jsonKey) (any, *apiError) {
	field := func(name, val string) (*big.Int, *apiError) {
		if val == "" {
			return nil, badParameter("Property 'key.%s' is required to import a %s key.", name, k.Kty)
		}
		b, aerr := decodeB64("key."+name, val)
		if aerr != nil {
			return nil, aerr
		}
		return new(big.Int).SetBytes(b), nil
	}
	switch k.Kty {
	case "RSA", "RSA-HSM":
		var parts [8]*big.Int
		for i, f := range []struct{ name, val string }{{"n", k.N}, {"e", k.E}, {"d", k.D}, {"p", k.P}, {"q", k.Q}, {"dp", k.DP}, {"dq", k.DQ}, {"qi", k.QI}} {
			var aerr *apiError
			if parts[i], aerr = field(f.name, f.val); aerr != nil {
				return nil, aerr
			}
		}
		if !parts[1].IsInt64() || parts[1].Int64() < 3 || parts[1].Int64() > 1<<31-1 {
			return nil, badParameter("Property 'key.e' is not a valid RSA public exponent.")
		}
		if parts[0].BitLen() > 4096 {
			return nil, badParameter("RSA key of %d bits; Key Vault imports 2048 to 4096 bits.", parts[0].BitLen())
		}
		priv := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: parts[0], E: int(parts[1].Int64())},
			D:         parts[2], Primes: []*big.Int{parts[3], parts[4]},
		}
		if err := priv.Validate(); err != nil {
			return nil, badParameter("The RSA key is inconsistent: its parts do not form a valid key.")
		}
		priv.Precompute()
		return priv, nil
	case "EC", "EC-HSM":
		c, err := curveByName(k.Crv)
		if err != nil || k.Crv == "" {
			return nil, badParameter("Property 'key.crv' must be P-256, P-384 or P-521.")
		}
		d, aerr := decodeB64("key.d", k.D)
		if aerr != nil {
			return nil, aerr
		}
		size := (c.Params().BitSize + 7) / 8
		if len(d) > size {
			return nil, badParameter("Property 'key.d' is too long for curve %s.", k.Crv)
		}
		padded := make([]byte, size)
		copy(padded[size-len(d):], d)
		priv, err := ecdsa.ParseRawPrivateKey(c, padded)
		if err != nil {
			return nil, badParameter("Property 'key.d' is not a valid %s private key.", k.Crv)
		}
		return priv, nil
	case "oct-HSM":
		key, aerr := decodeB64("key.k", k.K)
		if aerr != nil {
			return nil, aerr
		}
		if !validOctSize(8 * len(key)) {
			return nil, badParameter("Property 'key.k' is a %d-bit key; oct-HSM keys have 128, 192 or 256 bits.", 8*len(key))
		}
		return key, nil
	case "oct":
		return nil, &apiError{status: http.StatusBadRequest, code: "BadParameter", inner: "KeyTypeNotSupported", msg: "Invalid kty value: oct"}
	case "":
		return nil, badParameter("Property 'key.kty' is required.")
	}
	return nil, badParameter("Key type %q cannot be imported into a vault; use RSA, RSA-HSM, EC, EC-HSM or oct-HSM.", k.Kty)
}

func (s *Service) getKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, kv, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.bundle(k, kv)}, nil
}

func (s *Service) updateKey(req *request) (result, *apiError) {
	var p updateParams
	if aerr := decodeJSON(req.body, &p); aerr != nil {
		return result{}, aerr
	}
	var ops []string
	if p.KeyOps != nil {
		var err error
		if ops, err = validOps(p.KeyOps); err != nil {
			return result{}, badParameter("Property 'key_ops' has an unknown operation: %s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, kv, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	applyAttributes(kv, p.Attributes)
	if ops != nil {
		kv.ops = ops
	}
	if p.Tags != nil {
		kv.tags = p.Tags
	}
	kv.updated = s.now()
	return result{body: req.bundle(k, kv)}, nil
}
