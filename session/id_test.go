package session_test

import (
	"testing"
	"time"

	"supportgate/session"
)

func TestValidID(t *testing.T) {
	for _, tt := range []struct {
		id   string
		want bool
	}{
		{"0123456789abcdef", true},
		{"ffffffffffffffff", true},
		{"", false},
		{"0123456789abcde", false},
		{"0123456789abcdef0", false},
		{"0123456789ABCDEF", false},
		{"0123456789abcdeg", false},
		{"../../../etc/pas", false},
		{"0123456789abcde\x00", false},
		{"0123456789abcdé", false},
	} {
		if got := session.ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q): got %v, want %v", tt.id, got, tt.want)
		}
	}
}

// TestNewIDsAreValid: what the Broker hands out passes ValidID.
func TestNewIDsAreValid(t *testing.T) {
	h := newHarness(t, session.Policy{MaxOpenPerAgent: 100})
	for range 20 {
		s, _, _ := h.create("view", 30*time.Minute)
		if !session.ValidID(s.ID) {
			t.Fatalf("new session id %q fails ValidID", s.ID)
		}
	}
}
