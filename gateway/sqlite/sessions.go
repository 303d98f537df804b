package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"supportgate/gateway/audit"
	"supportgate/session"
)

const sessionCols = `id, agent, agent_name, team, customer, reason, requested, scopes, duration,
	state, end_reason, ended_by, created_at, consent_expires_at, approved_at, expires_at,
	ended_at, last_activity, idle_timeout, verification_code, token_hash, client_hash,
	ext_by, ext_requested_by, ext_requested_at, version, helper_hash, handoff_hash, handoff_expires_at`

const insertSessionSQL = `INSERT INTO sessions (` + sessionCols + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// updateSessionFastSQL leaves the columns that never change after creation
// (agent, team, created_at, token_hash) alone and instead requires them to
// match: SQLite rewrites the entries of every index on a column that
// appears in SET, changed or not, and those indexes are most of the cost
// of an update. A session whose identity columns did change falls back to
// updateSessionSQL.
const updateSessionFastSQL = `UPDATE sessions SET agent_name = ?, customer = ?, reason = ?,
	requested = ?, scopes = ?, duration = ?, state = ?, end_reason = ?, ended_by = ?,
	consent_expires_at = ?, approved_at = ?, expires_at = ?, ended_at = ?, last_activity = ?,
	idle_timeout = ?, verification_code = ?, client_hash = ?,
	ext_by = ?, ext_requested_by = ?, ext_requested_at = ?, version = ?,
	helper_hash = ?, handoff_hash = ?, handoff_expires_at = ?
	WHERE id = ? AND version = ? AND agent = ? AND team = ? AND created_at = ? AND token_hash = ?`

const updateSessionSQL = `UPDATE sessions SET agent = ?, agent_name = ?, team = ?, customer = ?,
	reason = ?, requested = ?, scopes = ?, duration = ?, state = ?, end_reason = ?, ended_by = ?,
	created_at = ?, consent_expires_at = ?, approved_at = ?, expires_at = ?, ended_at = ?,
	last_activity = ?, idle_timeout = ?, verification_code = ?, token_hash = ?, client_hash = ?,
	ext_by = ?, ext_requested_by = ?, ext_requested_at = ?, version = ?,
	helper_hash = ?, handoff_hash = ?, handoff_expires_at = ?
	WHERE id = ? AND version = ?`

// The columns of sessionCols, by position.
const (
	colID = iota
	colAgent
	colAgentName
	colTeam
	colCustomer
	colReason
	colRequested
	colScopes
	colDuration
	colState
	colEndReason
	colEndedBy
	colCreatedAt
	colConsentExpiresAt
	colApprovedAt
	colExpiresAt
	colEndedAt
	colLastActivity
	colIdleTimeout
	colVerificationCode
	colTokenHash
	colClientHash
	colExtBy
	colExtRequestedBy
	colExtRequestedAt
	colVersion
	colHelperHash
	colHandoffHash
	colHandoffExpiresAt
	numSessionCols
)

// sessionColNames are the names of sessionCols, by position.
var sessionColNames = func() []string {
	names := strings.Split(sessionCols, ",")
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
	}
	if len(names) != numSessionCols {
		panic("sqlite: sessionCols and the col constants disagree")
	}
	return names
}()

// sessionArgs returns the values of sessionCols for s.
func sessionArgs(s *session.Session) ([]any, error) {
	var e encoder
	args := make([]any, numSessionCols)
	for col := range args {
		args[col] = sessionArg(&e, s, col)
	}
	return args, e.err
}

