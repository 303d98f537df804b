// Package session is the domain of supportgate: sessions, scopes, states,
// time boxes and consent tokens, and the Broker that alone changes session
// state, owns the timers and cancels every channel of a session when it
// ends. It knows nothing of HTTP, SSH or SQL; transports ask the Broker and
// the Store interface hides persistence.
package session

import (
	"slices"
	"time"
)

// State is where a session is in its lifecycle.
type State string

// The lifecycle: requested -> active -> ended, or requested -> ended.
const (
	Requested State = "requested"
	Active    State = "active"
	Ended     State = "ended"
)

// EndReason says why a session ended.
type EndReason string

// End reasons.
const (
	EndDenied      EndReason = "denied"       // the customer said no
	EndLinkExpired EndReason = "link_expired" // nobody approved before the consent TTL
	EndExpired     EndReason = "expired"      // the time box ran out
	EndRevoked     EndReason = "revoked"      // customer, agent, supervisor or admin stopped it
	EndIdle        EndReason = "idle"         // no activity for the idle timeout
	EndLocked      EndReason = "locked"       // the agent's account was locked
	EndCompleted   EndReason = "completed"    // the agent finished normally
)

// Session is one request for access and, once approved, its time box. The
// Broker hands out copies; mutating a copy changes nothing.
type Session struct {
	ID        string
	Agent     string // login name of the agent who asked
	AgentName string // verified display name shown to the customer
	Team      string // the agent's team, for supervisors
	Customer  string // free text the agent entered to name the customer
	Reason    string

	Requested Scopes        // what the agent asked for
	Scopes    Scopes        // what is granted; empty until approved
	Duration  time.Duration // the time box asked for, capped by policy

	State     State
	EndReason EndReason
	EndedBy   string // who ended it: a user name, "customer" or "system"

	CreatedAt        time.Time
	ConsentExpiresAt time.Time
	ApprovedAt       time.Time
	ExpiresAt        time.Time // zero until approved
	EndedAt          time.Time
	LastActivity     time.Time
	IdleTimeout      time.Duration

	VerificationCode string   // six digits, read over the phone
	TokenHash        [32]byte // SHA-256 of the consent token; the token itself is never stored
	ClientHash       [32]byte // SHA-256 of the key of the client the link is bound to; zero if unbound
	// HelperHash is the SHA-256 of the key of a second client, the
	// customer's supportgate-assist, bound through a handoff from the first
	// (see Broker.Handoff); zero if none.
	HelperHash [32]byte
	// HandoffHash is the SHA-256 of a pending one-time handoff code, valid
	// until HandoffExpiresAt; zero if none.
	HandoffHash      [32]byte
	HandoffExpiresAt time.Time

	Extension *Extension // a pending request for more time, nil if none

	Version int64 // bumped on every stored change
}

// Extension is an agent's request for more time, awaiting customer consent.
type Extension struct {
	By          time.Duration
	RequestedBy string
	RequestedAt time.Time
}

// Clone returns a deep copy.
func (s *Session) Clone() *Session {
	c := *s
	c.Requested = cloneScopes(s.Requested)
	c.Scopes = cloneScopes(s.Scopes)
	if s.Extension != nil {
		e := *s.Extension
		c.Extension = &e
	}
	return &c
}

func cloneScopes(s Scopes) Scopes {
	if s == nil {
		return nil
	}
	out := make(Scopes, len(s))
	for i, sc := range s {
		out[i] = Scope{Kind: sc.Kind, Ports: slices.Clone(sc.Ports)}
	}
	return out
}

// Open reports whether the session has not ended.
func (s *Session) Open() bool { return s.State != Ended }

// deadline is when the session must next be looked at by the timers: the
// consent expiry while requested, the earlier of the time box and the idle
// deadline while active.
func (s *Session) deadline() time.Time {
	switch s.State {
	case Requested:
		return s.ConsentExpiresAt
	case Active:
		d := s.ExpiresAt
		if s.IdleTimeout > 0 {
			if idle := s.LastActivity.Add(s.IdleTimeout); idle.Before(d) {
				d = idle
			}
		}
		return d
	}
	return time.Time{}
}
