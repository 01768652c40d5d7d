package server

import (
	"net/http"
	"time"
)

// Body and time limits of the routes.
const (
	kib = 1 << 10
	mib = 1 << 20

	dataBody   = 8 * mib  // a data call: up to ~6 MiB of payload in base64; larger payloads use the Go library's streams
	batchBody  = 32 * mib // a batch of data calls
	configBody = 64 * kib // key settings, which may hold a certificate chain
	smallBody  = 16 * kib // every other body

	fastTimeout   = 5 * time.Second  // health, reads of small records
	dataTimeout   = 10 * time.Second // a data call, which may wait for one key check
	adminTimeout  = 30 * time.Second // admin writes and batches
	vaultTimeout  = 60 * time.Second // routes that call the customer's vault several times (test, rotate, disable)
	exportTimeout = 5 * time.Minute  // audit export streams
)

// table lists every route the server serves. The OpenAPI document
// (docs/openapi.yaml) lists the same, which a test holds.
func (s *server) table() []route {
	get, post, put := http.MethodGet, http.MethodPost, http.MethodPut
	return []route{
		// Probes and metrics.
		{get, "/healthz", authNone, 0, fastTimeout, s.healthz},
		{get, "/readyz", authNone, 0, fastTimeout, s.readyz},
		{get, "/metrics", authNone, 0, fastTimeout, s.metrics},

		// Operators: tenants, tokens, the platform key, the audit log.
		{post, "/v1/tenants", authOperator, smallBody, adminTimeout, s.createTenant},
		{get, "/v1/tenants", authOperator, 0, adminTimeout, s.listTenants},
		{get, "/v1/tenants/{tenant}", authOperator, 0, fastTimeout, s.getTenant},
		{put, "/v1/tenants/{tenant}/policy", authOperator, smallBody, adminTimeout, s.setPolicy},
		{post, "/v1/tokens", authOperator, smallBody, adminTimeout, s.createToken},
		{get, "/v1/tokens", authOperator, 0, adminTimeout, s.listTokens},
		{get, "/v1/tokens/{id}", authOperator, 0, fastTimeout, s.getToken},
		{post, "/v1/tokens/{id}/revoke", authOperator, smallBody, adminTimeout, s.revokeToken},
		{get, "/v1/platform-key", authOperator, 0, vaultTimeout, s.platformKey},
		{get, "/v1/platform-key/inventory", authOperator, 0, vaultTimeout, s.platformInventory},
		{post, "/v1/platform-key/rekey", authOperator, smallBody, vaultTimeout, s.startPlatformRekey},
		{get, "/v1/platform-key/rekey", authOperator, 0, vaultTimeout, s.platformRekey},
		{get, "/v1/audit", authOperator, 0, adminTimeout, s.operatorAudit},
		{get, "/v1/audit/export", authOperator, 0, exportTimeout, s.operatorAuditExport},

		// Tenant admins: their customer-managed key and their audit log.
		{get, "/v1/tenants/{tenant}/key", authTenantAdmin, 0, fastTimeout, s.keyStatus},
		{put, "/v1/tenants/{tenant}/key", authTenantAdmin, configBody, adminTimeout, s.configure},
		{post, "/v1/tenants/{tenant}/key/test", authTenantAdmin, smallBody, vaultTimeout, s.test},
		{post, "/v1/tenants/{tenant}/key/proceed", authTenantAdmin, smallBody, adminTimeout, s.proceed},
		{put, "/v1/tenants/{tenant}/key/scopes", authTenantAdmin, smallBody, adminTimeout, s.setScopes},
		{post, "/v1/tenants/{tenant}/key/rotate", authTenantAdmin, configBody, vaultTimeout, s.rotate},
		{post, "/v1/tenants/{tenant}/key/rekey", authTenantAdmin, smallBody, vaultTimeout, s.rekey},
		{post, "/v1/tenants/{tenant}/key/disable", authTenantAdmin, smallBody, vaultTimeout, s.disable},
		{get, "/v1/tenants/{tenant}/key/inventory", authTenantAdmin, 0, adminTimeout, s.inventory},
		{get, "/v1/tenants/{tenant}/key/timeline", authTenantAdmin, 0, adminTimeout, s.timeline},
		{get, "/v1/tenants/{tenant}/key/identities", authTenantAdmin, 0, adminTimeout, s.identities},
		{get, "/v1/tenants/{tenant}/key/jobs/{job}", authTenantAdmin, 0, fastTimeout, s.job},
		{get, "/v1/tenants/{tenant}/audit", authTenantAdmin, 0, adminTimeout, s.tenantAudit},
		{get, "/v1/tenants/{tenant}/audit/export", authTenantAdmin, 0, exportTimeout, s.tenantAuditExport},

		// Services: data calls.
		{post, "/v1/tenants/{tenant}/encrypt", authService, dataBody, dataTimeout, s.dataRoute(opEncrypt)},
		{post, "/v1/tenants/{tenant}/decrypt", authService, dataBody, dataTimeout, s.dataRoute(opDecrypt)},
		{post, "/v1/tenants/{tenant}/reencrypt", authService, dataBody, dataTimeout, s.dataRoute(opReencrypt)},
		{post, "/v1/tenants/{tenant}/batch", authService, batchBody, adminTimeout, s.batch},
	}
}