// sessionArg returns the value of column col for s.
func sessionArg(e *encoder, s *session.Session, col int) any {
	switch col {
	case colID:
		return s.ID
	case colAgent:
		return s.Agent
	case colAgentName:
		return s.AgentName
	case colTeam:
		return s.Team
	case colCustomer:
		return s.Customer
	case colReason:
		return s.Reason
	case colRequested:
		return e.scopes("requested scopes", s.Requested)
	case colScopes:
		return e.scopes("scopes", s.Scopes)
	case colDuration:
		return int64(s.Duration)
	case colState:
		return string(s.State)
	case colEndReason:
		return string(s.EndReason)
	case colEndedBy:
		return s.EndedBy
	case colCreatedAt:
		return e.time("created_at", s.CreatedAt)
	case colConsentExpiresAt:
		return e.time("consent_expires_at", s.ConsentExpiresAt)
	case colApprovedAt:
		return e.time("approved_at", s.ApprovedAt)
	case colExpiresAt:
		return e.time("expires_at", s.ExpiresAt)
	case colEndedAt:
		return e.time("ended_at", s.EndedAt)
	case colLastActivity:
		return e.time("last_activity", s.LastActivity)
	case colIdleTimeout:
		return int64(s.IdleTimeout)
	case colVerificationCode:
		return s.VerificationCode
	case colTokenHash:
		h := s.TokenHash
		return h[:]
	case colClientHash:
		h := s.ClientHash
		return h[:]
	case colExtBy: // NULL unless an extension is pending, like the two below
		if x := s.Extension; x != nil {
			return int64(x.By)
		}
	case colExtRequestedBy:
		if x := s.Extension; x != nil {
			return x.RequestedBy
		}
	case colExtRequestedAt:
		if x := s.Extension; x != nil {
			return e.time("extension requested_at", x.RequestedAt)
		}
	case colVersion:
		return s.Version
	case colHelperHash:
		h := s.HelperHash
		return h[:]
	case colHandoffHash:
		h := s.HandoffHash
		return h[:]
	case colHandoffExpiresAt:
		return e.time("handoff_expires_at", s.HandoffExpiresAt)
	}
	return nil
}

// identityCols never change after a session is created; an update that
// changes one takes the full path (updateSessionSQL).
const identityCols = 1<<colID | 1<<colAgent | 1<<colTeam | 1<<colCreatedAt | 1<<colTokenHash

// alwaysCols are written by every narrow update: the version, and the
// last activity, which the Broker updates in memory between stored
// changes (session.Change.Before carries the value in memory, not the
// stored one).
const alwaysCols = 1<<colLastActivity | 1<<colVersion

// changedCols returns the columns in which after differs from before.
func changedCols(before, after *session.Session) uint32 {
	var m uint32
	set := func(col int, changed bool) {
		if changed {
			m |= 1 << col
		}
	}
	b, a := before, after
	set(colID, b.ID != a.ID)
	set(colAgent, b.Agent != a.Agent)
	set(colAgentName, b.AgentName != a.AgentName)
	set(colTeam, b.Team != a.Team)
	set(colCustomer, b.Customer != a.Customer)
	set(colReason, b.Reason != a.Reason)
	set(colRequested, !sameScopes(b.Requested, a.Requested))
	set(colScopes, !sameScopes(b.Scopes, a.Scopes))
	set(colDuration, b.Duration != a.Duration)
	set(colState, b.State != a.State)
	set(colEndReason, b.EndReason != a.EndReason)
	set(colEndedBy, b.EndedBy != a.EndedBy)
	set(colCreatedAt, !b.CreatedAt.Equal(a.CreatedAt))
	set(colConsentExpiresAt, !b.ConsentExpiresAt.Equal(a.ConsentExpiresAt))
	set(colApprovedAt, !b.ApprovedAt.Equal(a.ApprovedAt))
	set(colExpiresAt, !b.ExpiresAt.Equal(a.ExpiresAt))
	set(colEndedAt, !b.EndedAt.Equal(a.EndedAt))
	set(colIdleTimeout, b.IdleTimeout != a.IdleTimeout)
	set(colVerificationCode, b.VerificationCode != a.VerificationCode)
	set(colTokenHash, b.TokenHash != a.TokenHash)
	set(colClientHash, b.ClientHash != a.ClientHash)
	set(colHelperHash, b.HelperHash != a.HelperHash)
	set(colHandoffHash, b.HandoffHash != a.HandoffHash)
	set(colHandoffExpiresAt, !b.HandoffExpiresAt.Equal(a.HandoffExpiresAt))
	bx, ax := b.Extension, a.Extension
	if (bx == nil) != (ax == nil) || (bx != nil && (bx.By != ax.By || bx.RequestedBy != ax.RequestedBy || !bx.RequestedAt.Equal(ax.RequestedAt))) {
		m |= 1<<colExtBy | 1<<colExtRequestedBy | 1<<colExtRequestedAt
	}
	return m | alwaysCols
}

