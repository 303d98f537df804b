package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"supportgate/session"
)

// TestExtensionNotReplaced: while one extension request waits for the
// customer, a second is refused, so the customer's yes grants what they
// were shown and not what the agent asked for afterwards.
func TestExtensionNotReplaced(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{MaxDuration: 8 * time.Hour, IdleTimeout: -1})
	s, tok, key := h.create("view", 10*time.Minute)
	h.approve(tok, key, "view")
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	_, err := h.b.RequestExtension(ctx, s.ID, agent, 7*time.Hour)
	if !errors.Is(err, session.ErrExtensionPending) || !errors.Is(err, session.ErrConflict) {
		t.Fatalf("second request while one is pending: got %v, want ErrExtensionPending and ErrConflict", err)
	}
	if x := h.get(s.ID).Extension; x == nil || x.By != 5*time.Minute || !x.RequestedAt.Equal(t0) {
		t.Fatalf("pending extension after the refused request: got %+v, want 5m asked at %v", x, t0)
	}
	if _, err := h.b.DecideExtension(ctx, tok, key, session.ExtensionAnswer{Approve: true}, customer); err != nil {
		t.Fatal(err)
	}
	if got, want := h.get(s.ID).ExpiresAt, t0.Add(15*time.Minute); !got.Equal(want) {
		t.Fatalf("time box after approving 5m: got %v, want %v", got, want)
	}
	// Once answered, the agent may ask again.
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 7*time.Hour); err != nil {
		t.Fatalf("request after the first was answered: %v", err)
	}
}

// TestExtensionAnswerNamesRequest: an answer that names the request it saw
// counts only while that request is the pending one.
func TestExtensionAnswerNamesRequest(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{MaxDuration: 8 * time.Hour, IdleTimeout: -1})
	s, tok, key := h.create("view", 10*time.Minute)
	h.approve(tok, key, "view")
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	seen := session.ExtensionAnswer{Approve: true, By: 5 * time.Minute, RequestedAt: t0}
	if _, err := h.b.DecideExtension(ctx, tok, key, seen, customer); err != nil {
		t.Fatalf("answer naming the pending request: %v", err)
	}
	h.clock.Advance(time.Minute)
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 7*time.Hour); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		a    session.ExtensionAnswer
	}{
		{"stale by and time", seen},
		{"stale by", session.ExtensionAnswer{Approve: true, By: 5 * time.Minute}},
		{"stale time", session.ExtensionAnswer{Approve: true, RequestedAt: t0}},
		{"stale refusal", session.ExtensionAnswer{By: 5 * time.Minute, RequestedAt: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.b.DecideExtension(ctx, tok, key, tt.a, customer)
			if !errors.Is(err, session.ErrExtensionChanged) || !errors.Is(err, session.ErrConflict) {
				t.Fatalf("got %v, want ErrExtensionChanged and ErrConflict", err)
			}
			got := h.get(s.ID)
			if want := t0.Add(15 * time.Minute); !got.ExpiresAt.Equal(want) {
				t.Fatalf("time box after a refused answer: got %v, want %v", got.ExpiresAt, want)
			}
			if got.Extension == nil || got.Extension.By != 7*time.Hour {
				t.Fatalf("pending extension after a refused answer: got %+v, want 7h", got.Extension)
			}
		})
	}
	now := session.ExtensionAnswer{Approve: true, By: 7 * time.Hour, RequestedAt: t0.Add(time.Minute)}
	if _, err := h.b.DecideExtension(ctx, tok, key, now, customer); err != nil {
		t.Fatalf("answer naming the request pending now: %v", err)
	}
	if got, want := h.get(s.ID).ExpiresAt, t0.Add(7*time.Hour+15*time.Minute); !got.Equal(want) {
		t.Fatalf("time box: got %v, want %v", got, want)
	}
}

// TestExtensionLapses: a request the customer leaves unanswered for the
// consent TTL (15 minutes by default) lapses, and the agent may ask
// again; a page still showing the lapsed one cannot grant the new one.
func TestExtensionLapses(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{MaxDuration: 8 * time.Hour, IdleTimeout: -1})
	s, tok, key := h.create("view", time.Hour)
	h.approve(tok, key, "view")
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(15*time.Minute - time.Second)
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 10*time.Minute); !errors.Is(err, session.ErrExtensionPending) {
		t.Fatalf("a second request just before the first lapses: got %v, want ErrExtensionPending", err)
	}
	h.clock.Advance(time.Second)
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 10*time.Minute); err != nil {
		t.Fatalf("a request once the first lapsed: %v", err)
	}
	stale := session.ExtensionAnswer{Approve: true, By: 5 * time.Minute, RequestedAt: t0}
	if _, err := h.b.DecideExtension(ctx, tok, key, stale, customer); !errors.Is(err, session.ErrExtensionChanged) {
		t.Fatalf("a yes to the lapsed request: got %v, want ErrExtensionChanged", err)
	}
	seen := session.ExtensionAnswer{Approve: true, By: 10 * time.Minute, RequestedAt: t0.Add(15 * time.Minute)}
	if _, err := h.b.DecideExtension(ctx, tok, key, seen, customer); err != nil {
		t.Fatal(err)
	}
	if got, want := h.get(s.ID).ExpiresAt, t0.Add(70*time.Minute); !got.Equal(want) {
		t.Fatalf("time box: got %v, want %v (1h and the 10m granted)", got, want)
	}
}
