// Package sessiontest has test doubles for the session package: a fake
// clock that tests advance by hand, an in-memory Store, and the store
// conformance suite every Store implementation runs.
package sessiontest

import (
	"sort"
	"sync"
	"time"

	"supportgate/session"
)

// Clock is a fake session.Clock. Time moves only when Advance is called,
// which runs due AfterFunc callbacks synchronously, in deadline order.
// Like the real clock it has two parts: the wall clock that Now reads,
// which StepWall can set back or forward, and the monotonic clock that
// timers and Monotonic follow, which only Advance moves.
type Clock struct {
	mu      sync.Mutex // guards the fields below
	start   time.Time  // Now when the clock was made
	elapsed time.Duration
	step    time.Duration // the sum of StepWall calls
	timers  []*fakeTimer
	seq     int
}

// NewClock returns a clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{start: t} }

type fakeTimer struct {
	c    *Clock
	at   time.Duration // on the monotonic clock
	seq  int
	f    func()
	done bool
}

// Now returns the fake wall time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(c.elapsed + c.step)
}

// Monotonic returns how far the clock has been advanced: StepWall does
// not change it.
func (c *Clock) Monotonic() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.elapsed
}

// AfterFunc schedules f once d has passed on the monotonic clock; it runs
// during a later Advance (an Advance(0) runs timers that are already due).
func (c *Clock) AfterFunc(d time.Duration, f func()) session.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.elapsed + d, seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Stop cancels the timer if it has not run.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	return true
}

// StepWall moves the wall clock by d, back when d is negative, as an
// operator setting the date or a bad NTP server does. Timers do not move
// and none runs: like Go's, they follow the monotonic clock.
func (c *Clock) StepWall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.step += d
}

// Advance moves the clock forward by d, running every timer that falls due
// on the way at its own time, including timers those callbacks set.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.elapsed + d
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var live []*fakeTimer
		for _, t := range c.timers {
			if !t.done {
				live = append(live, t)
			}
		}
		c.timers = live
		sort.Slice(live, func(i, j int) bool {
			if live[i].at == live[j].at {
				return live[i].seq < live[j].seq
			}
			return live[i].at < live[j].at
		})
		if len(live) == 0 || live[0].at > end {
			c.elapsed = end
			c.mu.Unlock()
			return
		}
		t := live[0]
		t.done = true
		if t.at > c.elapsed {
			c.elapsed = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}