func sameScopes(a, b session.Scopes) bool {
	return slices.EqualFunc(a, b, func(x, y session.Scope) bool {
		return x.Kind == y.Kind && slices.Equal(x.Ports, y.Ports)
	})
}

// narrowUpdateSQL is the UPDATE that writes the columns of mask only.
func narrowUpdateSQL(mask uint32) string {
	var b strings.Builder
	b.WriteString("UPDATE sessions SET ")
	first := true
	for col := range numSessionCols {
		if mask&(1<<col) == 0 {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(sessionColNames[col])
		b.WriteString(" = ?")
	}
	b.WriteString(" WHERE id = ? AND version = ?")
	return b.String()
}

// maxNarrowStmts bounds the prepared narrow updates kept on the writer
// connection; the Broker's transitions need about ten.
const maxNarrowStmts = 64

// narrowUpdate runs the narrow update of mask with args, from a statement
// prepared on the writer connection the first time mask is seen. It runs
// inside a write, so the writer slot guards s.narrow.
func (s *Store) narrowUpdate(tx *wtx, mask uint32, args []any) (int64, error) {
	st := s.narrow[mask]
	if st == nil {
		q := narrowUpdateSQL(mask)
		if len(s.narrow) >= maxNarrowStmts {
			res, err := tx.execSQL(q, args...)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		}
		var err error
		if st, err = tx.conn.PrepareContext(tx.ctx, q); err != nil {
			return 0, err
		}
		if s.narrow == nil {
			s.narrow = make(map[uint32]*sql.Stmt)
		}
		s.narrow[mask] = st
	}
	return execRows(tx.ctx, st, args)
}

// CreateSession implements session.Store. It ignores c.Event: the gateway
// stores events with CreateSessionChained.
func (s *Store) CreateSession(ctx context.Context, c session.Change) error {
	return s.CreateSessionChained(ctx, c.Session, nil)
}

// CreateSessionChained stores a new session and, in the same transaction,
// the audit records chain returns (none if chain is nil).
func (s *Store) CreateSessionChained(ctx context.Context, ss *session.Session, chain audit.ChainFunc) error {
	args, err := sessionArgs(ss)
	if err != nil {
		return fmt.Errorf("sqlite: creating session %s: %w", short(ss.ID), err)
	}
	err = s.write(ctx, func(tx *wtx) error {
		if _, err := tx.exec(s.stmts.insertSession, args...); err != nil {
			return err
		}
		return s.appendChainedTx(tx, chain)
	})
	if err != nil {
		if isConstraint(err) {
			what := "id"
			if strings.Contains(err.Error(), "token_hash") {
				what = "consent token hash"
			}
			return fmt.Errorf("sqlite: creating session %s: duplicate %s: %w", short(ss.ID), what, err)
		}
		return fmt.Errorf("sqlite: creating session %s: %w", short(ss.ID), err)
	}
	return nil
}

// UpdateSessions implements session.Store: one transaction in which each
// session is updated only if the stored version is one less than its own.
// The first session that fails rolls back the lot. It ignores the events:
// the gateway stores them with UpdateSessionsChained.
func (s *Store) UpdateSessions(ctx context.Context, cs ...session.Change) error {
	return s.UpdateSessionsChained(ctx, cs, nil)
}

// UpdateSessionsChained is UpdateSessions that also stores, in the same
// transaction, the audit records chain returns (none if chain is nil); it
// ignores the changes' events.
//
// A change whose Before is the session at the previous version writes
// only the columns that differ from it (and always last_activity and
// version): an UPDATE binds and checks fewer values and, unless the state
// changes, leaves the sessions_state index alone. Without Before, every
// column is written.
func (s *Store) UpdateSessionsChained(ctx context.Context, cs []session.Change, chain audit.ChainFunc) error {
	if len(cs) == 0 {
		return nil
	}
	type upd struct {
		mask       uint32 // narrow update of these columns; 0: fast, then full
		narrow     []any
		fast, full []any
	}
	all := make([]upd, len(cs))
	for i, c := range cs {
		x := c.Session
		if b := c.Before; b != nil && b.ID == x.ID && b.Version == x.Version-1 {
			if mask := changedCols(b, x); mask&identityCols == 0 {
				var e encoder
				args := make([]any, 0, bits.OnesCount32(mask)+2)
				for col := range numSessionCols {
					if mask&(1<<col) != 0 {
						args = append(args, sessionArg(&e, x, col))
					}
				}
				if e.err != nil {
					return fmt.Errorf("sqlite: updating session %s: %w", short(x.ID), e.err)
				}
				all[i] = upd{mask: mask, narrow: append(args, x.ID, x.Version-1)}
				continue
			}
		}
		a, err := sessionArgs(x)
		if err != nil {
			return fmt.Errorf("sqlite: updating session %s: %w", short(x.ID), err)
		}
		fast := make([]any, 0, 30)
		fast = append(fast, a[2])
		fast = append(fast, a[4:12]...)
		fast = append(fast, a[13:20]...)
		fast = append(fast, a[21:29]...)
		fast = append(fast, x.ID, x.Version-1, a[1], a[3], a[12], a[20])
		// SET every column but id, then WHERE id = ? AND version = ?.
		all[i] = upd{fast: fast, full: append(a[1:], x.ID, x.Version-1)}
	}
	return s.write(ctx, func(tx *wtx) error {
		for i, c := range cs {
			x, u := c.Session, all[i]
			var (
				n   int64
				err error
			)
			if u.mask != 0 {
				n, err = s.narrowUpdate(tx, u.mask, u.narrow)
			} else {
				n, err = execRows(tx.ctx, s.stmts.updateSessionFast, u.fast)
			}
			if err != nil {
				return fmt.Errorf("sqlite: updating session %s: %w", short(x.ID), err)
			}
			if n == 1 {
				continue
			}
			// Nothing matched: a missing session, a stale version or (on
			// the fast path) a change to an identity column.
			var v int64
			err = tx.queryRow(s.stmts.sessionVersion, x.ID).Scan(&v)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("sqlite: updating session %s: %w", short(x.ID), session.ErrNotFound)
			case err != nil:
				return fmt.Errorf("sqlite: updating session %s: %w", short(x.ID), err)
			case v != x.Version-1:
				return fmt.Errorf("sqlite: updating session %s: version %d over stored %d: %w",
					short(x.ID), x.Version, v, session.ErrConflict)
			case u.mask != 0:
				return fmt.Errorf("sqlite: updating session %s: %d rows changed, want 1", short(x.ID), n)
			}
			n, err = execRows(tx.ctx, s.stmts.updateSession, u.full)
			if err != nil {
				if isConstraint(err) {
					return fmt.Errorf("sqlite: updating session %s: duplicate consent token hash: %w", short(x.ID), err)
				}
				return fmt.Errorf("sqlite: updating session %s: %w", short(x.ID), err)
			}
			if n != 1 {
				return fmt.Errorf("sqlite: updating session %s: %d rows changed, want 1", short(x.ID), n)
			}
		}
		return s.appendChainedTx(tx, chain)
	})
}

