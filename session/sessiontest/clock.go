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
type Clock struct {
	mu     sync.Mutex // guards now, timers, seq
	now    time.Time
	timers []*fakeTimer
	seq    int
}

// NewClock returns a clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

type fakeTimer struct {
	c    *Clock
	at   time.Time
	seq  int
	f    func()
	done bool
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at now+d; it runs during a later Advance (an
// Advance(0) runs timers that are already due).
func (c *Clock) AfterFunc(d time.Duration, f func()) session.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
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

// Advance moves the clock forward by d, running every timer that falls due
// on the way at its own time, including timers those callbacks set.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
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
			if live[i].at.Equal(live[j].at) {
				return live[i].seq < live[j].seq
			}
			return live[i].at.Before(live[j].at)
		})
		if len(live) == 0 || live[0].at.After(end) {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := live[0]
		t.done = true
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}
