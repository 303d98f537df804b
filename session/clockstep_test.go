package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"supportgate/session"
	"supportgate/session/sessiontest"
)

// TestWallClockStepBackWhileRunning: the wall clock is set back an hour
// (an operator typing date, a bad NTP server) while sessions run. Every
// deadline still falls when its time has really passed: a time box, a
// consent link, an idle timeout, a pending extension and a handoff code
// must not gain the hour. Time is measured on the monotonic clock, as Go's
// timers are; the wall clock only ever moves the broker's time forward.
func TestWallClockStepBackWhileRunning(t *testing.T) {
	ctx := context.Background()
	const back = -time.Hour
	tests := []struct {
		name string
		pol  session.Policy
		// run starts the session, steps the clock back at some point
		// and advances it to when the deadline has passed.
		run  func(t *testing.T, h *harness) *session.Session
		want session.EndReason
	}{
		{"time box", session.Policy{IdleTimeout: -1}, func(t *testing.T, h *harness) *session.Session {
			s, tok, key := h.create("view", 30*time.Minute)
			h.approve(tok, key, "view")
			h.clock.Advance(10 * time.Minute)
			h.clock.StepWall(back)
			h.clock.Advance(20*time.Minute - time.Second)
			if _, _, err := h.b.Authorize(ctx, s.ID, session.Need{Agent: "alice", Kind: session.View}); err != nil {
				t.Fatalf("a second before the end of the box: %v", err)
			}
			h.clock.Advance(time.Second)
			return s
		}, session.EndExpired},
		{"consent link", session.Policy{}, func(t *testing.T, h *harness) *session.Session {
			s, _, _ := h.create("view", 30*time.Minute)
			h.clock.Advance(5 * time.Minute)
			h.clock.StepWall(back)
			h.clock.Advance(10 * time.Minute) // the default link TTL is 15 minutes
			return s
		}, session.EndLinkExpired},
		{"idle", session.Policy{}, func(t *testing.T, h *harness) *session.Session {
			s, tok, key := h.create("view", time.Hour)
			h.approve(tok, key, "view")
			h.clock.Advance(2 * time.Minute)
			h.clock.StepWall(back)
			h.clock.Advance(8 * time.Minute) // the default idle timeout is 10 minutes
			return s
		}, session.EndIdle},
		{"idle, touched after the step", session.Policy{}, func(t *testing.T, h *harness) *session.Session {
			s, tok, key := h.create("view", time.Hour)
			h.approve(tok, key, "view")
			h.clock.StepWall(back)
			h.clock.Advance(time.Minute)
			h.b.Touch(s.ID)
			h.clock.Advance(10 * time.Minute)
			return s
		}, session.EndIdle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.pol)
			s := tt.run(t, h)
			got := h.get(s.ID)
			if got.State != session.Ended || got.EndReason != tt.want {
				t.Fatalf("after the deadline really passed: got %s/%s, want ended/%s", got.State, got.EndReason, tt.want)
			}
			if _, _, err := h.b.Authorize(ctx, s.ID, session.Need{Agent: "alice", Kind: session.View}); !errors.Is(err, session.ErrEnded) {
				t.Fatalf("Authorize after the end: got %v, want ErrEnded", err)
			}
			// The broker's times never go back: the audit log reads in order.
			var last time.Time
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, e := range h.events {
				if e.Time.Before(last) {
					t.Errorf("event %s at %v, before the previous one at %v", e.Type, e.Time, last)
				}
				last = e.Time
			}
		})
	}
}

// TestWallClockStepBackExtensionAndHandoff: a pending extension lapses,
// and a handoff code expires, when their time has really passed, whatever
// the wall clock did meanwhile.
func TestWallClockStepBackExtensionAndHandoff(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{MaxDuration: 8 * time.Hour, IdleTimeout: -1})
	s, tok, key := h.create("shell", 4*time.Hour)
	h.approve(tok, key, "shell")
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	code, _, err := h.b.Handoff(ctx, tok, key, customer)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.StepWall(-time.Hour)
	h.clock.Advance(h.b.Policy().ConsentTTL)
	if _, _, err := h.b.ClaimHandoff(ctx, tok, code, customer); !errors.Is(err, session.ErrBoundElsewhere) {
		t.Errorf("claiming a handoff code %v after it was issued (TTL %v): got %v, want ErrBoundElsewhere", h.b.Policy().ConsentTTL, session.HandoffTTL, err)
	}
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 10*time.Minute); err != nil {
		t.Errorf("asking again once the first request lapsed: %v", err)
	}
}

// TestRestartClockBehindOpenSessions: a store that cannot tell its newest
// time (no HighWaterStore) still gives the broker a floor: the open
// sessions' own times. A session restarted under a clock set back an hour
// ends at the latest a full box after its approval, not an hour later.
func TestRestartClockBehindOpenSessions(t *testing.T) {
	h := newHarness(t, session.Policy{IdleTimeout: -1})
	s, tok, key := h.create("view", 30*time.Minute)
	h.approve(tok, key, "view")
	h.clock.Advance(5 * time.Minute)
	h.b.Close()

	h.clock = sessiontest.NewClock(t0.Add(5*time.Minute - time.Hour))
	h.b = h.broker(session.Policy{IdleTimeout: -1})
	h.clock.Advance(30 * time.Minute)
	if got := h.get(s.ID); got.State != session.Ended || got.EndReason != session.EndExpired {
		t.Fatalf("a full box after the restart: got %s/%s, want ended/expired", got.State, got.EndReason)
	}
}
