-- 0006: the web console's sessions (store.SessionStore), so that any
-- replica serves any session and signing out ends it everywhere.
--
-- hash is the SHA-256 of the session's id (the cookie's 256-bit secret);
-- the id itself is never stored. data is sealed by the console under a key
-- derived from the id. Times: bigint Unix nanoseconds in UTC; NULL is the
-- zero time.

CREATE TABLE console_sessions (
	hash      bytea   NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
	kind      text    NOT NULL CHECK (kind IN ('operator', 'tenant-admin')),
	tenant    text    NOT NULL,
	token_id  text    NOT NULL,
	subject   text    NOT NULL,
	name      text    NOT NULL,
	created   bigint,
	expires   bigint  NOT NULL,
	last_seen bigint,
	data      bytea   NOT NULL
);

CREATE INDEX console_sessions_expires ON console_sessions (expires);
