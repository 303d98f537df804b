package session

import "time"

// Clock is the time source of the Broker. Tests inject a fake that fires
// timers when it is advanced (sessiontest.Clock), so they need no sleeps.
type Clock interface {
	// Now reads the wall clock, which may be set back or forward.
	Now() time.Time
	// Monotonic reads a clock that only moves forward, at the pace of
	// real time, whatever the wall clock does: the time elapsed since an
	// arbitrary origin fixed for the clock's life.
	Monotonic() time.Duration
	// AfterFunc calls f in its own goroutine once d has passed on the
	// monotonic clock.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call; it reports false if the call already ran or
	// was started.
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// monoOrigin is RealClock's monotonic origin. time.Now carries a reading
// of the monotonic clock, which time.Since uses.
var monoOrigin = time.Now()

// Monotonic returns the monotonic time since the process started.
func (RealClock) Monotonic() time.Duration { return time.Since(monoOrigin) }

// AfterFunc wraps time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
