package session_test

import (
	"sync"
	"testing"
	"time"

	"supportgate/session"
	"supportgate/session/sessiontest"
)

func TestSteadyClock(t *testing.T) {
	c := sessiontest.NewClock(t0)
	s := session.NewSteadyClock(c, time.Time{})
	check := func(what string, want time.Time) {
		t.Helper()
		if got := s.Now(); !got.Equal(want) {
			t.Fatalf("%s: Now = %v, want %v", what, got, want)
		}
	}
	check("at the start", t0)
	c.Advance(time.Minute)
	check("a minute on", t0.Add(time.Minute))
	c.StepWall(time.Hour)
	check("wall clock set an hour forward", t0.Add(61*time.Minute))
	c.StepWall(-2 * time.Hour)
	check("wall clock set two hours back", t0.Add(61*time.Minute))
	if got, want := s.Wall(), t0.Add(-59*time.Minute); !got.Equal(want) {
		t.Fatalf("Wall = %v, want %v", got, want)
	}
	c.Advance(30 * time.Minute)
	check("half an hour after the step back", t0.Add(91*time.Minute))
	c.StepWall(3 * time.Hour)
	check("wall clock ahead again", t0.Add(151*time.Minute))

	if d := s.Raise(t0); d != 0 {
		t.Fatalf("Raise to an earlier time moved the clock %v, want 0", d)
	}
	check("after Raise to an earlier time", t0.Add(151*time.Minute))
	floor := t0.Add(5 * time.Hour)
	if d, want := s.Raise(floor), 149*time.Minute; d != want {
		t.Fatalf("Raise moved the clock %v, want %v", d, want)
	}
	check("after Raise", floor)
	c.Advance(time.Second)
	check("a second after Raise", floor.Add(time.Second))
}

func TestSteadyClockFloor(t *testing.T) {
	c := sessiontest.NewClock(t0)
	floor := t0.Add(time.Hour)
	s := session.NewSteadyClock(c, floor)
	if got := s.Now(); !got.Equal(floor) {
		t.Fatalf("Now = %v, want the floor %v", got, floor)
	}
	c.Advance(10 * time.Minute)
	if got, want := s.Now(), floor.Add(10*time.Minute); !got.Equal(want) {
		t.Fatalf("10 minutes on: Now = %v, want %v", got, want)
	}
}

// TestSteadyClockConcurrent: readers racing with each other and with
// steps of the wall clock never see the time go back.
func TestSteadyClockConcurrent(t *testing.T) {
	c := sessiontest.NewClock(t0)
	s := session.NewSteadyClock(c, time.Time{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var last time.Time
			for range 2000 {
				now := s.Now()
				if now.Before(last) {
					t.Errorf("Now went back from %v to %v", last, now)
					return
				}
				last = now
			}
		})
	}
	for i := range 2000 {
		c.Advance(time.Millisecond)
		if i%3 == 0 {
			c.StepWall(-time.Second)
		}
	}
	wg.Wait()
}

// TestSteadyClockReal: over the real clock, Now follows time.Now.
func TestSteadyClockReal(t *testing.T) {
	s := session.NewSteadyClock(session.RealClock{}, time.Time{})
	before := time.Now()
	got := s.Now()
	after := time.Now()
	if got.Before(before.Round(0)) || got.After(after.Round(0)) {
		t.Fatalf("Now = %v, want between %v and %v", got, before, after)
	}
}
