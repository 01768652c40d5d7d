package vault

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// APIVersions are the api-version values a vault accepts.
var APIVersions = []string{"7.4", "7.5", "7.6", "2025-07-01"}

// maxBody bounds request bodies; the largest legitimate one (an RSA-4096
// import) is a few KiB.
const maxBody = 64 << 10

// hostKind describes one DNS suffix a vault is reached under.
type hostKind struct {
	suffix   string
	resource string // challenge resource and expected token audience
	hsm      bool
	private  bool // a private-link name
}

var hostKinds = []hostKind{
	{suffix: "vault.azure.net", resource: "https://vault.azure.net"},
	{suffix: "vault.azure.cn", resource: "https://vault.azure.cn"},
	{suffix: "vault.usgovcloudapi.net", resource: "https://vault.usgovcloudapi.net"},
	{suffix: "privatelink.vaultcore.azure.net", resource: "https://vaultcore.azure.net", private: true},
	{suffix: "managedhsm.azure.net", resource: "https://managedhsm.azure.net", hsm: true},
	{suffix: "privatelink.managedhsm.azure.net", resource: "https://managedhsm.azure.net", hsm: true, private: true},
}

// parseHost splits a request host (port allowed) into a vault name and the
// kind of name it was reached by.
func parseHost(host string) (string, hostKind, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, k := range hostKinds {
		name, ok := strings.CutSuffix(host, "."+k.suffix)
		if ok && name != "" && !strings.Contains(name, ".") {
			return name, k, true
		}
	}
	return "", hostKind{}, false
}

// HasVault reports whether host (as in a request's Host header, port
// allowed) names a vault of this Service by a name of the vault's kind.
func (s *Service) HasVault(host string) bool {
	name, kind, ok := parseHost(host)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vaults[name]
	return v != nil && v.cfg.ManagedHSM == kind.hsm
}

// request is one data-plane request on its way through ServeHTTP.
type request struct {
	w       http.ResponseWriter
	r       *http.Request
	base    string // https://{request host}
	vault   *vaultState
	claims  Claims
	op      Op
	key     string // key name from the path, "" if none
	version string // key version from the path, "" if none
	body    []byte
}

// result is an operation's successful answer.
type result struct {
	status int // 0 means 200
	body   any // nil with 204
}

// ServeHTTP serves the Key Vault data plane; r.Host (without port) selects the vault.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, key, version := route(r.Method, r.URL.Path)
	name, kind, ok := parseHost(r.Host)
	s.mu.Lock()
	v := s.vaults[name]
	if v != nil && v.cfg.ManagedHSM != kind.hsm {
		v = nil
	}
	var offline bool
	var delay time.Duration
	if v != nil {
		offline = v.offline
		delay = v.latency + s.jitter(v.jitter)
	}
	s.mu.Unlock()
	if !ok || v == nil {
		// Not counted: the counters hold only vaults that exist.
		(&apiError{status: http.StatusNotFound, code: "VaultNotFound", msg: fmt.Sprintf(
			"kvemu has no vault at %q (Azure would not resolve this name). Create the vault first; Managed HSMs are served at {name}.managedhsm.azure.net and vaults at {name}.vault.azure.net.", clip(r.Host))}).write(w)
		return
	}
	vname := v.cfg.Name
	if offline {
		s.count(vname, op, "", 0)
		drop(w)
		return
	}
	if delay > 0 {
		s.sleep(r.Context(), delay)
	}
	req := &request{w: w, r: r, base: "https://" + r.Host, vault: v, op: op, key: key, version: version}
	res, aerr, reset := s.serve(req, kind)
	switch {
	case reset:
		s.count(vname, op, req.claims.ObjectID, 0)
		drop(w)
	case aerr != nil:
		s.count(vname, op, req.claims.ObjectID, aerr.status)
		aerr.write(w)
	case res.body == nil:
		s.count(vname, op, req.claims.ObjectID, http.StatusNoContent)
		w.WriteHeader(http.StatusNoContent)
	default:
		status := res.status
		if status == 0 {
			status = http.StatusOK
		}
		s.count(vname, op, req.claims.ObjectID, status)
		writeJSON(w, status, res.body)
	}
}

