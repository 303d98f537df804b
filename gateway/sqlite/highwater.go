package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"supportgate/session"
)

var _ session.HighWaterStore = (*Store)(nil)

// highWaterAudit is how many of the newest audit records HighWater looks
// at: their times may be out of order (written by a clock that was set
// back), and the log can be too long to read whole at every start.
const highWaterAudit = 1000

// highWaterSQL is the newest time among the newest audit records, the
// sessions' creation times (indexed), the open sessions' other times, the
// tokens' and the heartbeat. Every change the gateway stores is audited in
// the same transaction, so the audit records and the heartbeat alone would
// do for a gateway's database; the sessions and tokens cover a store used
// without them.
const highWaterSQL = `SELECT MAX(t) FROM (
	SELECT MAX(time) AS t FROM (SELECT time FROM audit_records ORDER BY seq DESC LIMIT ?)
	UNION ALL SELECT MAX(created_at) FROM sessions
	UNION ALL SELECT MAX(MAX(approved_at, last_activity, COALESCE(ext_requested_at, 0), ended_at)) FROM sessions WHERE state <> ?
	UNION ALL SELECT MAX(created_at) FROM tokens
	UNION ALL SELECT time FROM heartbeat
)`

// ClockResetEvent is the audit record's type that accepts the wall clock
// over the stored records before it (see HighWater).
const ClockResetEvent = "gateway.clock_reset"

// highWaterSinceResetSQL is the newest time among the newest audit records
// from the last clock reset on (that record included) and the heartbeat
// if it was stored after that record. The records before it, the
// sessions' and tokens' times and an older heartbeat were dated by the
// clock the operator set aside.
const highWaterSinceResetSQL = `SELECT MAX(t) FROM (
	SELECT MAX(time) AS t FROM (SELECT time FROM audit_records WHERE seq >= ?1 ORDER BY seq DESC LIMIT ?2)
	UNION ALL SELECT time FROM heartbeat WHERE audit_seq >= ?1
)`

// HighWater implements session.HighWaterStore: the newest time the store
// holds, the heartbeat included, the zero time if it holds none. After a
// clock reset (an audit record of type ClockResetEvent, which the operator
// writes with `admin clock reset` to accept the wall clock over records
// dated ahead of it) only the audit records from the last reset on count,
// and the heartbeat only if it was stored after the reset: the reset sets
// aside the heartbeat before it in the same write, so that no crash
// between the two can undo it.
func (s *Store) HighWater(ctx context.Context) (time.Time, error) {
	var reset sql.NullInt64
	if err := s.reader.QueryRowContext(ctx, `SELECT MAX(seq) FROM audit_records WHERE type = ?`, ClockResetEvent).Scan(&reset); err != nil {
		return time.Time{}, fmt.Errorf("sqlite: last clock reset: %w", closedErr(err))
	}
	var n sql.NullInt64
	var err error
	if reset.Valid {
		err = s.reader.QueryRowContext(ctx, highWaterSinceResetSQL, reset.Int64, highWaterAudit).Scan(&n)
	} else {
		err = s.reader.QueryRowContext(ctx, highWaterSQL, highWaterAudit, string(session.Ended)).Scan(&n)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: newest stored time: %w", closedErr(err))
	}
	if !n.Valid {
		return time.Time{}, nil
	}
	return fromNanos(n.Int64), nil
}

// heartbeatSQL replaces the heartbeat row, noting the newest audit
// record's seq (see highWaterSinceResetSQL); a zero time deletes it.
const (
	heartbeatSQL = `INSERT INTO heartbeat (id, time, audit_seq)
	VALUES (1, ?, (SELECT COALESCE(MAX(seq), 0) FROM audit_records))
	ON CONFLICT (id) DO UPDATE SET time = excluded.time, audit_seq = excluded.audit_seq`
	clearHeartbeatSQL = `DELETE FROM heartbeat`
)

// SetHeartbeat implements session.HighWaterStore: it stores t as the
// heartbeat in its one row, updated in place (the zero time deletes it).
func (s *Store) SetHeartbeat(ctx context.Context, t time.Time) error {
	var enc encoder
	n := enc.time("heartbeat", t)
	if enc.err != nil {
		return fmt.Errorf("sqlite: storing the heartbeat: %w", enc.err)
	}
	err := s.write(ctx, func(tx *wtx) error {
		var err error
		if n == 0 {
			_, err = tx.execSQL(clearHeartbeatSQL)
		} else {
			_, err = tx.execSQL(heartbeatSQL, n)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: storing the heartbeat: %w", closedErr(err))
	}
	return nil
}
