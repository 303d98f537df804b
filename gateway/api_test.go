package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"supportgate/gateway/identity"
)

func TestConsentFlow(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "")
	s := e.newSession(alice, []string{"view", "chat", "tunnel:80,443"}, "30m")
	if len(s.Code) != 6 || !strings.HasPrefix(s.ConsentURL, e.srv.URL+"/c/") {
		t.Fatalf("create answer: %+v", s)
	}
	cu := e.customer(s.token())
	code, v := cu.open()
	if code != 200 {
		t.Fatalf("open: %d %v", code, v)
	}
	agent := v["agent"].(map[string]any)
	if agent["name"] != "alice" || agent["org"] != "ACME Support" || v["verification_code"] != s.Code || v["state"] != "requested" {
		t.Fatalf("consent view: %v", v)
	}

	// A second browser is refused, even with the CSRF token.
	other := e.customer(s.token())
	if code, _ := other.open(); code != http.StatusForbidden {
		t.Fatalf("second browser open: got %d, want 403", code)
	}
	other.csrf = cu.csrf
	if code, _ := other.post("approve", map[string]any{"scopes": []string{"view"}}); code != http.StatusForbidden {
		t.Fatalf("second browser approve: got %d, want 403", code)
	}

	// The customer unticks chat and port 80.
	code, v = cu.post("approve", map[string]any{"scopes": []string{"view", "tunnel:443"}})
	if code != 200 || v["state"] != "active" {
		t.Fatalf("approve: %d %v", code, v)
	}
	var got struct {
		State  string   `json:"state"`
		Scopes []string `json:"scopes"`
	}
	e.do(alice, "GET", "/api/v1/sessions/"+s.ID, nil, 200, &got)
	if got.State != "active" || strings.Join(got.Scopes, " ") != "view tunnel:443" {
		t.Fatalf("after approve: %+v", got)
	}
	if code, _ := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != http.StatusConflict {
		t.Fatalf("second approve: got %d, want 409", code)
	}

	// Extension needs the customer.
	e.do(alice, "POST", "/api/v1/sessions/"+s.ID+"/extend", map[string]string{"by": "15m"}, 200, nil)
	code, v = cu.post("extension", map[string]any{"approve": true})
	if code != 200 {
		t.Fatalf("extension: %d %v", code, v)
	}
	approved, _ := time.Parse(time.RFC3339Nano, v["approved_at"].(string))
	expires, _ := time.Parse(time.RFC3339Nano, v["expires_at"].(string))
	if got := expires.Sub(approved); got != 45*time.Minute {
		t.Fatalf("time box after extension: got %v, want 45m", got)
	}
}

func TestSessionEnds(t *testing.T) {
	tests := []struct {
		name   string
		run    func(e *env, s created, cu *customer)
		reason string
	}{
		{"deadline", func(e *env, s created, cu *customer) {
			cu.post("approve", map[string]any{"scopes": []string{"view"}})
			e.clock.Advance(5 * time.Minute)
		}, "expired"},
		{"deny", func(e *env, s created, cu *customer) {
			if code, _ := cu.post("deny", nil); code != 200 {
				e.t.Fatalf("deny: %d", code)
			}
		}, "denied"},
		{"customer stop", func(e *env, s created, cu *customer) {
			cu.post("approve", map[string]any{"scopes": []string{"view"}})
			if code, _ := cu.post("revoke", nil); code != 200 {
				e.t.Fatalf("revoke: %d", code)
			}
		}, "revoked"},
		{"agent revoke", func(e *env, s created, cu *customer) {
			cu.post("approve", map[string]any{"scopes": []string{"view"}})
			e.do(e.users["alice"], "POST", "/api/v1/sessions/"+s.ID+"/revoke", nil, 200, nil)
		}, "revoked"},
		{"agent withdraws request", func(e *env, s created, cu *customer) {
			e.do(e.users["alice"], "POST", "/api/v1/sessions/"+s.ID+"/revoke", nil, 200, nil)
		}, "revoked"},
		{"link expiry", func(e *env, s created, cu *customer) { e.clock.Advance(15 * time.Minute) }, "link_expired"},
		{"lock", func(e *env, s created, cu *customer) {
			cu.post("approve", map[string]any{"scopes": []string{"view"}})
			var out struct {
				Ended int `json:"sessions_ended"`
			}
			e.do(e.users["root"], "POST", "/api/v1/users/alice/lock", nil, 200, &out)
			if out.Ended != 1 {
				e.t.Fatalf("lock ended %d sessions, want 1", out.Ended)
			}
		}, "locked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			alice := e.addUser("alice", identity.RoleAgent, "")
			aud := e.addUser("audrey", identity.RoleAuditor, "")
			e.addUser("root", identity.RoleAdmin, "")
			s := e.newSession(alice, []string{"view"}, "5m")
			cu := e.customer(s.token())
			cu.open()
			tt.run(e, s, cu)
			st, reason := e.sessionState(aud, s.ID)
			if st != "ended" || reason != tt.reason {
				t.Fatalf("got %s/%s, want ended/%s", st, reason, tt.reason)
			}
			if code, _ := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code < 400 {
				t.Fatalf("approve after end: got %d", code)
			}
		})
	}
}