// serve runs the checks every request passes, in Key Vault's order, then the
// operation. reset asks for the connection to be dropped.
func (s *Service) serve(req *request, kind hostKind) (res result, aerr *apiError, reset bool) {
	v := req.vault
	c, aerr := s.authenticate(req.r, v, kind)
	if aerr != nil {
		return result{}, aerr, false
	}
	req.claims = c
	if aerr := checkAPIVersion(req.r); aerr != nil {
		return result{}, aerr, false
	}
	s.mu.Lock()
	if !v.cfg.Network.allows(remoteAddr(req.r), kind.private) {
		s.mu.Unlock()
		return result{}, forbidden("ForbiddenByFirewall",
			"Client address is not authorized and caller is not a trusted service.\r\nClient address: %s\r\nCaller: appid=%s;oid=%s;iss=%s\r\nVault: %s;location=%s",
			remoteAddr(req.r), c.AppID, c.ObjectID, c.Issuer, v.cfg.Name, v.cfg.location()), false
	}
	if f := v.nextFault(req.op); f != nil {
		s.mu.Unlock()
		if f.Reset {
			return result{}, nil, true
		}
		return result{}, injected(f.Status), false
	}
	var cur *keyVersion
	if k := v.keys[strings.ToLower(req.key)]; k != nil {
		cur = k.latest()
	}
	if !v.admit(req.op, cur, s.now()) {
		s.mu.Unlock()
		return result{}, throttled(v.throttle.RetryAfter), false
	}
	if req.op == OpUnknown {
		s.mu.Unlock()
		return result{}, &apiError{status: http.StatusNotFound, code: "NotFound", msg: fmt.Sprintf(
			"%s %s is not a Key Vault keys operation that kvemu serves.", clip(req.r.Method), clip(req.r.URL.Path))}, false
	}
	aerr = v.authorize(c, req.op, req.key)
	s.mu.Unlock()
	if aerr != nil {
		return result{}, aerr, false
	}
	if aerr := req.readBody(); aerr != nil {
		return result{}, aerr, false
	}
	res, aerr = handlers[req.op](s, req)
	return res, aerr, false
}

func (req *request) readBody() *apiError {
	if req.r.Body == nil {
		return nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(req.w, req.r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return badParameter("The request body is larger than %d bytes.", maxBody)
	}
	if err != nil {
		return badParameter("The request body could not be read.")
	}
	req.body = b
	return nil
}

func checkAPIVersion(r *http.Request) *apiError {
	got := r.URL.Query().Get("api-version")
	if got == "" {
		return badParameter("The api-version query parameter (?api-version) is required for all requests.")
	}
	if !slices.Contains(APIVersions, got) {
		return badParameter("The specified version (%s) is not recognized. Consider using the latest supported version (%s).", got, APIVersions[len(APIVersions)-1])
	}
	return nil
}

// authenticate checks the bearer token: present, valid, for this vault's
// resource and tenant. Every failure is a 401 carrying the challenge.
func (s *Service) authenticate(r *http.Request, v *vaultState, kind hostKind) (Claims, *apiError) {
	tenant := v.cfg.TenantID
	challenge := fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, s.opts.LoginURL, tenant, kind.resource)
	fail := func(format string, args ...any) (Claims, *apiError) {
		return Claims{}, &apiError{status: http.StatusUnauthorized, code: "Unauthorized", challenge: challenge, msg: fmt.Sprintf(format, args...)}
	}
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	raw = strings.TrimSpace(raw)
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return fail("AKV10000: Request is missing a Bearer or PoP token.")
	}
	if s.opts.Verifier == nil {
		return fail("AKV10013: Token validation failed: kvemu has no token verifier configured.")
	}
	c, err := s.opts.Verifier.VerifyAccessToken(raw)
	if err != nil {
		return fail("AKV10013: Token validation failed: %v", err)
	}
	now := s.now()
	if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		return fail("[TokenExpired] Error validating token: 'S2S12086'.")
	}
	if !c.NotBefore.IsZero() && now.Before(c.NotBefore) {
		return fail("[TokenNotYetValid] Error validating token: 'S2S12085'.")
	}
	if !audienceOK(c.Audience, kind) {
		return fail("AKV10022: Invalid audience. Expected %s, found: %s.", kind.resource, c.Audience)
	}
	issuers := []string{"https://sts.windows.net/" + tenant + "/", s.opts.LoginURL + "/" + tenant + "/v2.0"}
	if !strings.EqualFold(c.TenantID, tenant) || !slices.ContainsFunc(issuers, func(i string) bool { return strings.EqualFold(i, c.Issuer) }) {
		return fail("AKV10032: Invalid issuer. Expected one of %s, found %s.", strings.Join(issuers, ", "), c.Issuer)
	}
	return c, nil
}

