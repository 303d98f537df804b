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
// sessions' creation times (indexed), the open sessions' other times and
// the tokens'. Every change the gateway stores is audited in the same
// transaction, so the audit records alone would do for a gateway's
// database; the sessions and tokens cover a store used without them.
const highWaterSQL = `SELECT MAX(t) FROM (
	SELECT MAX(time) AS t FROM (SELECT time FROM audit_records ORDER BY seq DESC LIMIT ?)
	UNION ALL SELECT MAX(created_at) FROM sessions
	UNION ALL SELECT MAX(MAX(approved_at, last_activity, COALESCE(ext_requested_at, 0), ended_at)) FROM sessions WHERE state <> ?
	UNION ALL SELECT MAX(created_at) FROM tokens
)`

// HighWater implements session.HighWaterStore: the newest time the store
// holds, the zero time if it holds none.
func (s *Store) HighWater(ctx context.Context) (time.Time, error) {
	var n sql.NullInt64
	if err := s.reader.QueryRowContext(ctx, highWaterSQL, highWaterAudit, string(session.Ended)).Scan(&n); err != nil {
		return time.Time{}, fmt.Errorf("sqlite: newest stored time: %w", closedErr(err))
	}
	if !n.Valid {
		return time.Time{}, nil
	}
	return fromNanos(n.Int64), nil
}
