-- Initial schema. Times are Unix microseconds (0 means unset) so that both
-- dialects store and compare them identically.

CREATE TABLE secrets (
	path          TEXT    NOT NULL,
	version       INTEGER NOT NULL,
	ciphertext    BLOB    NOT NULL, -- AES-256-GCM nonce || sealed value under the data key
	wrapped_key   BLOB    NOT NULL, -- AES-256-GCM nonce || sealed data key under the master key
	master_key_id TEXT    NOT NULL,
	size          INTEGER NOT NULL,
	created       INTEGER NOT NULL,
	PRIMARY KEY (path, version)
);

CREATE TABLE policies (
	kind    TEXT    NOT NULL,
	name    TEXT    NOT NULL,
	version INTEGER NOT NULL,
	module  TEXT    NOT NULL,
	digest  TEXT    NOT NULL,
	created INTEGER NOT NULL,
	PRIMARY KEY (kind, name, version)
);

CREATE TABLE reference_values (
	name    TEXT    NOT NULL,
	value   TEXT    NOT NULL,
	expires INTEGER NOT NULL,
	added   INTEGER NOT NULL,
	PRIMARY KEY (name, value)
);

CREATE TABLE sessions (
	id             TEXT    NOT NULL PRIMARY KEY,
	nonce          TEXT    NOT NULL UNIQUE,
	tee            TEXT    NOT NULL,
	created        INTEGER NOT NULL,
	expires        INTEGER NOT NULL,
	state          TEXT    NOT NULL,
	token          TEXT    NOT NULL DEFAULT '',
	tee_public_key BLOB,
	claims_digest  TEXT    NOT NULL DEFAULT '',
	attested_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_expires ON sessions (expires);

CREATE TABLE nonces (
	value      TEXT    NOT NULL PRIMARY KEY,
	session_id TEXT    NOT NULL DEFAULT '',
	expires    INTEGER NOT NULL,
	used       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX nonces_expires ON nonces (expires);

CREATE TABLE audit_log (
	seq             INTEGER NOT NULL PRIMARY KEY,
	time            INTEGER NOT NULL,
	action          TEXT    NOT NULL,
	requester       TEXT    NOT NULL,
	tee             TEXT    NOT NULL,
	evidence_digest TEXT    NOT NULL,
	policy_digest   TEXT    NOT NULL,
	verdict         TEXT    NOT NULL,
	resource        TEXT    NOT NULL,
	reason          TEXT    NOT NULL,
	prev_hash       BLOB    NOT NULL,
	hash            BLOB    NOT NULL
);

-- The chain head is one row that every append reads and updates, so that
-- appends serialize on it.
CREATE TABLE audit_head (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE collateral (
	key          TEXT    NOT NULL PRIMARY KEY,
	data         BLOB    NOT NULL,
	content_type TEXT    NOT NULL,
	fetched_at   INTEGER NOT NULL,
	next_update  INTEGER NOT NULL
);
