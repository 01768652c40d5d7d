-- 0002: the audit log (package audit).
--
-- One row per event. Events form chains: one per tenant, and the platform's
-- (tenant ''). Within a chain, seq runs 1, 2, 3, … and every row carries
-- the hash of the row before it (prev_hash) and its own (hash), both
-- lowercase hex SHA-256; audit.Verify recomputes them (docs/audit.md).
-- Times: integer Unix nanoseconds in UTC. before, after: compact JSON text
-- or NULL. vault_*: NULL when the event records no vault call. details: a
-- JSON object of strings with sorted keys, or NULL when empty.
--
-- The triggers make the table append-only for byok itself; they are no
-- defence against someone who can write the file (they can drop them):
-- the hash chain is what detects that.

CREATE TABLE audit_events (
	tenant           TEXT    NOT NULL,
	seq              INTEGER NOT NULL CHECK (seq >= 1),
	prev_hash        TEXT    NOT NULL,
	hash             TEXT    NOT NULL,
	id               TEXT    NOT NULL,
	time             INTEGER NOT NULL,
	actor_kind       TEXT    NOT NULL,
	actor_id         TEXT    NOT NULL,
	action           TEXT    NOT NULL,
	target           TEXT    NOT NULL,
	before           TEXT,
	after            TEXT,
	outcome          TEXT    NOT NULL,
	reason           TEXT    NOT NULL,
	vault_operation  TEXT,
	vault_key_id     TEXT,
	vault_purpose    TEXT,
	vault_request_id TEXT,
	details          TEXT,
	PRIMARY KEY (tenant, seq)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX audit_events_by_id ON audit_events (id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
	SELECT RAISE(ABORT, 'audit events are append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
	SELECT RAISE(ABORT, 'audit events are append-only');
END;
