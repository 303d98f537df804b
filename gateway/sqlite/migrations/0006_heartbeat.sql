-- Schema version 6: the heartbeat, the time a running gateway has reached,
-- stored every few seconds in this one row, updated in place (see
-- Store.SetHeartbeat). audit_seq is the newest audit record's seq when it
-- was written: a gateway.clock_reset record after it sets it aside.

CREATE TABLE heartbeat (
	id        INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	time      INTEGER NOT NULL, -- unix nanoseconds
	audit_seq INTEGER NOT NULL
) STRICT;
