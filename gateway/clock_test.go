package gateway_test

import (
	"encoding/json"
	"net/http"
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

// TestDateHeaderIsGatewayTime: the pages and the helper read how far the
// gateway's clock is from their own off the Date header, and count down
// the times in its JSON from there. On a wall clock set back an hour the
// gateway's times run an hour ahead of the wall clock, so the Date header
// must carry the gateway's time too: otherwise the customer's page shows
// the consent link (and the box) an hour longer than they really last.
func TestDateHeaderIsGatewayTime(t *testing.T) {
	wall := sessiontest.NewClock(t0)
	steady := session.NewSteadyClock(wall, time.Time{})
	e := newEnvWith(t, func(c *gateway.Config) { c.Clock = steady })
	e.clock = wall
	alice := e.addUser("alice", identity.RoleAgent, "")
	c := e.newSession(alice, []string{"view"}, "30m")
	wall.StepWall(-time.Hour)
	wall.Advance(5 * time.Minute)

	resp, err := e.client().Get(e.srv.URL + "/api/v1/consent/" + c.token())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		ConsentExpiresAt time.Time `json:"consent_expires_at"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		t.Fatalf("Date header %q: %v", resp.Header.Get("Date"), err)
	}
	// 10 of the link's 15 minutes remain; the Date header has whole seconds.
	if left, want := v.ConsentExpiresAt.Sub(date), v.ConsentExpiresAt.Sub(steady.Now()); left < want || left > want+time.Second {
		t.Errorf("consent link left by the Date header %s: %v, want %v", resp.Header.Get("Date"), left, want)
	}
}

// TestPlainClockHeldSteady: a gateway given a plain Clock (Config.Clock
// nil means the wall clock) holds it steady itself, as the broker does,
// so that its own deadlines (bearer tokens here) agree with the broker's
// and a wall clock set back stretches none of them.
func TestPlainClockHeldSteady(t *testing.T) {
	e := newEnvWith(t, func(c *gateway.Config) { c.TokenTTL = time.Hour })
	alice := e.addUser("alice", identity.RoleAgent, "") // signed in at t0; login advanced 30s
	e.clock.StepWall(-time.Hour)
	e.clock.Advance(time.Hour - 30*time.Second - time.Second)
	e.do(alice, "GET", "/api/v1/sessions", nil, 200, nil)
	e.clock.Advance(time.Second)
	e.do(alice, "GET", "/api/v1/sessions", nil, 401, nil)
}
