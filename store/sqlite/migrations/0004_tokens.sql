-- 0004: bearer tokens of the HTTP API (package server/token).
--
-- Only the SHA-256 digest of a token's 256-bit secret is stored, never the
-- secret. Times: integer Unix nanoseconds in UTC; NULL is the zero time
-- (no expiry, not revoked).

CREATE TABLE tokens (
	id      TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
	kind    TEXT    NOT NULL CHECK (kind IN ('operator', 'tenant-admin', 'service')),
	hash    BLOB    NOT NULL CHECK (length(hash) = 32),
	name    TEXT    NOT NULL,
	created INTEGER,
	expires INTEGER,
	revoked INTEGER
) STRICT, WITHOUT ROWID;

-- The tenants a tenant-admin or service token acts for.
CREATE TABLE token_tenants (
	token  TEXT NOT NULL REFERENCES tokens (id),
	tenant TEXT NOT NULL REFERENCES tenants (id),
	PRIMARY KEY (token, tenant)
) STRICT, WITHOUT ROWID;
