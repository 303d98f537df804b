-- Schema version 3: a second client of a consent link, the customer's
-- supportgate-assist, bound through a one-time handoff code from the first
-- (session.Broker.Handoff). Hashes are 32 bytes, or zeros for none, like
-- client_hash; handoff_expires_at is Unix nanoseconds, 0 for none.

ALTER TABLE sessions ADD COLUMN helper_hash BLOB NOT NULL DEFAULT x'0000000000000000000000000000000000000000000000000000000000000000';
ALTER TABLE sessions ADD COLUMN handoff_hash BLOB NOT NULL DEFAULT x'0000000000000000000000000000000000000000000000000000000000000000';
ALTER TABLE sessions ADD COLUMN handoff_expires_at INTEGER NOT NULL DEFAULT 0;
