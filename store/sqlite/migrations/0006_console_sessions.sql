-- 0006: the web console's sessions (store.SessionStore), so that any
-- replica serves any session and signing out ends it everywhere.
--
-- hash is the SHA-256 of the session's id (the cookie's 256-bit secret);
-- the id itself is never stored. data is sealed by the console under a key
-- derived from the id. Times: integer Unix nanoseconds in UTC; NULL is the
-- zero time.

CREATE TABLE console_sessions (
	hash      BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
	kind      TEXT    NOT NULL CHECK (kind IN ('operator', 'tenant-admin')),
	tenant    TEXT    NOT NULL,
	token_id  TEXT    NOT NULL,
	subject   TEXT    NOT NULL,
	name      TEXT    NOT NULL,
	created   INTEGER,
	expires   INTEGER NOT NULL,
	last_seen INTEGER,
	data      BLOB    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX console_sessions_expires ON console_sessions (expires);
