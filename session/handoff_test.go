package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"supportgate/session"
)

func TestHandoffBindsOneHelper(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{})
	s, tok, key := h.create("shell,chat", 30*time.Minute)

	if _, _, err := h.b.Handoff(ctx, tok, key, customer); !errors.Is(err, session.ErrNotActive) {
		t.Fatalf("handoff before approval: %v, want ErrNotActive", err)
	}
	h.approve(tok, key, "shell,chat")

	// The helper, a second client, is refused until it has a code.
	if _, _, err := h.b.Open(ctx, tok, "", customer); !errors.Is(err, session.ErrBoundElsewhere) {
		t.Fatalf("helper without a code: %v", err)
	}
	code, _, err := h.b.Handoff(ctx, tok, key, customer)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.b.ClaimHandoff(ctx, tok, code+"x", customer); !errors.Is(err, session.ErrBoundElsewhere) {
		t.Fatalf("wrong code: %v", err)
	}
	got, helperKey, err := h.b.ClaimHandoff(ctx, tok, code, customer)
	if err != nil || helperKey == "" || got.ID != s.ID {
		t.Fatalf("claim: %v", err)
	}
	if _, _, err := h.b.ClaimHandoff(ctx, tok, code, customer); !errors.Is(err, session.ErrBoundElsewhere) {
		t.Fatalf("second claim of one code: %v", err)
	}
	// Both clients now act for the customer; a third does not.
	if _, _, err := h.b.Open(ctx, tok, helperKey, customer); err != nil {
		t.Fatalf("helper opening with its key: %v", err)
	}
	if _, _, err := h.b.Open(ctx, tok, key, customer); err != nil {
		t.Fatalf("browser after the handoff: %v", err)
	}
	// The helper cannot hand off again, and there is one helper only.
	if _, _, err := h.b.Handoff(ctx, tok, helperKey, customer); !errors.Is(err, session.ErrBoundElsewhere) {
		t.Fatalf("handoff by the helper: %v", err)
	}
	if _, _, err := h.b.Handoff(ctx, tok, key, customer); !errors.Is(err, session.ErrHelperBound) {
		t.Fatalf("second helper: %v", err)
	}
	if _, err := h.b.CustomerRevoke(ctx, tok, helperKey, customer); err != nil {
		t.Fatalf("helper revoking: %v", err)
	}
	if got := h.get(s.ID); got.State != session.Ended || got.EndReason != session.EndRevoked {
		t.Fatalf("after the helper's revoke: %s/%s", got.State, got.EndReason)
	}
}

func TestHandoffCodeExpiresAndNeedsHelperScopes(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{IdleTimeout: -1})
	_, tok, key := h.create("view,chat", 30*time.Minute)
	h.approve(tok, key, "view,chat")
	if _, _, err := h.b.Handoff(ctx, tok, key, customer); !errors.Is(err, session.ErrScopeNotAllowed) {
		t.Fatalf("handoff of a view session: %v", err)
	}

	_, tok, key = h.create("tunnel:80", 30*time.Minute)
	h.approve(tok, key, "tunnel:80")
	code, _, err := h.b.Handoff(ctx, tok, key, customer)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(session.HandoffTTL)
	if _, _, err := h.b.ClaimHandoff(ctx, tok, code, customer); !errors.Is(err, session.ErrBoundElsewhere) {
		t.Fatalf("expired code: %v", err)
	}
}
