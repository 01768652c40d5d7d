-- 0001: tenants, their tenant keys, scopes and data encryption keys.
--
-- Kinds: 1 platform-managed, 2 customer-managed. Policies: 1 grace, 2 strict.
-- Times: bigint Unix nanoseconds (timestamptz keeps only microseconds);
-- NULL is the zero time.Time.
-- Wrapped bytes: bytea; NULL is a nil slice, a zero-length value an empty one.
-- Ids and key ids compare bytewise (COLLATE "C"), whatever the database's
-- default collation, so lists page in the same order as in every backend.

CREATE TABLE tenants (
	id      text COLLATE "C" NOT NULL PRIMARY KEY,
	policy  smallint NOT NULL CHECK (policy IN (1, 2)),
	created bigint
);

CREATE TABLE tenant_keys (
	tenant          text COLLATE "C" NOT NULL REFERENCES tenants (id),
	kind            smallint NOT NULL CHECK (kind IN (1, 2)),
	epoch           bigint   NOT NULL CHECK (epoch BETWEEN 1 AND 4294967295),
	customer_key_id text COLLATE "C" NOT NULL,
	customer_alg    text     NOT NULL,
	customer_ct     bytea,
	platform_key_id text COLLATE "C" NOT NULL,
	platform_alg    text     NOT NULL,
	platform_ct     bytea,
	created         bigint,
	PRIMARY KEY (tenant, kind, epoch)
);

CREATE TABLE scopes (
	tenant text COLLATE "C" NOT NULL REFERENCES tenants (id),
	scope  text COLLATE "C" NOT NULL,
	kind   smallint NOT NULL CHECK (kind IN (1, 2)),
	PRIMARY KEY (tenant, scope)
);

-- A DEK names the tenant key that wraps it (tenant, kind, epoch); its scope
-- need not have been set with PutScope. There is no foreign key to
-- tenant_keys: its check costs a third of a rewrap (1000 trigger calls per
-- batch of 1000), so the store checks instead, in the statement that
-- inserts a DEK and in the transaction of a rewrap. Tenant keys are never
-- deleted, so a key found once stays found.
--
-- Kind, epoch and wrapped, the columns a rewrap changes, are in no index,
-- and pages are left half free, room for a new version of every row: a
-- rewrap is then a heap-only (HOT) update that writes no index entry, and
-- the next one reclaims the space of the last. Measured on batches of
-- 1000: fillfactor 100 makes 3% of rewraps HOT, 75 makes 69%, 50 makes
-- 99%, and 50 rewraps twice as fast as 100. DEKs are few (one per tenant,
-- scope, process and period), so the doubled size is cheap.
CREATE TABLE deks (
	id      bytea NOT NULL PRIMARY KEY CHECK (length(id) = 16),
	tenant  text COLLATE "C" NOT NULL,
	scope   text COLLATE "C" NOT NULL,
	kind    smallint NOT NULL CHECK (kind IN (1, 2)),
	epoch   bigint   NOT NULL CHECK (epoch BETWEEN 1 AND 4294967295),
	wrapped bytea,
	created bigint
) WITH (fillfactor = 50);

-- ListDEKs (the re-key work list) walks a tenant's DEKs in id order.
CREATE INDEX deks_by_tenant ON deks (tenant, id);
-- ListScopeDEKs (moving a scope).
CREATE INDEX deks_by_scope ON deks (tenant, scope, id);
