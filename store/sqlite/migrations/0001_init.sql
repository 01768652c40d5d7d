-- 0001: tenants, their tenant keys, scopes and data encryption keys.
--
-- Kinds: 1 platform-managed, 2 customer-managed. Policies: 1 grace, 2 strict.
-- Times: integer Unix nanoseconds in UTC; NULL is the zero time.Time.
-- Wrapped bytes: BLOB; NULL is a nil slice, a zero-length blob an empty one.

CREATE TABLE tenants (
	id      TEXT    NOT NULL PRIMARY KEY,
	policy  INTEGER NOT NULL CHECK (policy IN (1, 2)),
	created INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE tenant_keys (
	tenant          TEXT    NOT NULL REFERENCES tenants (id),
	kind            INTEGER NOT NULL CHECK (kind IN (1, 2)),
	epoch           INTEGER NOT NULL CHECK (epoch BETWEEN 1 AND 4294967295),
	customer_key_id TEXT    NOT NULL,
	customer_alg    TEXT    NOT NULL,
	customer_ct     BLOB,
	platform_key_id TEXT    NOT NULL,
	platform_alg    TEXT    NOT NULL,
	platform_ct     BLOB,
	created         INTEGER,
	PRIMARY KEY (tenant, kind, epoch)
) STRICT, WITHOUT ROWID;

CREATE TABLE scopes (
	tenant TEXT    NOT NULL REFERENCES tenants (id),
	scope  TEXT    NOT NULL,
	kind   INTEGER NOT NULL CHECK (kind IN (1, 2)),
	PRIMARY KEY (tenant, scope)
) STRICT, WITHOUT ROWID;

-- A DEK references the tenant key that wraps it; its scope need not have
-- been set with PutScope. Rows are clustered by tenant, then id: a tenant's
-- DEKs in id order (ListDEKs, the re-key work list) are one range, and a
-- rewrap, which changes kind, epoch and wrapped only, touches no index.
CREATE TABLE deks (
	tenant  TEXT    NOT NULL,
	id      BLOB    NOT NULL CHECK (length(id) = 16),
	scope   TEXT    NOT NULL,
	kind    INTEGER NOT NULL CHECK (kind IN (1, 2)),
	epoch   INTEGER NOT NULL,
	wrapped BLOB,
	created INTEGER,
	PRIMARY KEY (tenant, id),
	FOREIGN KEY (tenant, kind, epoch) REFERENCES tenant_keys (tenant, kind, epoch)
) STRICT, WITHOUT ROWID;

-- DEK ids are unique across tenants; DEK looks them up by id alone.
CREATE UNIQUE INDEX deks_by_id ON deks (id);
-- ListScopeDEKs (moving a scope).
CREATE INDEX deks_by_scope ON deks (tenant, scope, id);
