package gateway_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
)

// closedWithin reads ws until the gateway closes it or sends "ended", and
// fails the test if neither happens within d. A staff socket must not
// outlive its user's access.
func closedWithin(t *testing.T, ws *websocket.Conn, d time.Duration, what string) {
	t.Helper()
	start := time.Now()
	ws.SetReadDeadline(start.Add(d))
	for {
		_, data, err := ws.ReadMessage()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("%s: socket still open after %v", what, d)
		case err != nil:
			t.Logf("%s: closed after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
			return
		}
		var m struct{ Type, Reason string }
		if json.Unmarshal(data, &m) == nil && m.Type == "ended" {
			t.Logf("%s: ended after %v: %s", what, time.Since(start).Round(time.Millisecond), m.Reason)
			return
		}
	}
}

// watchSees reads the session feed ws until an update of session id
// arrives, proving the feed still runs.
func watchSees(t *testing.T, ws *websocket.Conn, id, what string) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var v struct {
			ID string `json:"id"`
		}
		if err := ws.ReadJSON(&v); err != nil {
			t.Fatalf("%s: feed ended, want it open: %v", what, err)
		}
		if v.ID == id {
			return
		}
	}
}

// TestStaffRTCLockedSupervisor: a supervisor locked by an admin stops
// receiving a team member's screen share and chat within a second or two,
// while the agent's own share goes on.
func TestStaffRTCLockedSupervisor(t *testing.T) {
	e, _ := newRTCEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	root := e.addUser("root", identity.RoleAdmin, "")
	c := e.newSession(alice, []string{"view", "chat"}, "30m")
	cu := e.customer(c.token())
	cu.open()
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view", "chat"}}); code != 200 {
		t.Fatalf("approve: %d %v", code, v)
	}
	sh := e.startShare(cu, c, alice)
	api, pubWS, viewWS := sh.api, sh.pubWS, sh.viewWS
	sam := e.addUser("sam", identity.RoleSupervisor, "red")
	supWS, _ := e.joinShare(api, c, sam)
	watching := func() string { return connected(cu) }
	if got, want := watching(), "alice agent screen, sam supervisor screen"; got != want {
		t.Fatalf("before the lock the customer sees %q connected, want %q", got, want)
	}

	e.do(root, "POST", "/api/v1/users/sam/lock", "{}", 200, nil)
	closedWithin(t, supWS, 2*time.Second, "locked supervisor's screen share")

	// The gateway closed sam's side: the customer's page stops listing
	// him (serveRTC returns only after the PeerConnection is closed).
	got := watching()
	for deadline := time.Now().Add(2 * time.Second); got != "alice agent screen" && time.Now().Before(deadline); got = watching() {
		time.Sleep(20 * time.Millisecond)
	}
	if got != "alice agent screen" {
		t.Errorf("after the lock the customer sees %q connected, want %q", got, "alice agent screen")
	}
	// The agent's share and chat go on.
	viewWS.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := viewWS.WriteJSON(rtc.Message{Type: "chat", Text: "still here"}); err != nil {
		t.Fatal(err)
	}
	if m, err := rtctest.Message(pubWS, "chat", nil); err != nil || m.From != "alice" {
		t.Fatalf("customer chat after the lock: %+v %v", m, err)
	}
	if m, err := rtctest.Message(viewWS, "chat", nil); err != nil || m.From != "alice" {
		t.Fatalf("agent chat echo after the lock: %+v %v", m, err)
	}
	if _, resp, err := e.dialWS(nil, sam, "/api/v1/sessions/"+c.ID+"/rtc"); err == nil || resp.StatusCode/100 != 4 {
		t.Fatalf("locked supervisor reconnecting: got %v, want refusal", err)
	}
}

