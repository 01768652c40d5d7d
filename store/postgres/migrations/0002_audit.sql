-- 0002: the audit log (package audit).
--
-- One row per event. Events form chains: one per tenant, and the platform's
-- (tenant ''). Within a chain, seq runs 1, 2, 3, … and every row carries
-- the hash of the row before it (prev_hash) and its own (hash), both
-- lowercase hex SHA-256; audit.Verify recomputes them (docs/audit.md).
-- Times: bigint Unix nanoseconds in UTC. before, after: JSON as text (not
-- jsonb, which would reorder keys and change what the hash covers) or
-- NULL. vault_*: NULL when the event records no vault call. details: a
-- JSON object of strings with sorted keys, or NULL when empty.
--
-- The triggers make the table append-only for byok itself; they are no
-- defence against the database's owner (who can drop them): the hash
-- chain is what detects that.

CREATE TABLE audit_events (
	tenant           text COLLATE "C" NOT NULL,
	seq              bigint NOT NULL CHECK (seq >= 1),
	prev_hash        text   NOT NULL,
	hash             text   NOT NULL,
	id               text COLLATE "C" NOT NULL,
	time             bigint NOT NULL,
	actor_kind       text   NOT NULL,
	actor_id         text   NOT NULL,
	action           text COLLATE "C" NOT NULL,
	target           text   NOT NULL,
	before           text,
	after            text,
	outcome          text   NOT NULL,
	reason           text   NOT NULL,
	vault_operation  text,
	vault_key_id     text,
	vault_purpose    text,
	vault_request_id text,
	details          text,
	PRIMARY KEY (tenant, seq)
);

CREATE UNIQUE INDEX audit_events_by_id ON audit_events (id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit events are append-only';
END $$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
	FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
