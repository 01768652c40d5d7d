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
-- been set with PutScope.
CREATE TABLE deks (
	id      BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
	tenant  TEXT    NOT NULL,
	scope   TEXT    NOT NULL,
	kind    INTEGER NOT NULL CHECK (kind IN (1, 2)),
	epoch   INTEGER NOT NULL,
	wrapped BLOB,
	created INTEGER,
	FOREIGN KEY (tenant, kind, epoch) REFERENCES tenant_keys (tenant, kind, epoch)
) STRICT, WITHOUT ROWID;

-- ListDEKs (re-key work list) and the foreign key's child lookup.
CREATE INDEX deks_by_key ON deks (tenant, kind, epoch, id);
-- ListScopeDEKs (moving a scope).
CREATE INDEX deks_by_scope ON deks (tenant, scope, id);
