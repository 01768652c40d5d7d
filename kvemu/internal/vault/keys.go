package vault

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
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

// maxResults reads the maxresults query parameter (1–25, default 25).
func maxResults(q url.Values) (int, *apiError) {
	s := q.Get("maxresults")
	if s == "" {
		return 25, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 25 {
		return 0, badParameter("Invalid value for maxresults: %s. It must be between 1 and 25.", s)
	}
	return n, nil
}

// page answers one page of items, with a nextLink that carries the
// api-version and the offset of the next page.
func (req *request) page(items []jsonItem) (result, *apiError) {
	q := req.r.URL.Query()
	size, aerr := maxResults(q)
	if aerr != nil {
		return result{}, aerr
	}
	start := 0
	if t := q.Get("$skiptoken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return result{}, badParameter("Invalid $skiptoken: %s.", t)
		}
		start = min(n, len(items))
	}
	end := min(start+size, len(items))
	list := jsonList{Value: items[start:end]}
	if end < len(items) {
		next := url.Values{"api-version": {q.Get("api-version")}, "$skiptoken": {strconv.Itoa(end)}, "maxresults": {strconv.Itoa(size)}}
		link := req.base + req.r.URL.Path + "?" + next.Encode()
		list.NextLink = &link
	}
	return result{body: list}, nil
}

func sortedKeys(m map[string]*keyState) []*keyState {
	out := make([]*keyState, 0, len(m))
	for _, k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *keyState) int { return strings.Compare(strings.ToLower(a.name), strings.ToLower(b.name)) })
	return out
}

func (req *request) item(k *keyState, kv *keyVersion, kid string) jsonItem {
	it := jsonItem{Kid: kid, Attributes: req.vault.attributes(kv), Tags: kv.tags}
	if !k.deletedAt.IsZero() {
		it.RecoveryID = req.base + "/deletedkeys/" + k.name
		it.DeletedDate, it.ScheduledPurgeDate = unix(k.deletedAt), unix(k.purgeAt)
	}
	return it
}

func (s *Service) listKeys(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req.vault.purgeExpired(s.now())
	var items []jsonItem
	for _, k := range sortedKeys(req.vault.keys) {
		req.vault.autoRotate(k, s.now())
		items = append(items, req.item(k, k.latest(), req.base+"/keys/"+k.name))
	}
	return req.page(items)
}

func (s *Service) listKeyVersions(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	items := make([]jsonItem, 0, len(k.versions))
	for _, kv := range k.versions {
		items = append(items, req.item(k, kv, req.kid(k, kv)))
	}
	return req.page(items)
}

func (s *Service) deleteKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	req.vault.softDelete(k, s.now())
	return result{body: req.bundle(k, k.latest())}, nil
}

func (s *Service) deletedKey(req *request) (*keyState, *apiError) {
	req.vault.purgeExpired(s.now())
	k := req.vault.deleted[strings.ToLower(req.key)]
	if k == nil {
		return nil, deletedKeyNotFound(req.key)
	}
	return k, nil
}

func (s *Service) getDeletedKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, aerr := s.deletedKey(req)
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.bundle(k, k.latest())}, nil
}

func (s *Service) listDeletedKeys(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req.vault.purgeExpired(s.now())
	var items []jsonItem
	for _, k := range sortedKeys(req.vault.deleted) {
		items = append(items, req.item(k, k.latest(), req.base+"/keys/"+k.name))
	}
	return req.page(items)
}

func (s *Service) recoverDeletedKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req.vault.purgeExpired(s.now())
	k, aerr := req.vault.recover(req.key)
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.bundle(k, k.latest())}, nil
}

func (s *Service) purgeDeletedKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, aerr := s.deletedKey(req)
	if aerr != nil {
		return result{}, aerr
	}
	v := req.vault
	if v.cfg.PurgeProtection {
		return result{}, forbidden("", "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.\r\nVault: %s;location=%s", v.cfg.Name, v.cfg.location())
	}
	delete(v.deleted, strings.ToLower(k.name))
	return result{status: http.StatusNoContent}, nil
}