// TestStaffWatchEndsWithAccess: the staff session feed ends when the
// login that opened it ends (logout, expiry) and when an admin changes
// what its user may see (lock, role, team); other logins and harmless
// changes leave it running.
func TestStaffWatchEndsWithAccess(t *testing.T) {
	const feed = "/api/v1/sessions/watch"
	e := newEnv(t)
	root := e.addUser("root", identity.RoleAdmin, "")
	open := func(u *testUser) *websocket.Conn {
		t.Helper()
		ws, resp, err := e.dialWS(nil, u, feed)
		if err != nil {
			t.Fatalf("watch as %s: %v %v", u.name, resp, err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}

	t.Run("logout", func(t *testing.T) {
		alice := e.addUser("alice", identity.RoleAgent, "red")
		ws := open(alice)
		other := *alice
		e.login(&other) // a second login of alice, e.g. the CLI
		otherWS := open(&other)
		e.do(alice, "POST", "/api/v1/logout", nil, 200, nil)
		closedWithin(t, ws, 2*time.Second, "feed after logout")
		c := e.newSession(&other, []string{"shell"}, "30m")
		watchSees(t, otherWS, c.ID, "feed of alice's other login")
	})

	t.Run("browser logout", func(t *testing.T) {
		bob := e.addUser("bob", identity.RoleAgent, "red")
		cl, csrf := e.browserLogin(bob)
		ws, resp, err := e.dialWS(cl, nil, feed)
		if err != nil {
			t.Fatalf("watch by cookie: %v %v", resp, err)
		}
		defer ws.Close()
		if code, body := e.send(cl, nil, "POST", "/api/v1/logout", nil, withHeader("X-CSRF-Token", csrf)); code != 200 {
			t.Fatalf("browser logout: %d %s", code, body)
		}
		closedWithin(t, ws, 2*time.Second, "feed after browser logout")
	})

	t.Run("lock", func(t *testing.T) {
		sam := e.addUser("sam", identity.RoleSupervisor, "red")
		ws := open(sam)
		e.do(root, "POST", "/api/v1/users/sam/lock", "{}", 200, nil)
		closedWithin(t, ws, 2*time.Second, "feed after lock")
	})

	for _, tc := range []struct {
		name   string
		role   identity.Role
		change map[string]string
	}{
		{"role change", identity.RoleAgent, map[string]string{"role": "supervisor"}},
		// A supervisor's feed shows their team's sessions; an agent's,
		// their own whatever the team (TestAgentMovedOrDemoted).
		{"team change", identity.RoleSupervisor, map[string]string{"team": "blue"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "")
			u := e.addUser(name, tc.role, "red")
			ws := open(u)
			e.do(root, "POST", "/api/v1/users/"+name, tc.change, 200, nil)
			closedWithin(t, ws, 2*time.Second, "feed after "+tc.name)
			// The user reconnects and watches with what they are now.
			ws = open(u)
			c := e.newSession(u, []string{"shell"}, "30m")
			watchSees(t, ws, c.ID, "feed reopened after "+tc.name)
		})
	}

	t.Run("display name change", func(t *testing.T) {
		dora := e.addUser("dora", identity.RoleAgent, "red")
		ws := open(dora)
		e.do(root, "POST", "/api/v1/users/dora", map[string]string{"display_name": "Dora D."}, 200, nil)
		c := e.newSession(dora, []string{"shell"}, "30m")
		watchSees(t, ws, c.ID, "feed after a display name change")
	})

	// Last: it moves the clock past every token's expiry.
	t.Run("expiry", func(t *testing.T) {
		erin := e.addUser("erin", identity.RoleAgent, "red")
		ws := open(erin)
		e.clock.Advance(gateway.MaxTokenTTL - time.Minute)
		c := e.newSession(erin, []string{"shell"}, "30m")
		watchSees(t, ws, c.ID, "feed before expiry")
		e.clock.Advance(2 * time.Minute)
		closedWithin(t, ws, 2*time.Second, "feed after the token expired")
	})
}

// TestStaffWatchPerUserCap: one user cannot open more than 8 session
// feeds (and so cannot take every watcher slot of the gateway); the next
// is refused with 429 before the upgrade, others are not affected, and a
// closed feed frees its slot.
func TestStaffWatchPerUserCap(t *testing.T) {
	const feed, perUser = "/api/v1/sessions/watch", 8
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	bob := e.addUser("bob", identity.RoleAgent, "red")
	var open []*websocket.Conn
	defer func() {
		for _, ws := range open {
			ws.Close()
		}
	}()
	for i := range perUser {
		ws, resp, err := e.dialWS(nil, alice, feed)
		if err != nil {
			t.Fatalf("feed %d of %d: %v %v", i+1, perUser, resp, err)
		}
		open = append(open, ws)
	}
	ws, resp, err := e.dialWS(nil, alice, feed)
	if err == nil {
		ws.Close()
		t.Fatalf("feed %d of one user: accepted, want 429", perUser+1)
	}
	var body struct {
		Error string `json:"error"`
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests || json.NewDecoder(resp.Body).Decode(&body) != nil || body.Error == "" {
		t.Fatalf("feed %d of one user: got %v, want 429 with a JSON error", perUser+1, resp)
	}
	t.Logf("refused: %s", body.Error)
	ws, resp, err = e.dialWS(nil, bob, feed)
	if err != nil {
		t.Fatalf("another user's feed: %v %v", resp, err)
	}
	ws.Close()

	open[0].Close()
	open = open[1:]
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ws, resp, err = e.dialWS(nil, alice, feed)
		if err == nil {
			open = append(open, ws)
			break
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("feed after closing one: %v %v", resp, err)
		}
	}
}

// TestOnUserDropped: Config.OnUserDropped hears of every cut of a user's
// access (lock, role change, a supervisor's team change) and of nothing
// else (an agent's team change, a display name, a logout).
func TestOnUserDropped(t *testing.T) {
	var mu sync.Mutex
	var dropped []string
	e := newEnvWith(t, func(c *gateway.Config) {
		c.OnUserDropped = func(name string) {
			mu.Lock()
			defer mu.Unlock()
			dropped = append(dropped, name)
		}
	})
	root := e.addUser("root", identity.RoleAdmin, "")
	alice := e.addUser("alice", identity.RoleAgent, "red")
	e.addUser("bob", identity.RoleAgent, "red")
	e.addUser("carol", identity.RoleAgent, "red")
	e.addUser("dan", identity.RoleSupervisor, "red")
	e.addUser("erin", identity.RoleAgent, "red")
	e.do(root, "POST", "/api/v1/users/bob/lock", "{}", 200, nil)
	e.do(root, "POST", "/api/v1/users/carol", map[string]string{"role": "supervisor"}, 200, nil)
	e.do(root, "POST", "/api/v1/users/dan", map[string]string{"team": "blue"}, 200, nil)
	e.do(root, "POST", "/api/v1/users/erin", map[string]string{"team": "blue"}, 200, nil) // an agent keeps their own sessions
	e.do(root, "POST", "/api/v1/users/alice", map[string]string{"display_name": "Alice A.", "team": "red"}, 200, nil)
	e.do(root, "POST", "/api/v1/users/bob/unlock", "{}", 200, nil)
	e.do(alice, "POST", "/api/v1/logout", nil, 200, nil)
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(dropped, " "), "bob carol dan"; got != want {
		t.Errorf("OnUserDropped called for %q, want %q", got, want)
	}
}
