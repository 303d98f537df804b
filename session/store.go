package session

import (
	"context"
	"time"
)

// Store persists sessions. Implementations (SQLite embedded, PostgreSQL for
// scale-out) pass sessiontest.RunStoreTests. Methods are safe for concurrent
// use and return ErrNotFound for a missing session.
type Store interface {
	// CreateSession stores a new session (c.Session, Version 1). A
	// duplicate ID or token hash is an error.
	CreateSession(ctx context.Context, c Change) error
	// UpdateSessions stores changed sessions atomically: all or none. Each
	// session's Version must be exactly one more than the stored one, or
	// the call fails with ErrConflict and stores nothing.
	UpdateSessions(ctx context.Context, cs ...Change) error
	// GetSession returns the session with the ID.
	GetSession(ctx context.Context, id string) (*Session, error)
	// SessionByToken returns the session whose consent token hashes to h.
	SessionByToken(ctx context.Context, h [32]byte) (*Session, error)
	// ListSessions returns sessions matching f, newest first.
	ListSessions(ctx context.Context, f Filter) ([]*Session, error)
	// OpenSessions returns every session that has not ended, for the Broker
	// to take over its timers after a restart.
	OpenSessions(ctx context.Context) ([]*Session, error)
}

// Change is one state change the Broker stores: the session as changed and
// the event that reports it. A Store that keeps an audit log (the gateway
// wraps its store so) commits the event in the same transaction as the
// session, so no change is ever stored without its record; a Store without
// one ignores Event.
type Change struct {
	Session *Session
	Event   Event // Event.Session is nil; the change is Session
	// Before, for UpdateSessions, is the session as stored at the version
	// before Session's (apart from LastActivity, which the Broker moves in
	// memory between stored changes), or nil. A Store may use it to write
	// only the fields that differ, and must not modify or keep it.
	Before *Session
}

// Filter selects sessions for ListSessions. Zero fields match everything.
type Filter struct {
	Agent string
	Team  string
	State State
	Since time.Time // created at or after
	Limit int       // at most this many (the store caps it at 1000)
	// Approved selects sessions that a customer approved (ApprovedAt is
	// set), whatever their state now: those that never became active
	// (denied, link expired) are left out.
	Approved bool
	// After continues a listing: only sessions that come after it in the
	// newest-first order (created earlier, or at the same instant with a
	// smaller ID). Pass the last session of the previous page.
	After *Session
}

// MaxList is the most sessions one ListSessions call returns.
const MaxList = 1000

// HighWaterStore is a Store that can tell the newest time it holds: the
// latest of its stored changes and, for a gateway store, audit records,
// and the heartbeat. Broker.Start raises its clock to it (SteadyClock), so
// that a wall clock set back while the gateway was down cannot stretch a
// deadline. sessiontest.RunHighWaterTests checks an implementation.
type HighWaterStore interface {
	Store
	// HighWater returns the newest time stored, or the zero time for an
	// empty store. It is never earlier than the heartbeat.
	HighWater(ctx context.Context) (time.Time, error)
	// SetHeartbeat stores t as the time the running gateway has reached,
	// in place of the heartbeat stored before, even a later one: one small
	// record, not a log, written every few seconds while nothing else is.
	// The zero time clears it. Without it, a gateway killed after hours
	// without a stored change would restart from the time of that change,
	// hours behind the time it had reached.
	SetHeartbeat(ctx context.Context, t time.Time) error
}
