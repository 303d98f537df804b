package gateway_test

import (
	"net/http"
	"testing"

	"supportgate/session"
)

// TestReenrollDuringCreate: a session the agent asked for before an admin
// reset their sign-in, stored after the reset ended the agent's sessions,
// is ended too: the reset says every session the agent runs ends.
func TestReenrollDuringCreate(t *testing.T) {
	code, body, s := createDuring(t, func(e *env, root *testUser) {
		e.do(root, "POST", "/api/v1/users/alice/reenroll", "{}", 200, nil)
	})
	if code == http.StatusCreated {
		t.Errorf("create during the reset: got %d %s, want a refusal", code, body)
	}
	if s.State != session.Ended || s.EndReason != session.EndRevoked {
		t.Fatalf("the session created during the reset: %s/%s by %q, want ended/revoked", s.State, s.EndReason, s.EndedBy)
	}
}
