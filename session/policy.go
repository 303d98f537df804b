package session

import (
	"fmt"
	"time"
)

// HardMaxDuration caps every time box whatever the policy says.
const HardMaxDuration = 8 * time.Hour

// Policy is the organisation's rules for sessions. The zero value of a field
// means its default.
type Policy struct {
	MaxDuration     time.Duration // longest time box an agent may ask for (default 60m, at most HardMaxDuration)
	MinDuration     time.Duration // shortest (default 1m)
	ConsentTTL      time.Duration // how long a consent link stays approvable (default 15m)
	IdleTimeout     time.Duration // end an active session after this long without activity (default 10m; negative disables)
	MaxOpenPerAgent int           // open (requested or active) sessions per agent (default 20)
	// Allowed narrows what any session may be granted; nil allows every kind
	// and port. Policy may narrow what the customer allowed, never widen it.
	Allowed Scopes
	// SupervisorFor lists kinds that also need a supervisor's approval
	// (four eyes) before they are usable. Not implemented yet: a policy
	// that sets it is refused, so nobody believes it is enforced.
	SupervisorFor []Kind
}

// WithDefaults fills zero fields and checks the rest.
func (p Policy) WithDefaults() (Policy, error) {
	if p.MaxDuration == 0 {
		p.MaxDuration = 60 * time.Minute
	}
	if p.MinDuration == 0 {
		p.MinDuration = time.Minute
	}
	if p.ConsentTTL == 0 {
		p.ConsentTTL = 15 * time.Minute
	}
	if p.IdleTimeout == 0 {
		p.IdleTimeout = 10 * time.Minute
	}
	if p.MaxOpenPerAgent == 0 {
		p.MaxOpenPerAgent = 20
	}
	switch {
	case p.MaxDuration > HardMaxDuration:
		return p, fmt.Errorf("session: policy max duration %v is over the hard maximum %v", p.MaxDuration, HardMaxDuration)
	case p.MinDuration < 0 || p.MinDuration > p.MaxDuration:
		return p, fmt.Errorf("session: policy min duration %v must lie in (0, %v]", p.MinDuration, p.MaxDuration)
	case p.ConsentTTL < 0 || p.MaxOpenPerAgent < 0:
		return p, fmt.Errorf("session: policy values must not be negative")
	case len(p.SupervisorFor) > 0:
		// Refuse rather than run without the four eyes the operator asked for.
		return p, fmt.Errorf("session: policy supervisor_for (four-eyes approval) is not supported yet")
	}
	return p, nil
}

// grant narrows what the customer approved by what policy allows.
func (p Policy) grant(approved Scopes) Scopes {
	if p.Allowed == nil {
		return approved
	}
	return approved.Intersect(p.Allowed)
}

// checkDuration validates an asked-for duration against the policy.
func (p Policy) checkDuration(d time.Duration) error {
	if d < p.MinDuration || d > p.MaxDuration {
		return fmt.Errorf("%w: %v is outside the allowed %v to %v", ErrBadDuration, d, p.MinDuration, p.MaxDuration)
	}
	return nil
}
