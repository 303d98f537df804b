-- Schema version 5: finds the newest gateway.clock_reset audit record at
-- start-up without reading the whole log. `supportgate admin clock reset`
-- writes one when the operator accepts the wall clock over stored records
-- dated ahead of it (a host whose clock once ran ahead); HighWater then
-- reads only the records from it on. The index holds those records alone.

CREATE INDEX audit_records_clock_reset ON audit_records (seq) WHERE type = 'gateway.clock_reset';
