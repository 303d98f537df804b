package gateway_test

import (
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/session"
	"supportgate/session/sessiontest"
)

// TestTokenExpiryWallClockStepBack: on the clock serve gives it (a
// session.SteadyClock), a bearer token expires when its lifetime has
// really passed, even though the wall clock was set back an hour
// meanwhile; and TOTP codes still follow the wall clock, as the users'
// authenticators do.
func TestTokenExpiryWallClockStepBack(t *testing.T) {
	wall := sessiontest.NewClock(t0)
	e := newEnvWith(t, func(c *gateway.Config) {
		c.Clock = session.NewSteadyClock(wall, time.Time{})
		c.TokenTTL = time.Hour
	})
	e.clock = wall
	alice := e.addUser("alice", identity.RoleAgent, "") // signed in at t0; login advanced 30s

	wall.StepWall(-time.Hour)
	wall.Advance(time.Hour - 30*time.Second - time.Second)
	e.do(alice, "GET", "/api/v1/sessions", nil, 200, nil)
	wall.Advance(time.Second)
	e.do(alice, "GET", "/api/v1/sessions", nil, 401, nil)

	// A code of the wall clock's time signs in, an hour behind the
	// gateway's own time as it is: once past the code used at t0 (a code
	// is accepted once, and so is none before it).
	wall.Advance(time.Minute)
	e.login(alice)
	e.do(alice, "GET", "/api/v1/sessions", nil, 200, nil)
}
