-- Schema version 4: the helper each device-access session enrolled, so that
-- a gateway that restarts takes its tunnel back at the same address with
-- nothing asked of the customer (wghub.Hub.Restore). Keys are public:
-- wg_key is the helper's 32-byte Curve25519 key, host_key its SSH host key
-- in authorized_keys form; address is its tunnel address; created_at is
-- Unix nanoseconds. Rows of ended sessions are deleted at the next start.

CREATE TABLE helper_enrollments (
	session    TEXT    NOT NULL PRIMARY KEY,
	wg_key     BLOB    NOT NULL,
	host_key   TEXT    NOT NULL,
	address    TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
