-- Schema version 1: sessions, users, tokens and the audit log.
--
-- Times are INTEGER unix nanoseconds in UTC, 0 for the zero time. Hashes are
-- 32-byte BLOBs. Scopes are their command-line string form ("view,tunnel:80,443").

CREATE TABLE sessions (
	id                 TEXT    NOT NULL PRIMARY KEY,
	agent              TEXT    NOT NULL,
	agent_name         TEXT    NOT NULL,
	team               TEXT    NOT NULL,
	customer           TEXT    NOT NULL,
	reason             TEXT    NOT NULL,
	requested          TEXT    NOT NULL,
	scopes             TEXT    NOT NULL,
	duration           INTEGER NOT NULL,
	state              TEXT    NOT NULL,
	end_reason         TEXT    NOT NULL,
	ended_by           TEXT    NOT NULL,
	created_at         INTEGER NOT NULL,
	consent_expires_at INTEGER NOT NULL,
	approved_at        INTEGER NOT NULL,
	expires_at         INTEGER NOT NULL,
	ended_at           INTEGER NOT NULL,
	last_activity      INTEGER NOT NULL,
	idle_timeout       INTEGER NOT NULL,
	verification_code  TEXT    NOT NULL,
	token_hash         BLOB    NOT NULL,
	client_hash        BLOB    NOT NULL,
	ext_by             INTEGER,          -- NULL: no extension pending
	ext_requested_by   TEXT,
	ext_requested_at   INTEGER,
	version            INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
CREATE INDEX sessions_created ON sessions (created_at, id);
CREATE INDEX sessions_agent ON sessions (agent, created_at);
CREATE INDEX sessions_team ON sessions (team, created_at);
CREATE INDEX sessions_state ON sessions (state, created_at);

CREATE TABLE users (
	name          TEXT    NOT NULL PRIMARY KEY,
	display_name  TEXT    NOT NULL,
	role          TEXT    NOT NULL,
	team          TEXT    NOT NULL,
	password_hash TEXT    NOT NULL,
	totp_secret   BLOB    NOT NULL,
	totp_last     INTEGER NOT NULL,
	enrolled      INTEGER NOT NULL,
	failures      INTEGER NOT NULL,
	last_failure  INTEGER NOT NULL,
	locked_until  INTEGER NOT NULL,
	disabled      INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	version       INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
	hash       BLOB    NOT NULL PRIMARY KEY,
	user       TEXT    NOT NULL,
	kind       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX tokens_user ON tokens (user, kind);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE audit_records (
	seq     INTEGER NOT NULL PRIMARY KEY,
	time    INTEGER NOT NULL,
	type    TEXT    NOT NULL,
	actor   TEXT    NOT NULL,
	role    TEXT    NOT NULL,
	session TEXT    NOT NULL,
	remote  TEXT    NOT NULL,
	detail  TEXT    NOT NULL, -- JSON object, '' when empty
	prev    TEXT    NOT NULL,
	hash    TEXT    NOT NULL,
	sig     TEXT    NOT NULL
) STRICT;
