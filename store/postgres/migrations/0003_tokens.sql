-- 0003: bearer tokens of the HTTP API (package server/token).
--
-- Only the SHA-256 digest of a token's 256-bit secret is stored, never the
-- secret. Times: bigint Unix nanoseconds in UTC; NULL is the zero time
-- (no expiry, not revoked).

CREATE TABLE tokens (
	id      text COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) = 32),
	kind    text  NOT NULL CHECK (kind IN ('operator', 'tenant-admin', 'service')),
	hash    bytea NOT NULL CHECK (length(hash) = 32),
	name    text  NOT NULL,
	created bigint,
	expires bigint,
	revoked bigint
);

-- The tenants a tenant-admin or service token acts for.
CREATE TABLE token_tenants (
	token  text COLLATE "C" NOT NULL REFERENCES tokens (id),
	tenant text COLLATE "C" NOT NULL REFERENCES tenants (id),
	PRIMARY KEY (token, tenant)
);