func execRows(ctx context.Context, st *sql.Stmt, args []any) (int64, error) {
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// GetSession implements session.Store.
func (s *Store) GetSession(ctx context.Context, id string) (*session.Session, error) {
	out, err := scanSession(s.stmts.getSession.QueryRowContext(ctx, id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: session %s: %w", short(id), closedErr(err))
	}
	return out, nil
}

// SessionByToken implements session.Store.
func (s *Store) SessionByToken(ctx context.Context, h [32]byte) (*session.Session, error) {
	out, err := scanSession(s.stmts.sessionByToken.QueryRowContext(ctx, h[:]))
	if err != nil {
		// Never put the hash in the error: it identifies a live link.
		return nil, fmt.Errorf("sqlite: session by consent token: %w", closedErr(err))
	}
	return out, nil
}

// ListSessions implements session.Store.
func (s *Store) ListSessions(ctx context.Context, f session.Filter) ([]*session.Session, error) {
	var (
		where []string
		args  []any
	)
	if f.Agent != "" {
		where, args = append(where, "agent = ?"), append(args, f.Agent)
	}
	if f.Team != "" {
		where, args = append(where, "team = ?"), append(args, f.Team)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, filterNanos(f.Since))
	}
	if f.Approved {
		where = append(where, "approved_at <> 0")
	}
	if f.After != nil {
		at := filterNanos(f.After.CreatedAt)
		where, args = append(where, "(created_at < ? OR (created_at = ? AND id < ?))"), append(args, at, at, f.After.ID)
	}
	limit := f.Limit
	if limit <= 0 || limit > session.MaxList {
		limit = session.MaxList
	}
	q := "SELECT " + sessionCols + " FROM sessions"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, limit)
	out, err := s.querySessions(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing sessions: %w", err)
	}
	return out, nil
}

