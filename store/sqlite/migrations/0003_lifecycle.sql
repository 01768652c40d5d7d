-- 0003: the lifecycle of tenants' customer keys (package lifecycle).
--
-- Times: integer Unix nanoseconds in UTC; NULL is the zero time.Time.
-- data columns hold JSON documents of the fields that no query filters on;
-- they never contain a secret (the client secret is wrapped under the
-- platform root key before it gets here).

-- One row per tenant that ever configured a customer key. version counts
-- writes; every update compares it (optimistic concurrency).
CREATE TABLE lifecycle_keys (
	tenant     TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id),
	version    INTEGER NOT NULL CHECK (version >= 1),
	state      TEXT    NOT NULL CHECK (state IN ('draft', 'scheduled', 'active', 'rotating', 'revoked', 'disabled')),
	enforce_at INTEGER,
	data       TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

-- Tick lists the tenants in given states.
CREATE INDEX lifecycle_keys_by_state ON lifecycle_keys (state, tenant);

-- Jobs: activation, rotation, re-key, scope moves, disable. seq orders
-- them (newest first in lists); cursor and progress live in data.
CREATE TABLE lifecycle_jobs (
	seq     INTEGER NOT NULL PRIMARY KEY,
	id      TEXT    NOT NULL UNIQUE,
	tenant  TEXT    NOT NULL REFERENCES tenants (id),
	state   TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
	data    TEXT    NOT NULL
) STRICT;

CREATE INDEX lifecycle_jobs_by_tenant ON lifecycle_jobs (tenant, seq);
CREATE INDEX lifecycle_jobs_unfinished ON lifecycle_jobs (state, seq) WHERE state IN ('pending', 'running');

-- The revocation timeline: one row per revocation, outage or restoration
-- a replica saw.
CREATE TABLE lifecycle_health (
	seq         INTEGER NOT NULL PRIMARY KEY,
	tenant      TEXT    NOT NULL REFERENCES tenants (id),
	kind        TEXT    NOT NULL,
	reason      TEXT    NOT NULL,
	detected_at INTEGER,
	enforced_at INTEGER,
	replica     TEXT    NOT NULL
) STRICT;

CREATE INDEX lifecycle_health_by_tenant ON lifecycle_health (tenant, seq);
