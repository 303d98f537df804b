package session_test

import (
	"context"
	"testing"
	"time"

	"supportgate/session"
	"supportgate/session/sessiontest"
)

// TestEndStored: a broker that was not started ends every session the
// store holds open (active and requested alike), revoked, by the actor
// given, at its clock's time even when that is behind the sessions' own
// times (an operator accepting a wall clock set back), with one
// session.ended event each as Revoke writes; ended sessions stay as they
// were, and a started broker refuses.
func TestEndStored(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{})
	active, tok, key := h.create("view", 30*time.Minute)
	h.approve(tok, key, "view")
	requested, _, _ := h.create("chat", 30*time.Minute)
	gone, _, _ := h.create("view", 30*time.Minute)
	if _, err := h.b.Revoke(ctx, gone.ID, agent); err != nil {
		t.Fatal(err)
	}
	if _, err := h.b.EndStored(ctx, session.EndRevoked, agent); err == nil {
		t.Error("EndStored on a started broker: no error")
	}
	h.b.Close()

	// The wall clock is an hour behind the sessions' times.
	at := t0.Add(-time.Hour)
	var events []session.Event
	admin := session.Actor{Name: "local-admin", Role: "admin", Remote: "local"}
	b, err := session.NewBroker(session.Config{Store: h.store, Clock: sessiontest.NewClock(at),
		OnEvent: func(e session.Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ended, err := b.EndStored(ctx, session.EndRevoked, admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != 2 {
		t.Fatalf("EndStored ended %d sessions, want 2", len(ended))
	}
	for _, id := range []string{active.ID, requested.ID} {
		s, err := h.store.GetSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != session.Ended || s.EndReason != session.EndRevoked || s.EndedBy != admin.Name || !s.EndedAt.Equal(at) {
			t.Errorf("%s stored: %s/%s by %q at %v, want ended/revoked by %q at %v", id, s.State, s.EndReason, s.EndedBy, s.EndedAt, admin.Name, at)
		}
	}
	if s, _ := h.store.GetSession(ctx, gone.ID); s.EndedBy != agent.Name || s.EndedAt.Equal(at) {
		t.Errorf("the session ended before: now ended by %q at %v, want as it was", s.EndedBy, s.EndedAt)
	}
	if len(events) != 2 {
		t.Fatalf("events: %d, want one per session", len(events))
	}
	for _, e := range events {
		if e.Type != "session.ended" || !e.Stored || e.Actor != admin || e.Detail["reason"] != "revoked" || !e.Time.Equal(at) {
			t.Errorf("event %+v, want session.ended, stored, by local-admin, reason revoked, at %v", e, at)
		}
	}
	if open, _ := h.store.OpenSessions(ctx); len(open) != 0 {
		t.Errorf("%d sessions still open", len(open))
	}
}
