package session

import (
	"sync"
	"time"
)

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

// SteadyClock is a Clock whose time never goes back. Its Now is the
// wall clock's, except that it is never earlier than a floor nor than an
// earlier reading plus the time elapsed since on the monotonic clock: a
// wall clock set back (an operator typing date, a bad NTP server, a VM
// restored from a snapshot) stops counting, and the clock's time runs on
// at the pace of real time from where it was. A wall clock set forward is
// followed at once, which only brings deadlines closer.
//
// Every deadline the gateway keeps is a wall time, stored, compared with
// Now and re-armed while it lies ahead. On the bare wall clock a step back
// of an hour lets every one of them (time boxes, consent links, idle
// timeouts, tokens) run an hour more; on a SteadyClock whose floor is the
// newest time the store holds, none runs longer, in real time, than it
// would have with a right clock, plus the time the gateway was down.
//
// The Broker always reads a SteadyClock (NewBroker wraps any other Clock).
// It is safe for concurrent use.
type SteadyClock struct {
	c Clock

	mu   sync.Mutex    // guards at and mono
	at   time.Time     // the last reading (or the floor)
	mono time.Duration // c.Monotonic() when at was read
}

// Steady returns c held steady: c itself if it is a SteadyClock, else a
// SteadyClock over c (the wall clock if c is nil) with no floor.
func Steady(c Clock) *SteadyClock {
	switch c := c.(type) {
	case *SteadyClock:
		return c
	case nil:
		return NewSteadyClock(RealClock{}, time.Time{})
	default:
		return NewSteadyClock(c, time.Time{})
	}
}

// NewSteadyClock returns a SteadyClock over c whose Now never reads
// earlier than floor (the zero time sets none).
func NewSteadyClock(c Clock, floor time.Time) *SteadyClock {
	return &SteadyClock{c: c, at: floor.Round(0), mono: c.Monotonic()}
}

// Now returns the later of the wall clock's time and the last reading
// plus the monotonic time elapsed since.
func (s *SteadyClock) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readLocked()
}

func (s *SteadyClock) readLocked() time.Time {
	wall, mono := s.c.Now().Round(0), s.c.Monotonic()
	t := s.at.Add(mono - s.mono)
	if wall.After(t) {
		t = wall
	}
	s.at, s.mono = t, mono
	return t
}

// Raise makes Now read at least t from now on, and reports how far it
// moved the clock forward (0 if Now was at t or later already).
func (s *SteadyClock) Raise(t time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.readLocked()
	if !t.After(now) {
		return 0
	}
	s.at = t.Round(0)
	return t.Sub(now)
}

// Wall returns the wall clock's time, for what must agree with clocks
// outside the gateway rather than with its own deadlines: TOTP codes
// follow the user's phone.
func (s *SteadyClock) Wall() time.Time { return s.c.Now() }

// Monotonic returns the underlying clock's monotonic reading.
func (s *SteadyClock) Monotonic() time.Duration { return s.c.Monotonic() }

// AfterFunc is the underlying clock's: timers run on the monotonic clock.
func (s *SteadyClock) AfterFunc(d time.Duration, f func()) Timer { return s.c.AfterFunc(d, f) }