// audienceOK accepts the vault's resource (with or without a trailing
// slash); a private-link name of a vault also accepts vault.azure.net, the
// audience every vault accepts.
func audienceOK(aud string, kind hostKind) bool {
	aud = strings.TrimSuffix(strings.ToLower(aud), "/")
	if aud == kind.resource {
		return true
	}
	return kind.private && !kind.hsm && aud == "https://vault.azure.net"
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// drop ends the request without an answer: an HTTP/1 connection is
// hijacked and reset, an HTTP/2 stream aborted.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // RST instead of FIN, like a cut network path
	}
	_ = conn.Close()
}

// route maps a method and path to an operation and the key name and version
// it names. Path words are matched case-insensitively and a trailing slash
// is ignored.
func route(method, path string) (op Op, key, version string) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1]
	}
	word := func(i int) string { return strings.ToLower(segs[i]) }
	is := func(m string) bool { return method == m }
	switch {
	case len(segs) == 0 || segs[0] == "":
		return OpUnknown, "", ""
	case word(0) == "rng" && len(segs) == 1 && is(http.MethodPost):
		return OpGetRandomBytes, "", ""
	case word(0) == "deletedkeys":
		switch {
		case len(segs) == 1 && is(http.MethodGet):
			return OpListDeletedKeys, "", ""
		case len(segs) == 2 && is(http.MethodGet):
			return OpGetDeletedKey, segs[1], ""
		case len(segs) == 2 && is(http.MethodDelete):
			return OpPurgeDeletedKey, segs[1], ""
		case len(segs) == 3 && word(2) == "recover" && is(http.MethodPost):
			return OpRecoverDeletedKey, segs[1], ""
		}
		return OpUnknown, "", ""
	case word(0) != "keys":
		return OpUnknown, "", ""
	}
	switch len(segs) {
	case 1:
		if is(http.MethodGet) {
			return OpListKeys, "", ""
		}
	case 2:
		switch {
		case word(1) == "restore" && is(http.MethodPost):
			return OpRestoreKey, "", ""
		case is(http.MethodGet):
			return OpGetKey, segs[1], ""
		case is(http.MethodPatch):
			return OpUpdateKey, segs[1], ""
		case is(http.MethodPut):
			return OpImportKey, segs[1], ""
		case is(http.MethodDelete):
			return OpDeleteKey, segs[1], ""
		}
	case 3:
		n := segs[1]
		switch w := word(2); {
		case w == "create" && is(http.MethodPost):
			return OpCreateKey, n, ""
		case w == "versions" && is(http.MethodGet):
			return OpListKeyVersions, n, ""
		case w == "rotate" && is(http.MethodPost):
			return OpRotateKey, n, ""
		case w == "rotationpolicy" && is(http.MethodGet):
			return OpGetKeyRotationPolicy, n, ""
		case w == "rotationpolicy" && is(http.MethodPut):
			return OpUpdateKeyRotationPolicy, n, ""
		case w == "backup" && is(http.MethodPost):
			return OpBackupKey, n, ""
		case cryptoOps[w] != "" && is(http.MethodPost):
			return cryptoOps[w], n, ""
		case is(http.MethodGet):
			return OpGetKey, n, segs[2]
		case is(http.MethodPatch):
			return OpUpdateKey, n, segs[2]
		}
	case 4:
		if op := cryptoOps[word(3)]; op != "" && is(http.MethodPost) {
			return op, segs[1], segs[2]
		}
	}
	return OpUnknown, "", ""
}

var cryptoOps = map[string]Op{
	"encrypt": OpEncrypt, "decrypt": OpDecrypt, "wrapkey": OpWrapKey,
	"unwrapkey": OpUnwrapKey, "sign": OpSign, "verify": OpVerify,
}
