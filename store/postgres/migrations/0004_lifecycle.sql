-- 0004: the lifecycle of tenants' customer keys (package lifecycle).
--
-- Times: bigint Unix nanoseconds in UTC; NULL is the zero time.Time.
-- data columns hold JSON documents (as text) of the fields that no query
-- filters on; they never contain a secret (the client secret is wrapped
-- under the platform root key before it gets here).

-- One row per tenant that ever configured a customer key. version counts
-- writes; every update compares it (optimistic concurrency).
CREATE TABLE lifecycle_keys (
	tenant     text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES tenants (id),
	version    bigint NOT NULL CHECK (version >= 1),
	state      text   NOT NULL CHECK (state IN ('draft', 'scheduled', 'active', 'rotating', 'revoked', 'disabled')),
	enforce_at bigint,
	data       text   NOT NULL
);

-- Tick lists the tenants in given states.
CREATE INDEX lifecycle_keys_by_state ON lifecycle_keys (state, tenant);

-- Jobs: activation, rotation, re-key, scope moves, disable. seq orders
-- them (newest first in lists); cursor and progress live in data.
CREATE TABLE lifecycle_jobs (
	seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id     text COLLATE "C" NOT NULL UNIQUE,
	tenant text COLLATE "C" NOT NULL REFERENCES tenants (id),
	state  text NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
	data   text NOT NULL
);

CREATE INDEX lifecycle_jobs_by_tenant ON lifecycle_jobs (tenant, seq);
CREATE INDEX lifecycle_jobs_unfinished ON lifecycle_jobs (state, seq) WHERE state IN ('pending', 'running');

-- The revocation timeline: one row per revocation, outage or restoration
-- a replica saw.
CREATE TABLE lifecycle_health (
	seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant      text COLLATE "C" NOT NULL REFERENCES tenants (id),
	kind        text NOT NULL,
	reason      text NOT NULL,
	detected_at bigint,
	enforced_at bigint,
	replica     text NOT NULL
);

CREATE INDEX lifecycle_health_by_tenant ON lifecycle_health (tenant, seq);
