package session

import "errors"

// Sentinel errors callers branch on with errors.Is. Their text is safe to
// show to the party that caused them.
var (
	ErrNotFound        = errors.New("session not found")
	ErrBadScope        = errors.New("invalid scope")
	ErrBadDuration     = errors.New("invalid duration")
	ErrBadRequest      = errors.New("invalid request")
	ErrEnded           = errors.New("session has ended")
	ErrNotActive       = errors.New("session is not active")
	ErrNotRequested    = errors.New("session is no longer awaiting consent")
	ErrLinkExpired     = errors.New("consent link has expired")
	ErrBoundElsewhere  = errors.New("consent link is already bound to another client")
	ErrScopeNotAllowed = errors.New("scope not granted for this session")
	ErrTooMany         = errors.New("too many open sessions for this agent")
	ErrNoExtension     = errors.New("no extension is pending")
	ErrConflict        = errors.New("session changed concurrently")
	ErrClosed          = errors.New("broker is closed")
)
