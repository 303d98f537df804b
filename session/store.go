package session

import (
	"context"
	"time"
)

// Store persists sessions. Implementations (SQLite embedded, PostgreSQL for
// scale-out) pass sessiontest.RunStoreTests. Methods are safe for concurrent
// use and return ErrNotFound for a missing session.
type Store interface {
	// CreateSession stores a new session (Version 1). A duplicate ID or
	// token hash is an error.
	CreateSession(ctx context.Context, s *Session) error
	// UpdateSessions stores changed sessions atomically: all or none. Each
	// session's Version must be exactly one more than the stored one, or
	// the call fails with ErrConflict and stores nothing.
	UpdateSessions(ctx context.Context, ss ...*Session) error
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

// Filter selects sessions for ListSessions. Zero fields match everything.
type Filter struct {
	Agent string
	Team  string
	State State
	Since time.Time // created at or after
	Limit int       // at most this many (the store caps it at 1000)
}

// MaxList is the most sessions one ListSessions call returns.
const MaxList = 1000