func TestLoginFailuresLock(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "")
	login := func(pw, code string) int {
		c, _ := e.send(nil, nil, "POST", "/api/v1/login", map[string]string{"user": "alice", "password": pw, "totp": code})
		return c
	}
	// A code is accepted once.
	code := alice.code()
	if got := login(testPassword, code); got != 200 {
		t.Fatalf("login: %d", got)
	}
	if got := login(testPassword, code); got != http.StatusUnauthorized {
		t.Fatalf("reused code: got %d, want 401", got)
	}
	e.clock.Advance(30 * time.Second)
	// The reused code was the first failure; three more follow.
	for i := range 3 {
		if got := login("wrong password here", alice.code()); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i, got)
		}
	}
	// The fifth failure locks; then even the right credentials are refused.
	if got := login(testPassword, "000000"); got != http.StatusUnauthorized {
		t.Fatalf("fifth failure: got %d", got)
	}
	if got := login(testPassword, alice.code()); got != http.StatusTooManyRequests {
		t.Fatalf("locked account: got %d, want 429", got)
	}
	e.clock.Advance(15*time.Minute + time.Second)
	if got := login(testPassword, alice.code()); got != 200 {
		t.Fatalf("after the lockout: got %d, want 200", got)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "")
	big := `{"customer":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name string
		body string
		ct   string
		want int
	}{
		{"malformed", `{"customer":`, "application/json", 400},
		{"unknown field", `{"customer":"c","scopes":["view"],"duration":"30m","admin":true}`, "application/json", 400},
		{"trailing data", `{"customer":"c","scopes":["view"],"duration":"30m"} {}`, "application/json", 400},
		{"oversized", big, "application/json", 413},
		{"wrong type", `{"customer":"c","scopes":"view","duration":"30m"}`, "application/json", 400},
		{"not json", `customer=c`, "application/x-www-form-urlencoded", 415},
		{"unknown scope", `{"customer":"c","scopes":["root"],"duration":"30m"}`, "application/json", 400},
		{"bad port", `{"customer":"c","scopes":["tunnel:99999"],"duration":"30m"}`, "application/json", 400},
		{"over the cap", `{"customer":"c","scopes":["view"],"duration":"61m"}`, "application/json", 400},
		{"over the hard max", `{"customer":"c","scopes":["view"],"duration":"9h"}`, "application/json", 400},
		{"bad duration", `{"customer":"c","scopes":["view"],"duration":"soon"}`, "application/json", 400},
		{"no customer", `{"scopes":["view"],"duration":"30m"}`, "application/json", 400},
		{"empty", ``, "application/json", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, data := e.send(nil, alice, "POST", "/api/v1/sessions", tt.body, withHeader("Content-Type", tt.ct))
			if code != tt.want || !strings.Contains(string(data), `"error"`) {
				t.Fatalf("got %d %s, want %d with a JSON error", code, data, tt.want)
			}
		})
	}
	var list struct {
		Sessions []any `json:"sessions"`
	}
	e.do(alice, "GET", "/api/v1/sessions", nil, 200, &list)
	if len(list.Sessions) != 0 {
		t.Fatalf("bad requests stored %d sessions", len(list.Sessions))
	}
	// Expired and unknown tokens.
	e.clock.Advance(8*time.Hour + time.Minute)
	if code, _ := e.send(nil, alice, "GET", "/api/v1/sessions", nil); code != http.StatusUnauthorized {
		t.Fatalf("expired token: got %d, want 401", code)
	}
	alice.token = "sgt_" + strings.Repeat("A", 43)
	if code, _ := e.send(nil, alice, "GET", "/api/v1/sessions", nil); code != http.StatusUnauthorized {
		t.Fatalf("unknown token: got %d, want 401", code)
	}
}

// TestConsentCSRF: every state-changing consent route refuses a request
// without the CSRF token, or with another link's, and changes nothing.
func TestConsentCSRF(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "")
	for _, action := range []string{"approve", "deny", "revoke", "extension"} {
		for _, csrf := range []string{"", "forged", "other-link"} {
			t.Run(action+"/"+csrf, func(t *testing.T) {
				s := e.newSession(alice, []string{"view"}, "30m")
				cu := e.customer(s.token())
				cu.open()
				if action == "extension" {
					cu.post("approve", map[string]any{"scopes": []string{"view"}})
					e.do(alice, "POST", "/api/v1/sessions/"+s.ID+"/extend", map[string]string{"by": "5m"}, 200, nil)
				}
				good := cu.csrf
				switch csrf {
				case "":
					cu.csrf = ""
				case "forged":
					cu.csrf = strings.Repeat("x", len(good))
				case "other-link":
					o := e.customer(e.newSession(alice, []string{"view"}, "30m").token())
					o.open()
					cu.csrf = o.csrf
				}
				var body any
				switch action {
				case "approve":
					body = map[string]any{"scopes": []string{"view"}}
				case "extension":
					body = map[string]any{"approve": true}
				}
				before, _ := e.sessionState(alice, s.ID)
				if code, v := cu.post(action, body); code != http.StatusForbidden {
					t.Fatalf("got %d %v, want 403", code, v)
				}
				if after, _ := e.sessionState(alice, s.ID); after != before {
					t.Fatalf("state changed from %s to %s", before, after)
				}
				cu.csrf = good
				if code, v := cu.post(action, body); code != 200 {
					t.Fatalf("with the right token: got %d %v", code, v)
				}
			})
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	resp, err := e.client().Get(e.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("missing HSTS or X-Frame-Options: %v", resp.Header)
	}
	alice := e.addUser("alice", identity.RoleAgent, "")
	s := e.newSession(alice, []string{"view"}, "30m")
	c := e.client()
	r2, err := c.Get(e.srv.URL + "/api/v1/consent/" + s.token())
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	ck := r2.Cookies()
	if len(ck) != 1 || !ck[0].Secure || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || !strings.HasPrefix(ck[0].Name, "__Host-") {
		t.Fatalf("consent cookie %+v", ck)
	}
}

// TestNotFoundSaysNoMore checks that a session that does not exist and
// one the caller may not see get the same 404 body, naming neither the
// store nor anything else: before, the first was "sqlite: session ID:
// session not found" and the second "session not found", which also told
// an agent which ids exist. A name taken is a 409 without the store's name
// either (it was "sqlite: creating user bob: already exists").
func TestNotFoundSaysNoMore(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "")
	bob := e.addUser("bob", identity.RoleAgent, "")
	s := e.newSession(bob, []string{"view"}, "30m")
	missing := e.do(alice, "GET", "/api/v1/sessions/0123456789abcdef", nil, http.StatusNotFound, nil)
	hidden := e.do(alice, "GET", "/api/v1/sessions/"+s.ID, nil, http.StatusNotFound, nil)
	if want := `{"error":"session not found"}`; strings.TrimSpace(string(missing)) != want || strings.TrimSpace(string(hidden)) != want {
		t.Errorf("404 bodies: missing session %s, another agent's %s; want both %s", missing, hidden, want)
	}
	root := e.addUser("root", identity.RoleAdmin, "")
	if body := e.do(root, "POST", "/api/v1/users/nosuch/lock", nil, http.StatusNotFound, nil); strings.Contains(string(body), "sqlite") {
		t.Errorf("lock of an unknown user: %s names the store", body)
	}
	// A name taken: 409, saying so without the store's name.
	if body := e.do(root, "POST", "/api/v1/users", map[string]string{"name": "bob", "role": "agent"}, http.StatusConflict, nil); strings.TrimSpace(string(body)) != `{"error":"user bob: already exists"}` {
		t.Errorf("adding a user whose name is taken: got %s, want user bob: already exists", body)
	}
}

// TestLoginReusedCodeSaysCodesWorkOnce checks that a login refused for a
// code already used says, in the one answer every failure gets, that a
// code works once: before, an agent logging in twice within 30 s read
// only "wrong user name, password or code" and took it for the password.
func TestLoginReusedCodeSaysCodesWorkOnce(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "")
	body := map[string]string{"user": "alice", "password": testPassword, "totp": alice.code()}
	e.do(nil, "POST", "/api/v1/login", body, http.StatusOK, nil)
	again := e.do(nil, "POST", "/api/v1/login", body, http.StatusUnauthorized, nil)
	wrong := e.do(nil, "POST", "/api/v1/login", map[string]string{"user": "alice", "password": "not the password", "totp": alice.code()}, http.StatusUnauthorized, nil)
	if !strings.Contains(string(again), "works once") || string(again) != string(wrong) {
		t.Errorf("reused code: %s; wrong password: %s; want one answer that says a code works once", again, wrong)
	}
}