func (s *Service) rotateKey(req *request) (result, *apiError) {
	if aerr := checkKeyName(req.key); aerr != nil {
		return result{}, aerr
	}
	s.mu.Lock()
	k, _, aerr := s.lookup(req)
	var seed rotationSeed
	if aerr == nil {
		seed = k.seed()
	}
	s.mu.Unlock()
	if aerr != nil {
		return result{}, aerr
	}
	kv, err := seed.generate(s.now()) // outside the lock: an RSA-4096 key takes a while
	if err != nil {
		return result{}, &apiError{status: http.StatusInternalServerError, code: "InternalServerError", msg: "kvemu could not generate the new key version."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, aerr = req.vault.addVersion(req.key, kv, s.now())
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.bundle(k, kv)}, nil
}

// jsonPolicy is a rotation policy on the wire.
type jsonPolicy struct {
	ID              string                `json:"id,omitempty"`
	LifetimeActions []jsonLifetimeAction  `json:"lifetimeActions"`
	Attributes      *jsonPolicyAttributes `json:"attributes,omitempty"`
}

type jsonLifetimeAction struct {
	Trigger struct {
		TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
		TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
	} `json:"trigger"`
	Action struct {
		Type string `json:"type"`
	} `json:"action"`
}

type jsonPolicyAttributes struct {
	ExpiryTime string `json:"expiryTime,omitempty"`
	Created    *int64 `json:"created,omitempty"`
	Updated    *int64 `json:"updated,omitempty"`
}

func (req *request) policyJSON(k *keyState) jsonPolicy {
	p := k.policy
	if p == nil {
		p = &rotationPolicy{LifetimeActions: []lifetimeAction{{TimeBeforeExpiry: "P30D", Action: "Notify"}}}
	}
	out := jsonPolicy{ID: req.base + "/keys/" + k.name + "/rotationpolicy", LifetimeActions: []jsonLifetimeAction{},
		Attributes: &jsonPolicyAttributes{ExpiryTime: p.ExpiryTime, Created: unix(p.Created), Updated: unix(p.Updated)}}
	for _, a := range p.LifetimeActions {
		var ja jsonLifetimeAction
		ja.Trigger.TimeAfterCreate, ja.Trigger.TimeBeforeExpiry, ja.Action.Type = a.TimeAfterCreate, a.TimeBeforeExpiry, a.Action
		out.LifetimeActions = append(out.LifetimeActions, ja)
	}
	return out
}

func (s *Service) getRotationPolicy(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.policyJSON(k)}, nil
}

func (s *Service) updateRotationPolicy(req *request) (result, *apiError) {
	var in jsonPolicy
	if aerr := decodeJSON(req.body, &in); aerr != nil {
		return result{}, aerr
	}
	p := &rotationPolicy{}
	if in.Attributes != nil {
		p.ExpiryTime = in.Attributes.ExpiryTime
	}
	for _, a := range in.LifetimeActions {
		action := a.Action.Type
		if strings.EqualFold(action, "rotate") {
			action = "Rotate"
		} else if strings.EqualFold(action, "notify") {
			action = "Notify"
		}
		p.LifetimeActions = append(p.LifetimeActions, lifetimeAction{
			TimeAfterCreate: a.Trigger.TimeAfterCreate, TimeBeforeExpiry: a.Trigger.TimeBeforeExpiry, Action: action})
	}
	if aerr := p.validate(); aerr != nil {
		return result{}, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	now := s.now()
	p.Created, p.Updated = now, now
	if k.policy != nil {
		p.Created = k.policy.Created
	}
	k.policy = p
	return result{body: req.policyJSON(k)}, nil
}

// backupPrefix marks kvemu backup blobs; they are readable only by kvemu.
const backupPrefix = "kvemu-key-backup-v1:"

func (s *Service) backupKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	ks := keySnapshot{Name: k.name, Policy: k.policy}
	for _, kv := range k.versions {
		vs, err := kv.snapshot()
		if err != nil {
			return result{}, &apiError{status: http.StatusInternalServerError, code: "InternalServerError", msg: "kvemu could not encode the key backup."}
		}
		ks.Versions = append(ks.Versions, vs)
	}
	b, _ := json.Marshal(ks)
	return result{body: map[string]string{"value": b64(append([]byte(backupPrefix), b...))}}, nil
}

func (s *Service) restoreKey(req *request) (result, *apiError) {
	var p struct {
		Value *string `json:"value"`
	}
	if aerr := decodeJSON(req.body, &p); aerr != nil {
		return result{}, aerr
	}
	if p.Value == nil {
		return result{}, badParameter("Property 'value' is required.")
	}
	raw, aerr := decodeB64("value", *p.Value)
	if aerr != nil {
		return result{}, aerr
	}
	blob, ok := strings.CutPrefix(string(raw), backupPrefix)
	var ks keySnapshot
	if !ok || json.Unmarshal([]byte(blob), &ks) != nil || !keyNameRE.MatchString(ks.Name) || len(ks.Versions) == 0 {
		return result{}, badParameter("Backup blob contains invalid or corrupt version.")
	}
	k := &keyState{name: ks.Name, policy: ks.Policy}
	for _, vs := range ks.Versions {
		kv, err := vs.restore()
		if err != nil {
			return result{}, badParameter("Backup blob contains invalid or corrupt version.")
		}
		k.versions = append(k.versions, kv)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := req.vault
	v.purgeExpired(s.now())
	lname := strings.ToLower(k.name)
	if v.keys[lname] != nil || v.deleted[lname] != nil {
		return result{}, &apiError{status: http.StatusConflict, code: "Conflict", msg: fmt.Sprintf(
			"Key %s already exists (or is deleted but recoverable); restore needs a free name.", k.name)}
	}
	v.keys[lname] = k
	return result{body: req.bundle(k, k.latest())}, nil
}

func (s *Service) randomBytes(req *request) (result, *apiError) {
	var p struct {
		Count *int `json:"count"`
	}
	if aerr := decodeJSON(req.body, &p); aerr != nil {
		return result{}, aerr
	}
	if p.Count == nil || *p.Count < 1 || *p.Count > 128 {
		return result{}, badParameter("Property 'count' is required and must be between 1 and 128.")
	}
	b := make([]byte, *p.Count)
	_, _ = rand.Read(b)
	return result{body: map[string]string{"value": b64(b)}}, nil
}