// OpenSessions implements session.Store.
func (s *Store) OpenSessions(ctx context.Context) ([]*session.Session, error) {
	out, err := s.querySessions(ctx, "SELECT "+sessionCols+" FROM sessions WHERE state <> ? ORDER BY created_at, id", string(session.Ended))
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing open sessions: %w", err)
	}
	return out, nil
}

func (s *Store) querySessions(ctx context.Context, q string, args ...any) ([]*session.Session, error) {
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, closedErr(err)
	}
	defer rows.Close()
	var out []*session.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

// scanSession reads one row of sessionCols; sql.ErrNoRows becomes
// session.ErrNotFound.
func scanSession(r scanner) (*session.Session, error) {
	var (
		x                                             session.Session
		requested, scopes, state, endReason           string
		duration, idle                                int64
		created, consent, approved, expires, ended, l int64
		th, ch, hh, oh                                []byte
		handoffAt                                     int64
		extBy, extAt                                  sql.NullInt64
		extReqBy                                      sql.NullString
	)
	err := r.Scan(&x.ID, &x.Agent, &x.AgentName, &x.Team, &x.Customer, &x.Reason,
		&requested, &scopes, &duration, &state, &endReason, &x.EndedBy,
		&created, &consent, &approved, &expires, &ended, &l, &idle,
		&x.VerificationCode, &th, &ch, &extBy, &extReqBy, &extAt, &x.Version, &hh, &oh, &handoffAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, session.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if x.Requested, err = parseScopes(requested); err != nil {
		return nil, fmt.Errorf("session %s: requested scopes: %w", short(x.ID), err)
	}
	if x.Scopes, err = parseScopes(scopes); err != nil {
		return nil, fmt.Errorf("session %s: scopes: %w", short(x.ID), err)
	}
	if x.TokenHash, err = hash32("token_hash", th); err != nil {
		return nil, fmt.Errorf("session %s: %w", short(x.ID), err)
	}
	if x.ClientHash, err = hash32("client_hash", ch); err != nil {
		return nil, fmt.Errorf("session %s: %w", short(x.ID), err)
	}
	if x.HelperHash, err = hash32("helper_hash", hh); err != nil {
		return nil, fmt.Errorf("session %s: %w", short(x.ID), err)
	}
	if x.HandoffHash, err = hash32("handoff_hash", oh); err != nil {
		return nil, fmt.Errorf("session %s: %w", short(x.ID), err)
	}
	x.HandoffExpiresAt = fromNanos(handoffAt)
	x.Duration, x.IdleTimeout = durationOf(duration), durationOf(idle)
	x.State, x.EndReason = session.State(state), session.EndReason(endReason)
	x.CreatedAt, x.ConsentExpiresAt, x.ApprovedAt = fromNanos(created), fromNanos(consent), fromNanos(approved)
	x.ExpiresAt, x.EndedAt, x.LastActivity = fromNanos(expires), fromNanos(ended), fromNanos(l)
	if extBy.Valid {
		x.Extension = &session.Extension{
			By:          durationOf(extBy.Int64),
			RequestedBy: extReqBy.String,
			RequestedAt: fromNanos(extAt.Int64),
		}
	}
	return &x, nil
}

func parseScopes(text string) (session.Scopes, error) {
	if text == "" {
		return nil, nil
	}
	return session.ParseScopes(text)
}
