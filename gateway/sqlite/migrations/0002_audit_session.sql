-- Schema version 2: find the audit records of one session without a scan
-- of the whole log (the evidence slice of a recording). Most records carry
-- no session, so only those that do are indexed.

CREATE INDEX audit_records_session ON audit_records (session, seq) WHERE session <> '';
