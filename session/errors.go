package session

import (
	"context"
	"errors"
)

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
	ErrHelperBound     = errors.New("a helper is already connected to this session")
)

// EndedError is the cause of a session context's cancellation when the
// session ended (context.Cause); a broker closing instead gives ErrClosed.
type EndedError struct{ Reason EndReason }

func (e *EndedError) Error() string { return "session ended: " + string(e.Reason) }

// Is makes an EndedError match ErrEnded.
func (e *EndedError) Is(target error) bool { return target == ErrEnded }

// EndReasonOf returns why the session whose context is ctx ended, if it did.
func EndReasonOf(ctx context.Context) (EndReason, bool) {
	var ee *EndedError
	if errors.As(context.Cause(ctx), &ee) {
		return ee.Reason, true
	}
	return "", false
}
